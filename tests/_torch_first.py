"""Import torch and the fakedist modules that hold torch state, before any test runs.

Imported by the conftest of each torch suite (tests/unit, tests/conformance); tests/tooling
runs without torch and never imports this.

pytester restores sys.modules after each test that uses it. A torch first imported inside
such a test would be dropped and imported a second time by the next one, which crashes the
interpreter (C extensions do not re-initialise), or fails with "Only a single TORCH_LIBRARY
can be used to register the namespace ..." (C++ operator registrations stay): hence also the
modules the threaded fidelity preloads. A fakedist module would come back as a second copy,
with a second PyProcessGroup class next to the one registered as the pypg backend, and a
second recorder stack.
"""

import torch.distributed  # noqa: F401

import fakedist.backends.mock
import fakedist.backends.pypg
import fakedist.world  # noqa: F401
from fakedist.fidelity.preload import import_present

import_present()
