"""One body, three fidelities: the same test runs under ``fake`` (shapes and CommLog, any
world size), ``threaded`` and ``gloo`` (every rank runs it; results checked against
single-process references computed in the test).

Random data comes from explicit ``torch.Generator`` objects: under ``threaded`` the ranks
share one process, so ``torch.manual_seed`` in one rank would race with the others."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.distributed as dist
from _models import MLP, fully_shard_fn, init_device_mesh_fn, local, parallelize

# The tensor collectives under their classic names (torch 2.13 deprecates them for *_single;
# users still call them, and FSDP calls them inside torch) and FSDP2's note on view outputs.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*is deprecated:FutureWarning", "ignore:FSDP2-wrapped module .* returned a view"
)

ALL = ("fake", "threaded", "gloo")


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _seeded_mlp() -> MLP:
    """The same MLP on every rank, whatever the global RNG state."""
    model = MLP()
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(_randn(*p.shape, seed=i) * 0.3)
    return model


def _rank_value(rank: int, n: int = 4) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float32) + 10 * rank


@pytest.mark.fake_world(4, fidelity=ALL)
def test_all_reduce_sum(fake_world) -> None:
    t = _rank_value(dist.get_rank())
    dist.all_reduce(t)
    assert t.shape == (4,)
    assert fake_world.comms.count("all_reduce") == 1
    assert fake_world.comms.bytes("all_reduce") == 16
    if fake_world.computes:
        expected = sum(_rank_value(r) for r in range(4))
        torch.testing.assert_close(t, expected)


@pytest.mark.fake_world(3, fidelity=ALL)
def test_all_reduce_max(fake_world) -> None:
    t = torch.tensor([float(dist.get_rank()), -float(dist.get_rank())])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    assert fake_world.comms.ops() == ["all_reduce"]
    if fake_world.computes:
        assert t.tolist() == [2.0, 0.0]


def _skip_where_gloo_lacks(method: str, op: str, release: str) -> None:
    """Skip on gloo where it lacks ProcessGroup ``method`` (``(output, input)`` tensors; gloo
    has it from torch ``release``), probed on a gloo group of one."""
    if dist.get_backend() != "gloo":
        return
    group = dist.ProcessGroupGloo(dist.HashStore(), 0, 1)
    try:
        getattr(group, method)(torch.zeros(1), torch.zeros(1)).wait()
    except RuntimeError:  # "no support for _allgather_base in Gloo process group"
        pytest.skip(f"needs gloo's {method} for {op} (torch {release}+)")


@pytest.mark.fake_world(4, fidelity=ALL)
def test_all_gather_list(fake_world) -> None:
    out = [torch.empty(4) for _ in range(4)]
    dist.all_gather(out, _rank_value(dist.get_rank()))
    assert [o.shape for o in out] == [torch.Size([4])] * 4
    assert fake_world.comms.count("all_gather") == 1
    if fake_world.computes:
        for r, o in enumerate(out):
            torch.testing.assert_close(o, _rank_value(r))


@pytest.mark.fake_world(4, fidelity=ALL)
def test_all_gather_into_tensor(fake_world) -> None:
    _skip_where_gloo_lacks("_allgather_base", "all_gather_into_tensor", "2.2")
    out = torch.empty(16)
    dist.all_gather_into_tensor(out, _rank_value(dist.get_rank()))
    assert out.shape == (16,)
    assert fake_world.comms.count("all_gather_into_tensor") == 1
    if fake_world.computes:
        torch.testing.assert_close(out, torch.cat([_rank_value(r) for r in range(4)]))


@pytest.mark.fake_world(2, fidelity=ALL)
def test_reduce_scatter_tensor(fake_world) -> None:
    _skip_where_gloo_lacks("_reduce_scatter_base", "reduce_scatter_tensor", "2.3")
    x = torch.arange(4, dtype=torch.float32) + dist.get_rank()
    out = torch.empty(2)
    dist.reduce_scatter_tensor(out, x)
    assert out.shape == (2,)
    assert fake_world.comms.count("reduce_scatter_tensor") == 1
    if fake_world.computes:
        full = sum(torch.arange(4, dtype=torch.float32) + r for r in range(2))
        torch.testing.assert_close(out, full.chunk(2)[dist.get_rank()])


@pytest.mark.fake_world(4, fidelity=ALL)
def test_broadcast_from_rank_2(fake_world) -> None:
    t = _rank_value(dist.get_rank())
    dist.broadcast(t, src=2)
    (record,) = fake_world.comms.records
    assert (record.op, record.src) == ("broadcast", 2)
    # Bytes count what this rank sends: only the source sends.
    assert record.bytes == (16 if dist.get_rank() == 2 else 0)
    if fake_world.computes:
        torch.testing.assert_close(t, _rank_value(2))


@pytest.mark.fake_world(2, fidelity=ALL)
def test_all_to_all_single(fake_world) -> None:
    rank = dist.get_rank()
    x = torch.arange(4, dtype=torch.float32) + 4 * rank  # rank 0: 0..3, rank 1: 4..7
    out = torch.empty(4)
    dist.all_to_all_single(out, x)
    assert out.shape == (4,)
    assert fake_world.comms.count("all_to_all_single") == 1
    if fake_world.computes:
        expected = {0: [0.0, 1.0, 4.0, 5.0], 1: [2.0, 3.0, 6.0, 7.0]}[rank]
        assert out.tolist() == expected


@pytest.mark.fake_world(3, fidelity=ALL)
def test_gather_and_scatter(fake_world) -> None:
    rank = dist.get_rank()
    gathered = [torch.empty(1) for _ in range(3)] if rank == 0 else None
    dist.gather(torch.tensor([float(rank)]), gathered, dst=0)
    got = torch.empty(1)
    dist.scatter(got, [torch.tensor([10.0 * i]) for i in range(3)] if rank == 1 else None, src=1)
    assert fake_world.comms.ops() == ["gather", "scatter"]
    assert [r.dst for r in fake_world.comms.records] == [0, None]
    if fake_world.computes:
        if rank == 0:
            assert [g.item() for g in gathered] == [0.0, 1.0, 2.0]
        assert got.item() == 10.0 * rank


@pytest.mark.fake_world(4, fidelity=ALL)
def test_subgroup_all_reduce(fake_world) -> None:
    evens = dist.new_group([0, 2])
    odds = dist.new_group([1, 3])
    rank = dist.get_rank()
    mine = evens if rank % 2 == 0 else odds
    t = torch.tensor([float(rank)])
    dist.all_reduce(t, group=mine)
    (record,) = fake_world.comms.filter(op="all_reduce")
    assert record.group_ranks == ((0, 2) if rank % 2 == 0 else (1, 3))
    if fake_world.computes:
        assert t.item() == (2.0 if rank % 2 == 0 else 4.0)


@pytest.mark.fake_world(4, fidelity=ALL)
def test_dtensor_shard_round_trip(fake_world) -> None:
    init_device_mesh = init_device_mesh_fn()
    try:
        from torch.distributed.tensor import Replicate, Shard, distribute_tensor
    except ImportError:  # public from torch 2.5
        from torch.distributed._tensor import Replicate, Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (4,))
    full = _randn(8, 3, seed=0)  # every rank holds the same full tensor
    # src_data_rank=None (torch 2.7+): each rank takes its shard of its own copy; before,
    # rank 0 scatters (on a fake world the others then hold uninitialised memory).
    own = "src_data_rank" in inspect.signature(distribute_tensor).parameters
    dt = distribute_tensor(full, mesh, [Shard(0)], **({"src_data_rank": None} if own else {}))
    assert dt.to_local().shape == (2, 3)
    replicated = dt.redistribute(mesh, [Replicate()])
    assert replicated.to_local().shape == (8, 3)
    assert fake_world.comms.count("all_gather_into_tensor") == 1
    if fake_world.computes:
        torch.testing.assert_close(dt.to_local(), full.chunk(4)[dist.get_rank()])
        torch.testing.assert_close(replicated.to_local(), full)


def _batch(rank: int) -> torch.Tensor:
    return _randn(4, 10, seed=100 + rank)


def _reference_step(world_size: int, lr: float) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Single process: the per-rank losses and the parameters after one SGD step on the
    mean over ranks of each rank's loss (what data parallelism computes)."""
    model = _seeded_mlp()
    losses = [model(_batch(r)).sum() for r in range(world_size)]
    (sum(losses) / world_size).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return [loss.item() for loss in losses], {n: p.detach() for n, p in model.named_parameters()}


