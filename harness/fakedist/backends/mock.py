"""``mock_process_group``: MockProcessGroup as in PyTorch's distributed_utils, and torch's
other testing helpers used the same way: ``mock_init_dist``, ``with_dist``,
``with_fake_comms`` and fake_pg's ``FakeStore``.

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
    """A ProcessGroup that answers rank/size queries and nothing else.

    Constructed as in torch's distributed_utils: ``MockProcessGroup(rank=1, world=4)``.
    """

    def __init__(self, rank: int, world: int) -> None:
        super().__init__(rank, world)

    def getBackendName(self) -> str:
        return NAME


class FakeStore(dist.Store):  # type: ignore[misc]
    """A store that holds nothing, as torch's ``fake_pg.FakeStore``: enough to pass as
    ``init_process_group("fake", store=FakeStore(), ...)``, which never reads it."""


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


def mock_init_dist(rank: int, world_size: int) -> None:
    """Initialise the default group on ``mock_process_group``, as torch's ``mock_init_dist``.

    The caller destroys it (``dist.destroy_process_group()``); :func:`with_dist` does both.
    Raises ValueError naming a bad rank or world size, RuntimeError if a group exists.
    """
    from fakedist.world import validate

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
