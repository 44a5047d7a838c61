"""Accelerator and NVIDIA driver detection, and the driver -> CUDA variant choice.

Driver detection follows uv's ``--torch-backend=auto``: the kernel module version
(``/sys/module/nvidia/version``), then ``/proc/driver/nvidia/version``, then
``nvidia-smi`` on PATH. torch is imported lazily, only by :func:`accelerator_info`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fakedist.matrix import TorchRelease, Variant

__all__ = [
    "AcceleratorInfo",
    "CudaChoiceError",
    "DriverVersion",
    "accelerator_info",
    "choose_cuda_variant",
    "detect_nvidia_driver",
]

_DRIVER_RE = re.compile(r"\d+(?:\.\d+){0,3}")
# First dotted number on the "NVRM version:" line, e.g.
# "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.144.03  Release Build ..."
_PROC_RE = re.compile(r"\s(\d+\.\d+(?:\.\d+)*)\s")
_NVIDIA_SMI_ARGS = ("--query-gpu=driver_version", "--format=csv,noheader")


@dataclass(frozen=True, order=True)
class DriverVersion:
    """An NVIDIA driver version such as ``550.144.03``; compares numerically."""

    parts: tuple[int, ...]
    text: str = field(compare=False, default="")

    @classmethod
    def parse(cls, text: str) -> DriverVersion:
        """Parse ``text``; raise ValueError naming it when it is not a driver version."""
        stripped = text.strip()
        if not _DRIVER_RE.fullmatch(stripped):
            raise ValueError(f"not an NVIDIA driver version: {text!r}")
        return cls(tuple(int(p) for p in stripped.split(".")), stripped)

    def __str__(self) -> str:
        return self.text or ".".join(str(p) for p in self.parts)


class CudaChoiceError(ValueError):
    """No CUDA build of a torch release runs with the given driver."""


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _from_sys_module(root: Path) -> DriverVersion | None:
    text = _read_text(root / "sys" / "module" / "nvidia" / "version")
    if text is None:
        return None
    try:
        return DriverVersion.parse(text)
    except ValueError:
        return None


def _from_proc(root: Path) -> DriverVersion | None:
    text = _read_text(root / "proc" / "driver" / "nvidia" / "version")
    if not text:
        return None
    match = _PROC_RE.search(text.splitlines()[0] + " ")
    if match is None:
        return None
    try:
        return DriverVersion.parse(match.group(1))
    except ValueError:
        return None


def _from_nvidia_smi(path: str | None) -> DriverVersion | None:
    exe = shutil.which("nvidia-smi", path=path)
    if exe is None:
        return None
    try:
        proc = subprocess.run(
            [exe, *_NVIDIA_SMI_ARGS], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return None
    try:
        return DriverVersion.parse(lines[0])
    except ValueError:
        return None


def detect_nvidia_driver(root: str | Path = "/", path: str | None = None) -> DriverVersion | None:
    """Return the NVIDIA driver version of this machine, or None when there is none.

    ``root`` prefixes the /sys and /proc files and ``path`` is the PATH searched for
    ``nvidia-smi`` (None = the process's PATH); both exist so tests can fake a machine.
    """
    base = Path(root)
    return _from_sys_module(base) or _from_proc(base) or _from_nvidia_smi(path)


def _cuda_key(variant: Variant) -> tuple[int, ...]:
    return tuple(int(p) for p in (variant.cuda or "0").split("."))


def choose_cuda_variant(release: TorchRelease, driver: DriverVersion) -> Variant:
    """The newest CUDA build of ``release`` that ``driver`` runs.

    Raises CudaChoiceError naming the driver needed when none qualifies.
    """
    cuda = sorted((v for v in release.variants if v.cuda), key=_cuda_key, reverse=True)
    if not cuda:
        raise CudaChoiceError(f"torch {release.version} has no CUDA build in the matrix")
    for variant in cuda:
        if variant.min_driver is None or driver >= variant.min_driver:
            return variant
    oldest = min(cuda, key=lambda v: v.min_driver or DriverVersion(()))
    raise CudaChoiceError(
        f"torch {release.version} needs NVIDIA driver >= {oldest.min_driver} "
        f"(for its {oldest.name} build); this machine has driver {driver}"
    )


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
