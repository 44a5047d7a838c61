"""torch modules imported before any rank starts.

DTensor, FSDP2 and DDP import torch's compiler stack (``torch._dynamo``, which pulls in
``torch._inductor`` and ``torch._functorch``) on first use. Those packages import each other
in a cycle, and Python's import locks cannot serve such a cycle from two threads at once:
threaded ranks that first reach it through different modules fail with "partially
initialized module" or ``_DeadlockError``. The failed import cannot be retried either, since
its C++ operator registrations stay ("Only a single TORCH_LIBRARY can be used to register
the namespace _inductor_test"), so every later test in the process fails too. Importing them
once, in one thread, before the ranks start removes the race; gloo workers get them from the
fork server for speed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

# Order matters only for speed; a torch that lacks one (older releases) skips it.
TORCH_MODULES = (
    "torch",
    "torch._dynamo",
    "torch.distributed",
    "torch.distributed.device_mesh",
    "torch.distributed.tensor",
    "torch.distributed.tensor.parallel",
    "torch.distributed.fsdp",
)


def import_present(names: Iterable[str] = TORCH_MODULES) -> list[str]:
    """Import each module this torch has; return the ones it could not import.

    A module that fails here fails again, with its own error, where the test imports it;
    this only makes sure the first attempt happens in one thread.
    """
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # ModuleNotFoundError on older torch; torch._dynamo's own refusals
            missing.append(name)
    return missing
