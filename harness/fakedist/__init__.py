"""fakedist: test PyTorch distributed code without a cluster.

Fake process-group backends that work the same on every torch from 2.1, a context manager and
a decorator that give code a simulated rank, and a pytest plugin (``fake_world`` marker and
fixture, ``accelerator`` marker) loaded automatically once fakedist is installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fakedist.backends import BACKENDS, register_backends

if TYPE_CHECKING:
    from fakedist.decorator import with_fake_comms
    from fakedist.ranks import check_ranks
    from fakedist.world import World, current_world, fake_world

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "World",
    "__version__",
    "check_ranks",
    "current_world",
    "fake_world",
    "register_backends",
    "with_fake_comms",
]


def __getattr__(name: str) -> Any:
    """Import the world API (and so torch) on first use: ``python -m fakedist matrix``, nox
    and the Action's input validation import fakedist without paying for torch."""
    if name in ("World", "current_world", "fake_world"):
        return getattr(importlib.import_module("fakedist.world"), name)
    if name == "check_ranks":
        return importlib.import_module("fakedist.ranks").check_ranks
    if name == "with_fake_comms":
        return importlib.import_module("fakedist.decorator").with_fake_comms
    raise AttributeError(f"module 'fakedist' has no attribute {name!r}")
