"""fakedist: test PyTorch distributed code without a cluster.

Fake process-group backends that work the same on every torch from 2.1, a context manager and
a decorator that give code a simulated rank, and a pytest plugin (``fake_world`` marker and
fixture, ``accelerator`` marker) loaded automatically once fakedist is installed.
"""

from __future__ import annotations

from fakedist.backends import BACKENDS, register_backends
from fakedist.world import World, current_world, fake_world, with_fake_comms

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "World",
    "__version__",
    "current_world",
    "fake_world",
    "register_backends",
    "with_fake_comms",
]
