"""``mock_process_group``: MockProcessGroup as in PyTorch's distributed_utils, and fake_pg's
``FakeStore``. torch's helpers around them (``mock_init_dist``, ``with_dist``,
``with_fake_comms``) live in :mod:`fakedist.mock`, above the worlds they open.

A process group with no collectives at all: only rank and world-size queries work. Useful to
test code that asks ``dist.get_world_size()`` without doing communication. Initialisation uses
the store-based barrier trick from torch's ``mock_init_dist``: a HashStore pre-loaded so the
barrier believes every other rank has already checked in.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import torch.distributed as dist
import torch.distributed.distributed_c10d as c10d

from fakedist.backends._register import register_plugin

__all__ = ["NAME", "FakeStore", "MockProcessGroup", "init_kwargs", "register"]

NAME = "mock_process_group"


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


def init_kwargs(world_size: int) -> dict[str, Any]:
    """Extra ``init_process_group`` arguments this backend needs."""
    return {"store": prepared_store(world_size), "timeout": timedelta(seconds=1)}
