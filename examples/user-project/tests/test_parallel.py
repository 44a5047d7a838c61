"""toyparallel on a simulated 4-rank world (dp=2 x tp=2), written with fakedist's plugin."""

import pytest
import torch
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import DTensor, Shard
from toyparallel import MLP, parallelize, train_step


def _mesh():
    return init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))


@pytest.mark.fake_world(world_size=4, rank=3)
def test_world_is_what_the_marker_says(fake_world):
    assert (fake_world.world_size, fake_world.rank) == (4, 3)
    assert torch.distributed.get_world_size() == 4
    assert torch.distributed.get_rank() == 3


@pytest.mark.fake_world(world_size=4, rank=1)
def test_parameters_are_sharded_on_both_mesh_dims(fake_world):
    model = parallelize(MLP(dim=8, hidden=32), _mesh())
    up = model.up.weight
    assert isinstance(up, DTensor)
    assert up.shape == (32, 8)  # the global shape is unchanged
    # TP splits the 32 rows over tp=2, FSDP2 splits those 16 again over dp=2.
    assert up.to_local().shape == (8, 8)
    assert Shard(0) in up.placements


@pytest.mark.fake_world(world_size=4, rank=2)
def test_train_step_updates_local_shards(fake_world):
    torch.manual_seed(0)
    model = parallelize(MLP(), _mesh())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = model.down.weight.to_local().clone()
    losses = [train_step(model, optimizer, torch.randn(4, 8)) for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert not torch.equal(before, model.down.weight.to_local())


@pytest.mark.fake_world(world_size=2)
def test_wrong_mesh_is_refused(fake_world):
    mesh = init_device_mesh("cpu", (2,), mesh_dim_names=("dp",))
    with pytest.raises(ValueError, match=r"expected a \('dp', 'tp'\) mesh, got \('dp',\)"):
        parallelize(MLP(), mesh)
