"""torch's testing helpers for ``mock_process_group``, as in PyTorch's distributed_utils:
``mock_init_dist``, ``with_dist`` and ``with_fake_comms``, with the backend's
``MockProcessGroup`` and fake_pg's ``FakeStore``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch.distributed as dist

from fakedist.backends.mock import NAME, FakeStore, MockProcessGroup, init_kwargs, register
from fakedist.decorator import with_fake_comms as _with_fake_comms
from fakedist.world import fake_world, validate

__all__ = ["FakeStore", "MockProcessGroup", "mock_init_dist", "with_dist", "with_fake_comms"]

F = TypeVar("F", bound=Callable[..., Any])


def mock_init_dist(rank: int, world_size: int) -> None:
    """Initialise the default group on ``mock_process_group``, as torch's ``mock_init_dist``.

    The caller destroys it (``dist.destroy_process_group()``); :func:`with_dist` does both.
    Raises ValueError naming a bad rank or world size, RuntimeError if a group exists.
    """
    validate(world_size, rank, NAME)
    if dist.is_initialized():
        raise RuntimeError(
            f"mock_init_dist: a default process group is already initialised "
            f"(backend {dist.get_backend()!r}); destroy it first"
        )
    register()
    dist.init_process_group(NAME, rank=rank, world_size=world_size, **init_kwargs(world_size))


@contextmanager
def with_dist(rank: int = 0, world_size: int = 2) -> Iterator[None]:
    """Context manager: a mock world (as torch's ``with_dist``), always torn down."""
    with fake_world(world_size, rank=rank, backend=NAME):
        yield


def with_fake_comms(func: F | None = None, rank: int = 0, world_size: int = 2) -> Any:
    """Decorator as torch's ``with_fake_comms``: run ``func`` inside :func:`with_dist`."""
    return _with_fake_comms(func, world_size=world_size, rank=rank, backend=NAME)