def _full(p: torch.Tensor) -> torch.Tensor:
    full_tensor = getattr(p, "full_tensor", None)
    return (full_tensor() if full_tensor is not None else p).detach()


def _assert_matches_reference_step(
    model: torch.nn.Module, loss: torch.Tensor, dp_rank: int, grad_scale: float = 1.0
) -> None:
    """The loss of data-parallel rank ``dp_rank`` and the parameters after the SGD step
    (lr 0.1, 2 data-parallel ranks, gradients ``grad_scale`` times the mean over ranks) equal
    the single-process reference."""
    losses, params = _reference_step(2, lr=0.1 * grad_scale)
    assert loss.item() == pytest.approx(losses[dp_rank], rel=1e-5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(_full(p), params[name], rtol=1e-5, atol=1e-6)


def _reduce_scatter_averages(group: dist.ProcessGroup) -> bool:
    """Whether reduce_scatter_tensor with ReduceOp.AVG averages over ``group`` (one collective
    on every rank): gloo's silently sums on torch 2.7 and 2.8 (it averages from 2.9)."""
    out = torch.empty(1)
    dist.reduce_scatter_tensor(out, torch.ones(group.size()), op=dist.ReduceOp.AVG, group=group)
    return out.item() == 1.0


def _fsdp2_reduces_fp32_with_avg(group: dist.ProcessGroup) -> bool:
    """Whether FSDP2 reduce-scatters fp32 gradients over ``group`` with ReduceOp.AVG and no
    pre/post divide factors: ``_get_gradient_divide_factors`` gives ``(None, None)`` (the op
    then is AVG) up to torch 2.8, ``(pre, post, reduce_scatter_op, all_reduce_op)`` from 2.9."""
    try:
        from torch.distributed.fsdp._fully_shard._fsdp_collectives import (
            _get_gradient_divide_factors,
        )
    except ImportError:  # torch.distributed._composable.fsdp before 2.6
        from torch.distributed._composable.fsdp._fsdp_collectives import (
            _get_gradient_divide_factors,
        )
    factors = _get_gradient_divide_factors(group, None, torch.float32, "cpu")
    return factors[:2] == (None, None) and (len(factors) == 2 or factors[2] == dist.ReduceOp.AVG)


def _fsdp2_grad_scale(group: dist.ProcessGroup) -> float:
    """FSDP2's reduced gradients over data-parallel ``group`` relative to their mean: the group
    size where FSDP2 reduce-scatters with ReduceOp.AVG and the backend sums instead (gloo on
    torch 2.7 and 2.8: every gradient is then world size times the single-process mean)."""
    if _reduce_scatter_averages(group) or not _fsdp2_reduces_fp32_with_avg(group):
        return 1.0
    return float(group.size())


@pytest.mark.fake_world(2, fidelity=ALL)
def test_fsdp2_step_matches_single_process(fake_world) -> None:
    fully_shard = fully_shard_fn()
    model = _seeded_mlp()
    for layer in (model.net1, model.net2):
        fully_shard(layer)
    fully_shard(model)
    assert tuple(local(model.net1.weight).shape) == (8, 10)  # dim 0 of 16 over 2 ranks
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    rank = dist.get_rank()
    loss = model(_batch(rank)).sum()
    loss.backward()
    optim.step()
    assert fake_world.comms.count("all_gather_into_tensor") >= 2
    assert fake_world.comms.count("reduce_scatter_tensor") >= 2
    if fake_world.computes:
        scale = _fsdp2_grad_scale(dist.group.WORLD)
        _assert_matches_reference_step(model, loss, rank, scale)


@pytest.mark.fake_world(4, fidelity=ALL)
def test_fsdp2_tp_step_matches_single_process(fake_world) -> None:
    init_device_mesh = init_device_mesh_fn()
    fully_shard = fully_shard_fn()
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

    mesh = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))
    plan = {"net1": ColwiseParallel(), "net2": RowwiseParallel()}
    model = parallelize(_seeded_mlp(), mesh["tp"], plan)
    fully_shard(model, mesh=mesh["dp"])
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    dp_rank = mesh["dp"].get_local_rank()
    loss = model(_batch(dp_rank)).sum()
    loss.backward()
    optim.step()
    assert fake_world.comms.count("reduce_scatter_tensor") >= 1
    if fake_world.computes:
        scale = _fsdp2_grad_scale(mesh["dp"].get_group())
        _assert_matches_reference_step(model, loss, dp_rank, scale)


