"""FSDP + tensor parallel on a 2D (dp, tp) device mesh, at world sizes 4 and 64.

TP shards ``net1`` by rows (ColwiseParallel) and ``net2`` by columns (RowwiseParallel) over the
tp sub-mesh; FSDP2 then shards dim 0 of every parameter over the dp sub-mesh. So this rank's
local shapes follow from (dp, tp) coordinates: net1 rows = chunk(chunk(hidden, tp), dp),
net2.weight = (chunk(10, dp), chunk(hidden, tp)), net2.bias = chunk(10, dp) (replicated on tp).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import pytest
import torch
import torch.distributed as dist
from _models import MLP, chunk_len, fully_shard_fn, local, local_shapes, parallelize, train
from _semantics import on_ranks

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*is deprecated:FutureWarning", "ignore:FSDP2-wrapped module .* returned a view"
)


# (world size, tp size, MLP hidden size): the large world gets a wider MLP so shards are non-empty
CONFIGS = {4: (2, 16), 64: (8, 64)}


def _tp_api() -> Any:
    try:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor import Shard
        from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel
    except ImportError:  # pragma: no cover - torch < 2.5 has these under _tensor
        pytest.skip("needs the public DTensor API torch.distributed.tensor (torch 2.5+)")
    sequence = {
        "net1": ColwiseParallel(input_layouts=Shard(0)),
        "net2": RowwiseParallel(output_layouts=Shard(0)),
    }
    pairwise = {"net1": ColwiseParallel(), "net2": RowwiseParallel()}
    return init_device_mesh, {"sequence": sequence, "pairwise": pairwise}


def _mesh(world_size: int) -> Any:
    init_device_mesh, _ = _tp_api()
    tp = CONFIGS[world_size][0]
    return init_device_mesh("cpu", (world_size // tp, tp), mesh_dim_names=("dp", "tp"))


def expected_local_shapes(world_size: int, rank: int) -> dict[str, tuple[int, ...]]:
    tp, hidden = CONFIGS[world_size]
    dp = world_size // tp
    dp_i, tp_i = divmod(rank, tp)
    rows = chunk_len(chunk_len(hidden, tp, tp_i), dp, dp_i)
    return {
        "net1.weight": (rows, 10),
        "net1.bias": (rows,),
        "net2.weight": (chunk_len(10, dp, dp_i), chunk_len(hidden, tp, tp_i)),
        "net2.bias": (chunk_len(10, dp, dp_i),),
    }


@pytest.mark.parametrize("rank", [*on_ranks(4, 0, 3), *on_ranks(64, 0, 37, 63)])
def test_device_mesh_2d(fake_world, rank: int) -> None:
    ws = fake_world.world_size
    tp = CONFIGS[ws][0]
    mesh = _mesh(ws)
    assert tuple(mesh.shape) == (ws // tp, tp)
    assert mesh.mesh_dim_names == ("dp", "tp")
    assert (mesh["dp"].size(), mesh["tp"].size()) == (ws // tp, tp)
    assert tuple(mesh.get_coordinate()) == divmod(rank, tp)
    first = rank - rank % tp
    assert dist.get_process_group_ranks(mesh["tp"].get_group()) == list(range(first, first + tp))
    assert dist.get_process_group_ranks(mesh["dp"].get_group()) == list(range(rank % tp, ws, tp))


@pytest.mark.parametrize("plan", ["sequence", "pairwise"])
@pytest.mark.parametrize("rank", [*on_ranks(4, 0, 3), *on_ranks(64, 9, 63)])
def test_fsdp2_tp_train_steps(fake_world, plan: str, rank: int) -> None:
    fully_shard = fully_shard_fn()
    _, plans = _tp_api()
    ws = fake_world.world_size
    mesh = _mesh(ws)
    torch.manual_seed(0)
    model = parallelize(MLP(hidden=CONFIGS[ws][1]), mesh["tp"], plans[plan])
    fully_shard(model, mesh=mesh["dp"])
    assert local_shapes(model) == expected_local_shapes(ws, rank)
    for p in model.parameters():
        assert p.device_mesh.mesh_dim_names == ("dp", "tp")  # FSDP+TP compose into a 2D DTensor
    losses = train(model, steps=10, batch=16, lr=1e-3)
    assert len(losses) == 10
    assert all(math.isfinite(x) for x in losses), losses


@pytest.mark.fake_world(world_size=4, rank=1)
def test_tp_shards_are_chunks_of_the_full_weights(fake_world) -> None:
    from torch.distributed.tensor.parallel import parallelize_module

    if "src_data_rank" not in inspect.signature(parallelize_module).parameters:
        pytest.skip("needs parallelize_module(src_data_rank=...) (torch 2.7+)")
    _, plans = _tp_api()
    mesh = _mesh(4)
    torch.manual_seed(0)
    full = MLP()
    reference = {n: p.detach().clone() for n, p in full.named_parameters()}
    model = parallelize(full, mesh["tp"], plans["pairwise"])
    tp_i = 1  # rank 1 of a (2, 2) mesh
    assert torch.equal(local(model.net1.weight).detach(), reference["net1.weight"].chunk(2)[tp_i])
    assert torch.equal(
        local(model.net2.weight).detach(), reference["net2.weight"].chunk(2, dim=1)[tp_i]
    )
    assert torch.equal(local(model.net2.bias).detach(), reference["net2.bias"])


def test_consecutive_worlds_do_not_share_dtensor_state() -> None:
    """DTensor caches sharding decisions keyed on DeviceMesh, whose equality ignores the group
    names; a later world with other group names must not reuse a dead world's groups."""
    import fakedist

    _, plans = _tp_api()
    outputs = []
    for rank in (0, 2):  # the tp sub-group gets a different name in the second world
        with fakedist.fake_world(4, rank=rank):
            mesh = _mesh(4)
            torch.manual_seed(0)
            model = parallelize(MLP(), mesh["tp"], plans["pairwise"])
            out = model(torch.ones(2, 10))  # waits on RowwiseParallel's output collective:
            outputs.append((tuple(out.shape), bool(out.isfinite().all())))  # reading values
    assert outputs == [((2, 10), True), ((2, 10), True)]


@pytest.mark.accelerator
@pytest.mark.parametrize("plan", ["sequence", "pairwise"])
@pytest.mark.fake_world(world_size=4, rank=0)
def test_fsdp1_tp_train_steps(fake_world, plan: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    _, plans = _tp_api()
    mesh = init_device_mesh("cuda", (2, 2), mesh_dim_names=("dp", "tp"))
    model = parallelize(MLP(device="cuda"), mesh["tp"], plans[plan])
    sharded = FSDP(model, use_orig_params=True, device_mesh=mesh["dp"])
    optim = torch.optim.Adam(sharded.parameters(), lr=1e-4)
    for step in range(10):
        torch.manual_seed(step)
        loss = sharded(torch.randn(20, 10, device="cuda")).sum()
        loss.backward()
        optim.step()
        assert torch.isfinite(loss)
