"""One passing and one deliberately failing test: the self-test asserts the failure."""

import pytest
import torch


@pytest.mark.fake_world(world_size=2, rank=0)
def test_all_reduce_passes(fake_world):
    t = torch.ones(2)
    torch.distributed.all_reduce(t)
    assert t.shape == (2,)


@pytest.mark.fake_world(world_size=2, rank=1)
def test_deliberately_fails(fake_world):
    assert torch.distributed.get_rank() == 0, "deliberate failure: this rank is 1"
