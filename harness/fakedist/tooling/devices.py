"""NVIDIA driver detection, without torch.

Detection follows uv's ``--torch-backend=auto``: the kernel module version
(``/sys/module/nvidia/version``), then ``/proc/driver/nvidia/version``, then ``nvidia-smi``
on PATH. The driver -> CUDA variant choice lives with the matrix types
(:func:`fakedist.tooling.matrix.choose_cuda_variant`); what torch itself sees is
:mod:`fakedist.accelerator`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DriverVersion", "detect_nvidia_driver"]

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
