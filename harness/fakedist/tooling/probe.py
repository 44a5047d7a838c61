"""What the installed torch offers fakedist, for ``python -m fakedist doctor``.

The one tooling module that reads torch and the runtime, and only inside its functions:
importing it imports neither. Each function imports what it reads when called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fakedist.accelerator import AcceleratorInfo

__all__ = ["ProbeError", "TorchBuild", "accelerator", "backends", "fake_features", "torch_build"]


class ProbeError(Exception):
    """torch, or a part of it fakedist needs, is missing; the message says which (one line)."""


@dataclass(frozen=True)
class TorchBuild:
    """The importable torch: its version, CUDA version (None: a CPU build) and folder."""

    version: str
    cuda: str | None
    location: str

    @property
    def label(self) -> str:
        """``"CUDA 12.6"`` or ``"cpu"``."""
        return f"CUDA {self.cuda}" if self.cuda else "cpu"


def torch_build() -> TorchBuild:
    """The installed torch; ProbeError when torch or torch.distributed does not import."""
    try:
        import torch
        import torch.distributed
    except ImportError as exc:
        raise ProbeError(f"torch is not importable ({exc})") from None
    cuda = getattr(torch.version, "cuda", None)
    return TorchBuild(torch.__version__, cuda, os.path.dirname(torch.__file__))


def accelerator() -> AcceleratorInfo:
    """The accelerators torch sees (see :mod:`fakedist.accelerator`)."""
    from fakedist.accelerator import accelerator_info

    return accelerator_info()


def fake_features() -> list[tuple[str, str]]:
    """Fake-backend features: the runtime's detection plus split_group and uniform ranks.

    ProbeError when torch.distributed is not available or torch has no fake process group.
    """
    import torch.distributed as dist

    if not dist.is_available():
        raise ProbeError("torch.distributed is not available in this build")
    try:
        from fakedist.backends import fake

        feats = fake.features()
    except ImportError as exc:
        raise ProbeError(f"torch has no fake process group ({exc})") from None
    yes = {True: "yes", False: "no"}
    # split_group: dist.split_group (torch >= 2.8) or ProcessGroup.split_group.
    pg_cls = getattr(dist, "ProcessGroup", None)
    split = hasattr(dist, "split_group") or hasattr(pg_cls, "split_group")
    uniform = "simulate_uniform_ranks" in feats.option_names
    return [
        ("built-in fake backend", yes[feats.builtin]),
        ("FakeProcessGroup", "C++ class" if feats.cpp_class else "Python class"),
        ("FakeProcessGroup.Options", yes[feats.options]),
        ("error_on_collective", yes[feats.error_on_collective]),
        ("split_group", yes[split]),
        ("simulate_uniform_ranks", yes[uniform]),
    ]


def backends() -> tuple[list[str], list[str]]:
    """The backends fakedist registers (registering them), and every backend torch knows."""
    import torch.distributed as dist

    from fakedist.backends import register_backends

    return list(register_backends()), list(dist.Backend.backend_list)
