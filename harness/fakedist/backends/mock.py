"""``mock_process_group``: MockProcessGroup as in PyTorch's distributed_utils.

A process group with no collectives at all: only rank and world-size queries work. Useful to
test code that asks ``dist.get_world_size()`` without doing communication. Initialisation uses
the store-based barrier trick from torch's ``mock_init_dist``: a HashStore pre-loaded so the
barrier believes every other rank has already checked in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import torch.distributed as dist
import torch.distributed.distributed_c10d as c10d

from fakedist.backends._register import register_plugin

NAME = "mock_process_group"
F = TypeVar("F", bound=Callable[..., Any])


class MockProcessGroup(dist.ProcessGroup):  # type: ignore[misc]
    """A ProcessGroup that answers rank/size queries and nothing else."""

    def getBackendName(self) -> str:
        return NAME


def create_mock_pg(prefix_store: Any, rank: int, world_size: int, timeout: Any) -> MockProcessGroup:
    """Backend creator with the classic (store, rank, size, timeout) signature."""
    return MockProcessGroup(rank, world_size)


def register() -> None:
    """Register ``mock_process_group`` unless it already is (idempotent)."""
    if NAME not in dist.Backend.backend_list:
        register_plugin(NAME, create_mock_pg, extended_api=False)


def prepared_store(world_size: int) -> dist.Store:
    """A HashStore that makes the store-based init barrier pass for a single rank."""
    store = dist.HashStore()
    # Group index 0: the default group. Torch releases without the barrier ignore the key.
    prefix = getattr(c10d, "STORE_BASED_BARRIER_PREFIX", "store_based_barrier_key")
    store.add(f"{prefix}:0", world_size - 1)
    return store


@contextmanager
def with_dist(rank: int = 0, world_size: int = 2) -> Iterator[None]:
    """Context manager: a mock world (as torch's ``with_dist``), always torn down."""
    from fakedist.world import fake_world

    with fake_world(world_size, rank=rank, backend=NAME):
        yield


def with_fake_comms(func: F | None = None, rank: int = 0, world_size: int = 2) -> Any:
    """Decorator as torch's ``with_fake_comms``: run ``func`` inside :func:`with_dist`."""
    from fakedist.world import with_fake_comms as _with_fake_comms

    return _with_fake_comms(func, world_size=world_size, rank=rank, backend=NAME)


def init_kwargs(world_size: int) -> dict[str, Any]:
    """Extra ``init_process_group`` arguments this backend needs."""
    return {"store": prepared_store(world_size), "timeout": timedelta(seconds=1)}
