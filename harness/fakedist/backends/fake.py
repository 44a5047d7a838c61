"""PyTorch's ``fake`` backend (FakeProcessGroup), made to behave the same on every torch >= 2.1.

Everything this project knows about the fake backend's history lives here:

* torch 2.1-2.2: ``FakeProcessGroup`` is a Python class in
  ``torch.testing._internal.distributed.fake_pg``; importing that module registers ``"fake"``.
* torch 2.3: ``FakeProcessGroup`` moved to C++ (``torch._C._distributed_c10d``); the testing
  module still registers the backend.
* torch 2.9: ``FakeProcessGroup.Options`` (passed as ``pg_options``), extended-API creator.
* torch 2.10: ``Options.error_on_collective`` fails every collective; the C++ class loses its
  public constructor (``_create_internal`` instead).
* torch 2.11: ``"fake"`` is built into ``torch.distributed`` (``Backend.FAKE``); its creator
  is still registered by the testing module, which ``init_process_group`` imports on demand.

Nothing here parses version strings: each branch tests for the feature itself.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any

NAME = "fake"
_TESTING_MODULE = "torch.testing._internal.distributed.fake_pg"


@dataclass(frozen=True)
class FakeFeatures:
    """What this torch's fake backend offers."""

    builtin: bool  # "fake" registered by torch.distributed itself (torch >= 2.11)
    cpp_class: bool  # FakeProcessGroup implemented in C++ (torch >= 2.3)
    options: bool  # FakeProcessGroup.Options exists (torch >= 2.9)
    error_on_collective: bool  # Options.error_on_collective exists (torch >= 2.10)
    direct_construction_forbidden: bool  # no public constructor (torch >= 2.10)
    option_names: tuple[str, ...]  # settable attributes of Options, empty before 2.9


def _backend_list() -> list[str]:
    import torch.distributed as dist

    return list(dist.Backend.backend_list)


def _fake_pg_class() -> Any:
    """Return FakeProcessGroup: the C++ class (torch >= 2.3) or the Python one (2.1-2.2)."""
    try:
        from torch._C._distributed_c10d import FakeProcessGroup  # torch >= 2.3

        return FakeProcessGroup
    except ImportError:
        module = importlib.import_module(_TESTING_MODULE)  # torch 2.1-2.2
        return module.FakeProcessGroup


@functools.lru_cache(maxsize=1)
def features() -> FakeFeatures:
    """Detect the fake backend's features on the installed torch (cached)."""
    import torch.distributed as dist

    # Backend.FAKE is a class attribute from 2.11; earlier only registration adds it, and
    # register() calls features() before registering (importing torch's fake_pg module first
    # would make an older torch look built-in).
    builtin = "FAKE" in vars(dist.Backend)
    cls = _fake_pg_class()
    try:
        from torch._C._distributed_c10d import FakeProcessGroup as _cpp  # noqa: F401

        cpp_class = True
    except ImportError:
        cpp_class = False
    options_cls = getattr(cls, "Options", None)
    names: tuple[str, ...] = ()
    if options_cls is not None:
        names = tuple(
            sorted(
                n
                for n in dir(options_cls)
                if not n.startswith("_") and not callable(getattr(options_cls, n, None))
            )
        )
    return FakeFeatures(
        builtin=builtin,
        cpp_class=cpp_class,
        options=options_cls is not None,
        error_on_collective="error_on_collective" in names,
        direct_construction_forbidden=cpp_class and hasattr(cls, "_create_internal"),
        option_names=names,
    )


def register() -> None:
    """Make ``init_process_group("fake")`` available; idempotent."""
    import torch.distributed as dist

    features()
    plugins = getattr(dist.Backend, "_plugins", {})
    if NAME not in _backend_list() or NAME.upper() not in plugins:
        # Even where "fake" is listed as built in (2.11+), its creator is registered by the
        # testing module; init_process_group imports it only when no store is passed.
        importlib.import_module(_TESTING_MODULE)


def make_pg_options(options: dict[str, Any]) -> Any | None:
    """Build FakeProcessGroup.Options from keyword options, or None when there are none.

    Raises ValueError naming an option this torch's fake backend does not have.
    """
    if not options:
        return None
    feats = features()
    for key in options:
        if key not in feats.option_names:
            none = "none (FakeProcessGroup.Options needs torch 2.9+)"
            have = ", ".join(feats.option_names) or none
            raise ValueError(
                f"fake backend: unknown option {key!r} on this torch; options it has: {have}"
            )
    opts = _fake_pg_class().Options()
    for key, value in options.items():
        setattr(opts, key, value)
    return opts


ERROR_MESSAGE = "FakeProcessGroup collective operation error"
"""The start of the message torch's fake backend raises with ``error_on_collective``."""
