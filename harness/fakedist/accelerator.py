"""What accelerators torch sees: the kind (``"cuda"``, ``"mps"``, ...) and the device count.

torch is imported lazily, by :func:`accelerator_info` only; without an importable torch there
is no accelerator. The ``accelerator`` marker, the report header and ``python -m fakedist
doctor`` read it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AcceleratorInfo", "accelerator_info"]


@dataclass(frozen=True)
class AcceleratorInfo:
    """What torch sees: the accelerator kind (``"cuda"``, ``"mps"``, ...) and device count."""

    kind: str | None
    count: int

    def describe(self) -> str:
        """``"none"`` or e.g. ``"2 x cuda"``."""
        if self.kind is None or self.count == 0:
            return "none"
        return f"{self.count} x {self.kind}"


def accelerator_info() -> AcceleratorInfo:
    """Detect accelerators through torch (imported here, lazily).

    Uses ``torch.accelerator`` where it exists (torch >= 2.6), else ``torch.cuda``.
    Without an importable torch there is no accelerator.
    """
    try:
        import torch
    except ImportError:
        return AcceleratorInfo(None, 0)
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "current_accelerator"):
        # torch 2.6: current_accelerator() raises when there is none (later: returns None).
        if not acc.is_available():
            return AcceleratorInfo(None, 0)
        device = acc.current_accelerator()
        if device is None:
            return AcceleratorInfo(None, 0)
        return AcceleratorInfo(str(device.type), int(acc.device_count()))
    if torch.cuda.is_available():
        return AcceleratorInfo("cuda", int(torch.cuda.device_count()))
    return AcceleratorInfo(None, 0)
