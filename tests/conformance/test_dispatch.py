"""The dispatcher view: a TorchDispatchMode sees c10d ops for fake-backend collectives, and
FakeProcessGroup can only be made through ``init_process_group`` where torch says so."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch.utils._python_dispatch import TorchDispatchMode

from fakedist.backends.fake import features

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")


class OpLog(TorchDispatchMode):
    """Records the name of every op dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


# torch 2.1-2.2's FakeProcessGroup is a Python ProcessGroup that dist.* calls directly: no
# c10d op is dispatched. From 2.3 it is a C++ backend behind a ProcessGroup that dispatches them.
NEEDS_C10D_OPS = pytest.mark.skipif(
    not features().cpp_class,
    reason="needs the C++ FakeProcessGroup, whose collectives dispatch c10d.* ops (torch 2.3+)",
)


@NEEDS_C10D_OPS
@pytest.mark.fake_world(world_size=3, rank=0)
def test_dispatch_mode_sees_allreduce(fake_world) -> None:
    with OpLog() as log:
        t = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        dist.all_reduce(t)
    assert "aten.lift_fresh.default" in log.ops
    assert "c10d.allreduce_.default" in log.ops
    assert t.shape == (2, 3)


@pytest.mark.parametrize(
    ("call", "op"),
    [
        (
            lambda: dist.all_gather([torch.empty(2) for _ in range(3)], torch.ones(2)),
            "c10d.allgather_.default",
        ),
        (lambda: dist.broadcast(torch.ones(2), src=1), "c10d.broadcast_.default"),
        (
            lambda: dist.all_gather_into_tensor(torch.empty(6), torch.ones(2)),
            "c10d._allgather_base_.default",
        ),
        (
            lambda: dist.reduce_scatter_tensor(torch.empty(2), torch.ones(6)),
            "c10d._reduce_scatter_base_.default",
        ),
        (lambda: dist.barrier(), "c10d.barrier.default"),
    ],
    ids=["all_gather", "broadcast", "all_gather_into_tensor", "reduce_scatter_tensor", "barrier"],
)
@NEEDS_C10D_OPS
@pytest.mark.fake_world(world_size=3, rank=2)
def test_dispatch_mode_sees_each_collective(fake_world, call: Any, op: str) -> None:
    with OpLog() as log:
        call()
    c10d_ops = [name for name in log.ops if name.startswith("c10d.")]
    assert c10d_ops == [op]


@pytest.mark.skipif(
    not features().direct_construction_forbidden,
    reason="this torch's FakeProcessGroup has a public constructor "
    "(no FakeProcessGroup._create_internal before torch 2.10)",
)
def test_direct_construction_forbidden() -> None:
    from torch._C._distributed_c10d import FakeProcessGroup

    with pytest.raises(TypeError, match="No constructor defined"):
        FakeProcessGroup(rank=0, world_size=3)
    assert not dist.is_initialized()
