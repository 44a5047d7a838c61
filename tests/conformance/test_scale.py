"""Simulated world sizes up to 65,536: DeviceMesh init, FSDP2 and FSDP2+TP steps, shard shapes.

Each test runs as the last rank (the one furthest from rank 0) and derives the expected local
shapes from the world size. Models are tiny so the 65,536-rank cases stay within seconds.
"""

from __future__ import annotations

import math
import typing
from typing import Any

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)
fsdp = pytest.importorskip("torch.distributed.fsdp")
if not hasattr(fsdp, "fully_shard"):
    pytest.skip("torch.distributed.fsdp.fully_shard needs torch 2.6+", allow_module_level=True)

from torch.distributed.device_mesh import init_device_mesh  # noqa: E402
from torch.distributed.tensor.parallel import (  # noqa: E402
    ColwiseParallel,
    RowwiseParallel,
    parallelize_module,
)

from fakedist import fake_world  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

SIZES = [8, 64, 1024, 8192, 65536]
# FSDP2 records events on the current stream; torch.cpu.Stream has none before torch 2.7.
needs_fsdp2_cpu = pytest.mark.skipif(
    not hasattr(torch.cpu.current_stream(), "record_event"),
    reason="FSDP2 on CPU needs torch.cpu.Stream.record_event (added in torch 2.7)",
)


def _fsdp2_takes_eventless_streams() -> bool:
    """Whether FSDP2 accepts the None that torch.cpu.Stream.record_event returns: its stream
    states hold ``Optional`` events from torch 2.8; on 2.7 HSDP asserts its all-reduce event."""
    try:
        from torch.distributed.fsdp._fully_shard._fsdp_param_group import AllReduceState

        hint = typing.get_type_hints(AllReduceState)["event"]
    except (ImportError, KeyError, NameError, TypeError):  # moved or renamed: a newer FSDP2
        return True
    return type(None) in typing.get_args(hint)


needs_hsdp_cpu = pytest.mark.skipif(
    not _fsdp2_takes_eventless_streams(),
    reason="HSDP on CPU needs FSDP2 to accept the None event of torch.cpu.Stream.record_event "
    "(added in torch 2.8)",
)
TP = 2
IN, HIDDEN = 16, 32


def rows(dim0: int, shards: int, index: int) -> int:
    """Rows FSDP2 gives shard ``index`` of ``shards``: chunks of ceil(dim0/shards), last short."""
    chunk = math.ceil(dim0 / shards)
    return max(0, min(chunk, dim0 - index * chunk))


def mlp() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, IN)
    )


def fully_shard_tp(model: Any, mesh: Any) -> None:
    """``fully_shard`` a TP-parallelised model; skip where FSDP2+TP refuses uneven sharding."""
    try:
        fsdp.fully_shard(model, mesh=mesh)
    except NotImplementedError as exc:  # torch 2.7: FSDP+TP only shards dim 0 evenly
        if "uneven sharding" not in str(exc):
            raise
        pytest.skip("FSDP2+TP needs uneven dim-0 sharding (added in torch 2.8)")


def train_step(model: Any) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, IN)).sum().backward()
    opt.step()


def local_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.to_local().shape) for n, p in model.named_parameters()}


@pytest.mark.parametrize("n", SIZES)
def test_device_mesh_init_1d_2d_3d(n: int) -> None:
    rank = n - 1
    with fake_world(n, rank=rank):
        m1 = init_device_mesh("cpu", (n,))
        assert m1.size() == n
        assert m1.get_local_rank() == rank
        m2 = init_device_mesh("cpu", (n // TP, TP), mesh_dim_names=("dp", "tp"))
        assert m2["dp"].size() == n // TP
        assert m2["tp"].size() == TP
        assert list(m2.get_coordinate()) == [rank // TP, rank % TP]
        m3 = init_device_mesh("cpu", (n // 8, 4, TP), mesh_dim_names=("dp", "fsdp", "tp"))
        assert list(m3.get_coordinate()) == [rank // 8, (rank // TP) % 4, rank % TP]
        assert dist.get_process_group_ranks(m3.get_group("tp")) == [rank - 1, rank]


@needs_fsdp2_cpu
@pytest.mark.parametrize("n", SIZES)
def test_fsdp2_step_1d(n: int) -> None:
    rank = n - 1
    with fake_world(n, rank=rank) as world:
        model = mlp()
        fsdp.fully_shard(model, mesh=init_device_mesh("cpu", (n,)))
        train_step(model)
        assert local_shapes(model) == {
            "0.weight": (rows(HIDDEN, n, rank), IN),
            "0.bias": (rows(HIDDEN, n, rank),),
            "2.weight": (rows(IN, n, rank), HIDDEN),
            "2.bias": (rows(IN, n, rank),),
        }
        assert world.comms.count("all_gather_into_tensor") >= 1
        assert {r.group_size for r in world.comms} == {n}


@needs_fsdp2_cpu
@pytest.mark.parametrize("n", SIZES)
def test_fsdp2_tp_step_2d(n: int) -> None:
    rank, dp = n - 1, n // TP
    with fake_world(n, rank=rank) as world:
        mesh = init_device_mesh("cpu", (dp, TP), mesh_dim_names=("dp", "tp"))
        model = mlp()
        parallelize_module(model, mesh["tp"], {"0": ColwiseParallel(), "2": RowwiseParallel()})
        fully_shard_tp(model, mesh["dp"])
        train_step(model)
        i = rank // TP  # this rank's dp index
        col = HIDDEN // TP  # colwise: TP splits dim 0, FSDP splits it again over dp
        assert local_shapes(model) == {
            "0.weight": (rows(col, dp, i), IN),
            "0.bias": (rows(col, dp, i),),
            "2.weight": (rows(IN, dp, i), HIDDEN // TP),
            "2.bias": (rows(IN, dp, i),),
        }
        sizes = {r.op: r.group_size for r in world.comms if r.op != "scatter"}
        assert sizes["all_gather_into_tensor"] == dp
        assert sizes["all_reduce"] == TP


@needs_hsdp_cpu
@needs_fsdp2_cpu  # the closest mark is checked first: its reason names what is missing first
@pytest.mark.parametrize("n", SIZES)
def test_hsdp_tp_step_3d(n: int) -> None:
    rank, replicas, shards = n - 1, n // 8, 4
    with fake_world(n, rank=rank) as world:
        mesh = init_device_mesh("cpu", (replicas, shards, TP), mesh_dim_names=("dp", "fsdp", "tp"))
        model = mlp()
        parallelize_module(model, mesh["tp"], {"0": ColwiseParallel(), "2": RowwiseParallel()})
        fsdp.fully_shard(model, mesh=mesh["dp", "fsdp"])  # replicate over dp, shard over fsdp
        train_step(model)
        j = (rank // TP) % shards
        col = HIDDEN // TP
        assert local_shapes(model) == {
            "0.weight": (rows(col, shards, j), IN),
            "0.bias": (rows(col, shards, j),),
            "2.weight": (rows(IN, shards, j), HIDDEN // TP),
            "2.bias": (rows(IN, shards, j),),
        }
        log = world.comms
        assert {r.group_size for r in log.filter("reduce_scatter_tensor")} == {shards}
        assert {r.group_size for r in log.filter("all_reduce", functional=False)} == {replicas}
