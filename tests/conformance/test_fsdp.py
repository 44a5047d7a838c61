"""FSDP on a fake world: FSDP2 (``fully_shard``) trains on CPU; FSDP1 needs an accelerator.

FSDP2 shards every parameter on dim 0 with ``torch.chunk`` semantics (ceil-div, trailing ranks
may get fewer or zero rows), so each rank's local shapes follow from the world size alone.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
from _models import MLP, chunk_len, fully_shard_fn, local, local_shapes, snapshot, train
from _semantics import on_ranks
from torch.utils._python_dispatch import TorchDispatchMode

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*is deprecated:FutureWarning", "ignore:FSDP2-wrapped module .* returned a view"
)


FULL = {"net1.weight": (16, 10), "net1.bias": (16,), "net2.weight": (10, 16), "net2.bias": (10,)}


def expected_shards(world_size: int, rank: int) -> dict[str, tuple[int, ...]]:
    return {n: (chunk_len(shape[0], world_size, rank), *shape[1:]) for n, shape in FULL.items()}


@pytest.mark.parametrize("rank", [*on_ranks(2, 0, 1), *on_ranks(4, 3), *on_ranks(8, 4)])
def test_fully_shard_train_steps(fake_world, rank: int) -> None:
    fully_shard = fully_shard_fn()
    torch.manual_seed(0)
    model = MLP()
    fully_shard(model)
    ws = fake_world.world_size
    assert local_shapes(model) == expected_shards(ws, rank)
    for name, p in model.named_parameters():
        assert type(p).__name__ == "DTensor"
        assert tuple(p.shape) == FULL[name]  # the global shape is preserved
        assert p.device_mesh.size() == ws
    before = snapshot(model)
    losses = train(model, steps=3)
    assert all(math.isfinite(x) for x in losses)
    changed = {n: not torch.equal(before[n], local(p)) for n, p in model.named_parameters()}
    assert changed == dict.fromkeys(FULL, True)


@pytest.mark.parametrize("rank", on_ranks(8, 5, 7))
def test_fully_shard_empty_shards(fake_world, rank: int) -> None:
    """Ranks past the last chunk hold empty shards. The fake all-gather replicates *this*
    rank's (zero-padded) shard, so their unsharded net2 is all zeros and net1 gets no
    gradient: a fake world checks shapes and plumbing here, not learning."""
    fully_shard = fully_shard_fn()
    model = MLP()
    fully_shard(model)
    shapes = local_shapes(model)
    assert shapes == expected_shards(8, rank)
    assert shapes["net2.weight"] == (0, 16)
    assert shapes["net2.bias"] == (0,)
    losses = train(model, steps=2)
    assert all(math.isfinite(x) for x in losses)


@pytest.mark.fake_world(world_size=4, rank=2)
def test_fully_shard_full_tensor_round_trip(fake_world) -> None:
    fully_shard = fully_shard_fn()
    torch.manual_seed(0)
    model = MLP()
    reference = {n: p.detach().clone() for n, p in model.named_parameters()}
    fully_shard(model)
    for name, p in model.named_parameters():
        # this rank's shard is the matching torch.chunk of the original parameter
        assert torch.equal(local(p).detach(), reference[name].chunk(4)[2])


class _CollectiveLog(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if "c10d" in str(func):
            self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.fake_world(world_size=4, rank=1)
def test_fully_shard_step_all_gathers_and_reduce_scatters(fake_world) -> None:
    fully_shard = fully_shard_fn()
    model = MLP()
    fully_shard(model)
    with _CollectiveLog() as log:
        model(torch.randn(4, 10)).sum().backward()
    gathers = [op for op in log.ops if "allgather" in op]
    scatters = [op for op in log.ops if "reduce_scatter" in op]
    assert gathers, log.ops
    assert scatters, log.ops
    assert log.ops.index(gathers[0]) < log.ops.index(scatters[0])
    for p in model.parameters():  # gradients come back sharded like their parameters
        assert p.grad is not None
        assert local(p.grad).shape == local(p).shape


@pytest.mark.accelerator
@pytest.mark.fake_world(world_size=2, rank=0)
def test_fsdp1_construction(fake_world) -> None:
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    model = FSDP(torch.nn.Linear(2, 3, device="cuda"))
    assert dist.get_world_size() == 2
    flat = list(model.parameters())
    assert len(flat) == 1
    assert flat[0].numel() == math.ceil((2 * 3 + 3) / 2)


@pytest.mark.accelerator
@pytest.mark.fake_world(world_size=2, rank=0)
def test_fsdp1_adam_step(fake_world) -> None:
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    model = FSDP(MLP(device="cuda"), use_orig_params=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = model(torch.randn(4, 10, device="cuda")).sum()
    loss.backward()
    optim.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters() if p.numel())
