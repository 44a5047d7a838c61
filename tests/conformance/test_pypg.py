"""The pure-Python ``pypg`` backend: DDP trains on it, every collective gives its
replicated-data result (as if every rank held this rank's tensors), and every call is recorded
with its shapes, peer and whether its Work was waited on / its future taken."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")

WS, RANK = 4, 1
PYPG = pytest.mark.fake_world(world_size=WS, rank=RANK, backend="pypg")


def _ddp_grads(group: Any) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    torch.manual_seed(123)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    ddp = DDP(model, process_group=group)
    x = torch.rand(5, 4)
    ddp(x).sum().backward()
    ddp_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model(x).sum().backward()
    return ddp_grads, {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.fake_world(world_size=WS, rank=RANK, backend="pypg", work="subclass")
def test_ddp_work_subclass(fake_world) -> None:
    ddp, plain = _ddp_grads(fake_world.group)
    assert ddp.keys() == plain.keys()
    for name in ddp:
        torch.testing.assert_close(ddp[name], plain[name], msg=name)
    pg = fake_world.pg
    assert pg.wait_count > 0
    assert pg.get_future_count > 0
    assert "broadcast" in pg.ops()
    assert pg.ops()[-1] == "allreduce"
    assert all(c.waited for c in pg.calls if c.op == "broadcast")
    assert any(c.future_taken for c in pg.calls if c.op == "allreduce")


@pytest.mark.fake_world(world_size=WS, rank=RANK, backend="pypg", work="future")
def test_ddp_work_from_future(fake_world) -> None:
    ddp, plain = _ddp_grads(fake_world.group)
    for name in ddp:
        torch.testing.assert_close(ddp[name], plain[name], msg=name)
    pg = fake_world.pg
    assert pg.ops()[-1] == "allreduce"
    # Future-wrapping work is torch's own C++ class: nothing is counted on the Python side
    assert (pg.wait_count, pg.get_future_count) == (0, 0)


@PYPG
def test_async_work_subclass_records_wait_and_future(fake_world) -> None:
    pg = fake_world.pg
    t = torch.ones(2)
    work = dist.all_reduce(t, async_op=True)
    assert type(work).__name__ == "PgWork"
    call = pg.calls[-1]
    assert (call.op, call.waited, call.future_taken) == ("allreduce", False, False)
    assert work.wait() is True
    assert call.waited
    assert pg.wait_count == 1
    fut = work.get_future()
    assert call.future_taken
    assert pg.get_future_count == 1
    assert torch.equal(fut.wait()[0], torch.full((2,), float(WS)))


@pytest.mark.fake_world(world_size=WS, rank=RANK, backend="pypg", work="future")
def test_async_work_from_future(fake_world) -> None:
    work = dist.all_reduce(torch.ones(2), async_op=True)
    assert type(work).__name__ != "PgWork"
    assert work.wait() is True
    assert torch.equal(work.get_future().wait()[0], torch.full((2,), float(WS)))
    assert fake_world.pg.wait_count == 0


def _sentinels(n: int, *shape: int) -> list[torch.Tensor]:
    return [torch.full(shape, -7.0) for _ in range(n)]


def _collective_cases() -> dict[str, tuple[Callable[[], Any], str]]:
    """name -> (call returning (got, expected), recorded op: "a|b" where torch releases differ
    in the ProcessGroup method they call, e.g. 2.13's all_gather_single for _allgather_base)."""
    x = torch.tensor([1.0, 2.0])

    def all_reduce(op: Any, expected: torch.Tensor) -> Callable[[], Any]:
        def run() -> Any:
            t = x.clone()
            dist.all_reduce(t, op=op)
            return t, expected

        return run

    def all_gather() -> Any:
        out = _sentinels(WS, 2)
        dist.all_gather(out, x)
        return torch.stack(out), x.repeat(WS, 1)

    def all_gather_into_tensor() -> Any:
        out = torch.empty(2 * WS)
        dist.all_gather_into_tensor(out, x)
        return out, x.repeat(WS)

    def reduce_scatter() -> Any:
        out = torch.empty(2)
        dist.reduce_scatter(out, [x * (r + 1) for r in range(WS)])
        return out, x * (RANK + 1) * WS

    def reduce_scatter_tensor() -> Any:
        out = torch.empty(2)
        dist.reduce_scatter_tensor(out, torch.arange(2.0 * WS))
        return out, torch.arange(2.0 * WS).chunk(WS)[RANK] * WS

    def broadcast() -> Any:
        t = x.clone()
        dist.broadcast(t, src=0)
        return t, x

    def all_to_all_single() -> Any:
        out = torch.empty(2 * WS)
        dist.all_to_all_single(out, torch.arange(2.0 * WS))
        return out, torch.arange(2.0 * WS).chunk(WS)[RANK].repeat(WS)

    def all_to_all() -> Any:
        out = _sentinels(WS, 2)
        dist.all_to_all(out, [x * r for r in range(WS)])
        return torch.stack(out), (x * RANK).repeat(WS, 1)

    def scatter() -> Any:
        out = torch.empty(2)
        dist.scatter(out, [x * r for r in range(WS)], src=RANK)
        return out, x * RANK

    def gather() -> Any:
        out = _sentinels(WS, 2)
        dist.gather(x, out, dst=RANK)
        return torch.stack(out), x.repeat(WS, 1)

    def reduce() -> Any:
        t = x.clone()
        dist.reduce(t, dst=RANK)
        return t, x * WS

    def recv() -> Any:
        t = x.clone()
        dist.recv(t, src=0)
        return t, x

    return {
        "all_reduce_sum": (all_reduce(dist.ReduceOp.SUM, x * WS), "allreduce"),
        "all_reduce_avg": (all_reduce(dist.ReduceOp.AVG, x), "allreduce"),
        "all_reduce_max": (all_reduce(dist.ReduceOp.MAX, x), "allreduce"),
        "all_reduce_min": (all_reduce(dist.ReduceOp.MIN, x), "allreduce"),
        "all_reduce_product": (all_reduce(dist.ReduceOp.PRODUCT, x**WS), "allreduce"),
        "all_gather": (all_gather, "allgather"),
        "all_gather_into_tensor": (all_gather_into_tensor, "_allgather_base|all_gather_single"),
        "reduce_scatter": (reduce_scatter, "reduce_scatter"),
        "reduce_scatter_tensor": (
            reduce_scatter_tensor,
            "_reduce_scatter_base|reduce_scatter_single",
        ),
        "broadcast": (broadcast, "broadcast"),
        "all_to_all_single": (all_to_all_single, "alltoall_base|all_to_all_single"),
        "all_to_all": (all_to_all, "alltoall"),
        "scatter": (scatter, "scatter"),
        "gather": (gather, "gather"),
        "reduce": (reduce, "reduce"),
        "recv": (recv, "recv"),
    }


@pytest.mark.parametrize("case", list(_collective_cases()))
@PYPG
def test_replicated_data_result(fake_world, case: str) -> None:
    run, op = _collective_cases()[case]
    got, expected = run()
    assert torch.equal(got, expected), f"{case}: {got} != {expected}"
    ops = fake_world.pg.ops()
    assert len(ops) == 1, ops
    assert ops[0] in op.split("|"), ops


@PYPG
def test_recorded_shapes_and_peers(fake_world) -> None:
    dist.send(torch.ones(2, 3), dst=2)
    dist.recv(torch.ones(4), src=3)
    dist.broadcast(torch.ones(5, 1), src=0)
    dist.reduce(torch.ones(6), dst=2)
    calls = [(c.op, c.shapes, c.peer) for c in fake_world.pg.calls]
    assert calls == [
        ("send", ((2, 3),), 2),
        ("recv", ((4,),), 3),
        ("broadcast", ((5, 1),), 0),
        ("reduce", ((6,),), 2),
    ]
    assert all(c.waited for c in fake_world.pg.calls)  # blocking calls wait on their work


@PYPG
def test_world_queries_and_subgroup(fake_world) -> None:
    assert dist.get_backend() == "pypg"
    assert fake_world.pg.name() == "pypg"
    assert (dist.get_rank(), dist.get_world_size()) == (RANK, WS)
    sub = dist.new_group([0, 1, 2])
    assert type(sub).__name__ == "PyProcessGroup"
    assert dist.get_world_size(sub) == 3
    t = torch.ones(2)
    dist.all_reduce(t, group=sub)
    assert torch.equal(t, torch.full((2,), 3.0))  # replicated over the subgroup's 3 ranks
    assert sub.ops() == ["allreduce"]
    assert "allreduce" not in fake_world.pg.ops()


def _torch_routes_group_name_to_python() -> bool:
    """Does torch read ``group_name`` through a Python subclass's ``getGroupName``?

    Probed on a bare subclass (not fakedist's): torch 2.4 reads the C++ field and raises
    "ProcessGroup name not set" for a Python ProcessGroup; torch 2.1's ProcessGroup has no
    ``group_name`` at all (AttributeError).
    """

    class Probe(dist.ProcessGroup):  # type: ignore[misc]
        def getGroupName(self) -> str:
            return "probe"

    try:
        return Probe(0, 1).group_name == "probe"
    except (AttributeError, RuntimeError):
        return False


@PYPG
@pytest.mark.skipif(
    not _torch_routes_group_name_to_python(),
    reason="needs ProcessGroup.group_name read through a Python getGroupName override "
    "(torch 2.6+; torch 2.1 has no ProcessGroup.group_name)",
)
def test_group_name_and_description_overrides(fake_world) -> None:
    pg = fake_world.pg
    pg._set_group_name("trainers")
    assert pg.group_name == "trainers"
    pg._set_group_desc("the data-parallel group")
    assert pg.group_desc == "the data-parallel group"


@PYPG
def test_abort_and_shutdown_are_no_ops(fake_world) -> None:
    pg = fake_world.pg
    assert pg.abort() is None
    assert pg.shutdown() is None
    assert pg.calls == []
    t = torch.ones(2)
    dist.all_reduce(t)  # still usable afterwards
    assert torch.equal(t, torch.full((2,), float(WS)))


@PYPG
def test_barrier_recorded(fake_world) -> None:
    assert dist.barrier() is None
    work = dist.barrier(async_op=True)
    assert work.wait() is True
    assert [(c.op, c.peer, c.waited) for c in fake_world.pg.calls] == [
        ("barrier", None, True),
        ("barrier", None, True),
    ]


@PYPG
def test_batch_isend_irecv_recorded(fake_world) -> None:
    out = torch.full((3,), -7.0)
    works = dist.batch_isend_irecv(
        [dist.P2POp(dist.isend, torch.ones(2), 2), dist.P2POp(dist.irecv, out, 0)]
    )
    assert [w.wait() for w in works] == [True, True]
    assert [(c.op, c.shapes, c.peer) for c in fake_world.pg.calls] == [
        ("send", ((2,),), 2),
        ("recv", ((3,),), 0),
    ]
    assert torch.equal(out, torch.full((3,), -7.0))  # recv leaves the buffer as it was


def _ddp_supports(arg: str) -> bool:
    import inspect

    return arg in inspect.signature(DDP.__init__).parameters


@PYPG
def test_ddp_gradient_as_bucket_view(fake_world) -> None:
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    ddp = DDP(model, process_group=fake_world.group, gradient_as_bucket_view=True)
    x = torch.rand(5, 4)
    ddp(x).sum().backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    # every gradient is a view into the one bucket the all-reduce received
    storages = {p.grad.untyped_storage().data_ptr() for p in model.parameters()}
    assert len(storages) == 1
    allreduces = [c for c in fake_world.pg.calls if c.op == "allreduce"]
    assert [c.shapes for c in allreduces] == [((23,),)]
    for p in model.parameters():
        p.grad = None
    model(x).sum().backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(got[name], p.grad, rtol=0, atol=0, msg=name)


@PYPG
@pytest.mark.skipif(
    not _ddp_supports("init_sync"), reason="this torch's DDP has no init_sync (torch 2.7+)"
)
def test_ddp_init_sync_false_skips_the_initial_broadcast(fake_world) -> None:
    model = nn.Linear(4, 2)
    ddp = DDP(model, process_group=fake_world.group, init_sync=False)
    assert fake_world.pg.ops() == []  # no parameter verification, no module-state broadcast
    ddp(torch.rand(3, 4)).sum().backward()
    assert fake_world.pg.ops() == ["allreduce"]
    DDP(nn.Linear(4, 2), process_group=fake_world.group)  # the default syncs at construction
    assert "broadcast" in fake_world.pg.ops()[1:]


@PYPG
def test_ddp_tiny_buckets_two_steps_match_the_local_model(
    fake_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(11)
    model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 8))  # 808 parameters
    local = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 8))
    local.load_state_dict(model.state_dict())
    # Before torch 2.4 the first rebuilt bucket is capped by dist._DEFAULT_FIRST_BUCKET_BYTES
    # (1 MiB), not by bucket_cap_mb; the same cap for both makes every release bucket alike.
    monkeypatch.setattr(dist, "_DEFAULT_FIRST_BUCKET_BYTES", int(0.001 * 1024 * 1024))
    ddp = DDP(model, process_group=fake_world.group, bucket_cap_mb=0.001)  # 1,048-byte buckets
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    local_opt = torch.optim.SGD(local.parameters(), lr=0.1)
    per_step = []
    for _ in range(2):
        before = len(fake_world.pg.calls)
        x = torch.rand(5, 16)
        for m, o in ((ddp, opt), (local, local_opt)):
            o.zero_grad()
            m(x).sum().backward()
            o.step()
        per_step.append([c.shapes for c in fake_world.pg.calls[before:] if c.op == "allreduce"])
    for (name, p), q in zip(model.named_parameters(), local.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    # the first step runs in one bucket; then DDP rebuilds its buckets to the cap, in the
    # order the gradients became ready: the last layer's (256 + 8), then the first's (512 + 32)
    assert per_step == [[((808,),)], [((264,),), ((544,),)]]


def _torch_routes_rank_and_size_to_python() -> bool:
    """Does ``ProcessGroup.rank()`` / ``size()`` reach a Python subclass's ``getRank`` /
    ``getSize``? torch 2.4 answers from the C++ fields; 2.13 asks the override."""

    class Probe(dist.ProcessGroup):  # type: ignore[misc]
        def getRank(self) -> int:
            return 5

    return bool(Probe(0, 1).rank() == 5)


@pytest.mark.skipif(
    not _torch_routes_rank_and_size_to_python(),
    reason="this torch answers ProcessGroup.rank()/size() in C++, not through Python "
    "getRank/getSize overrides (torch 2.6+)",
)
def test_get_rank_and_size_overrides_reach_rank_and_size() -> None:
    from fakedist.backends.pypg import PyProcessGroup

    class Renumbered(PyProcessGroup):
        def getRank(self) -> int:
            return 123

        def getSize(self) -> int:
            return 456

    pg = Renumbered(0, 1)
    assert (pg.rank(), pg.size()) == (123, 456)
    assert (PyProcessGroup(2, 3).rank(), PyProcessGroup(2, 3).size()) == (2, 3)