@pytest.mark.fake_world(2, fidelity=ALL, faults=[{"op": "all_gather", "nth": 2}])
def test_fault_schedule_fires_on_every_rank(fake_world) -> None:
    out = [torch.empty(2) for _ in range(2)]
    dist.all_gather(out, torch.ones(2))
    with pytest.raises(RuntimeError, match="injected by fakedist"):
        dist.all_gather(out, torch.ones(2))
    dist.all_gather(out, torch.full((2,), float(dist.get_rank())))
    assert [r.fault for r in fake_world.comms.records] == [None, "fake", None]
    if fake_world.computes:
        assert [o.tolist() for o in out] == [[0.0, 0.0], [1.0, 1.0]]


@pytest.mark.fake_world(
    2, fidelity=ALL, faults=[{"op": "barrier", "rank": 1, "error": "none", "delay": 0.01}]
)
def test_fault_schedule_per_rank(fake_world) -> None:
    dist.barrier()
    (fault,) = fake_world.faults.specs
    assert fault.fired == (1 if fake_world.rank == 1 else 0)
    assert fake_world.comms.records[0].op == "barrier"


def test_send_recv_under_threaded_skips_with_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, torch, torch.distributed as dist

        @pytest.mark.fake_world(2, fidelity=["threaded", "gloo"])
        def test_p2p(fake_world):
            t = torch.full((2,), float(dist.get_rank()))
            if dist.get_rank() == 0:
                dist.send(t, 1)
            else:
                dist.recv(t, 0)
                assert t.tolist() == [0.0, 0.0]
        """
    )
    result = pytester.runpytest("-rs", "-p", "no:randomly", f"--rootdir={pytester.path}")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*SKIPPED*threaded fidelity: *threaded process group has no send*"]
    )


@pytest.mark.fake_world(2, fidelity=ALL)
def test_async_all_reduce_wait(fake_world) -> None:
    t = torch.full((3,), float(dist.get_rank() + 1))
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    (record,) = fake_world.comms.records
    assert (record.op, record.async_op) == ("all_reduce", True)
    if fake_world.computes:
        assert t.tolist() == [3.0, 3.0, 3.0]


@pytest.mark.fake_world(2, backend="pypg", fidelity=ALL)  # DDP needs pypg on a fake world
def test_ddp_grads_match_single_process(fake_world) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = DDP(_seeded_mlp())
    rank = dist.get_rank()
    model(_batch(rank)).sum().backward()
    grads = {n.removeprefix("module."): p.grad for n, p in model.named_parameters()}
    assert grads["net1.weight"].shape == (16, 10)
    assert fake_world.backend == {"fake": "pypg"}.get(fake_world.fidelity, fake_world.fidelity)
    if fake_world.computes:  # DDP averages the ranks' gradients
        reference = _seeded_mlp()
        (sum(reference(_batch(r)).sum() for r in range(2)) / 2).backward()
        for name, p in reference.named_parameters():
            torch.testing.assert_close(grads[name], p.grad, rtol=1e-5, atol=1e-6)
