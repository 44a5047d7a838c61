"""The names of the environment variables fakedist's runtime reads, in one place.

A leaf: it imports nothing, so torch-free modules (:mod:`fakedist.isolation`) can share the
names with the modules that import torch (:mod:`fakedist.faults`).
"""

from __future__ import annotations

__all__ = ["FAULTS", "TIMEOUT"]

FAULTS = "FAKEDIST_FAULTS"  # a fault schedule as JSON (fakedist.faults)
TIMEOUT = "FAKEDIST_TIMEOUT"  # seconds a world may run (fakedist.timeouts)
