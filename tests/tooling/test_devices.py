"""fakedist.tooling.devices: driver detection from fake /sys, /proc and nvidia-smi; and the
driver -> variant choice (fakedist.tooling.matrix.choose_cuda_variant)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fakedist.tooling.devices import DriverVersion, detect_nvidia_driver
from fakedist.tooling.matrix import CudaChoiceError, choose_cuda_variant, load_matrix

REPO_MATRIX = Path(__file__).resolve().parents[2] / "matrix" / "torch.toml"
PROC_OPEN = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.144.03  Release Build  "
    "(dvs-builder@U16-I3-D08-1-2)  Mon Dec 30 17:26:13 UTC 2024\n"
    "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n"
)
PROC_OLD = (
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  375.74  Wed Jun 14 01:39:39 PDT 2017\n"
    "GCC version:  gcc version 5.4.0 20160609 (Ubuntu 5.4.0-6ubuntu1~16.04.4)\n"
)


def put(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def fake_smi(folder: Path, body: str) -> str:
    """A fake nvidia-smi script in ``folder``; returns a PATH holding only that folder."""
    folder.mkdir(exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(folder)


def test_driver_version_parse_and_order() -> None:
    v = DriverVersion.parse(" 450.80.02\n")
    assert v.parts == (450, 80, 2)
    assert str(v) == "450.80.02"
    assert DriverVersion.parse("450.80.02") < DriverVersion.parse("525.60.13")
    assert DriverVersion.parse("580") <= DriverVersion.parse("580.65.06")
    assert DriverVersion.parse("525.60.13") == DriverVersion.parse("525.060.13")
    with pytest.raises(ValueError, match=r"^not an NVIDIA driver version: 'N/A'$"):
        DriverVersion.parse("N/A")


def test_sys_module_version_comes_first(tmp_path: Path) -> None:
    put(tmp_path, "sys/module/nvidia/version", "580.65.06\n")
    put(tmp_path, "proc/driver/nvidia/version", PROC_OPEN)
    path = fake_smi(tmp_path / "bin", "echo 999.99")
    assert detect_nvidia_driver(tmp_path, path) == DriverVersion.parse("580.65.06")


@pytest.mark.parametrize(("text", "expected"), [(PROC_OPEN, "550.144.03"), (PROC_OLD, "375.74")])
def test_proc_driver_version(tmp_path: Path, text: str, expected: str) -> None:
    put(tmp_path, "proc/driver/nvidia/version", text)
    assert str(detect_nvidia_driver(tmp_path, str(tmp_path / "empty"))) == expected


def test_unparseable_files_fall_through_to_nvidia_smi(tmp_path: Path) -> None:
    put(tmp_path, "sys/module/nvidia/version", "garbage\n")
    put(tmp_path, "proc/driver/nvidia/version", "NVRM version: unknown\n")
    path = fake_smi(tmp_path / "bin", "echo 525.60.13; echo 525.60.13")
    assert detect_nvidia_driver(tmp_path, path) == DriverVersion.parse("525.60.13")


def test_nvidia_smi_receives_the_query_arguments(tmp_path: Path) -> None:
    log = tmp_path / "args.txt"
    path = fake_smi(tmp_path / "bin", f'echo "$@" > {log}; echo 550.54.14')
    assert str(detect_nvidia_driver(tmp_path, path)) == "550.54.14"
    assert log.read_text(encoding="utf-8").split() == [
        "--query-gpu=driver_version",
        "--format=csv,noheader",
    ]


@pytest.mark.parametrize(
    "body",
    ["echo 'NVIDIA-SMI has failed' >&2; exit 9", "exit 0", "echo 'No devices were found'"],
)
def test_failing_nvidia_smi_means_no_driver(tmp_path: Path, body: str) -> None:
    assert detect_nvidia_driver(tmp_path, fake_smi(tmp_path / "bin", body)) is None


def test_no_driver_anywhere(tmp_path: Path) -> None:
    assert detect_nvidia_driver(tmp_path, str(tmp_path / "no-bin")) is None


def test_default_path_is_the_process_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", fake_smi(tmp_path / "bin", "echo 535.104.05") + os.pathsep)
    assert str(detect_nvidia_driver(tmp_path)) == "535.104.05"


# driver -> variant on the repository's matrix: (driver, torch minor, variant or None)
CHOICES = [
    ("450.80.02", "2.5", "cu118"),
    ("450.80.02", "2.7", "cu118"),
    ("450.80.02", "2.9", None),
    ("525.60.13", "2.1", "cu121"),
    ("525.60.13", "2.5", "cu124"),
    ("525.60.13", "2.9", "cu128"),
    ("525.60.13", "2.13", "cu126"),
    ("550.144.03", "2.8", "cu129"),
    ("550.144.03", "2.14", "cu126"),
    ("580.65.06", "2.9", "cu130"),
    ("580.65.06", "2.13", "cu132"),
    ("580.65.06", "2.6", "cu126"),
]


@pytest.mark.parametrize(("driver", "minor", "variant"), CHOICES)
def test_choose_cuda_variant(driver: str, minor: str, variant: str | None) -> None:
    release = load_matrix(REPO_MATRIX).release(minor)
    assert release is not None
    if variant is not None:
        assert choose_cuda_variant(release, DriverVersion.parse(driver)).name == variant
    else:
        with pytest.raises(CudaChoiceError) as info:
            choose_cuda_variant(release, DriverVersion.parse(driver))
        assert str(info.value) == (
            # names the build that driver would get: the newest of the oldest-driver builds
            f"torch {release.version} needs NVIDIA driver >= 525.60.13 (for its cu128 build); "
            f"this machine has driver {driver}"
        )


def test_driver_450_is_too_old_for_every_13x_release() -> None:
    release = load_matrix(REPO_MATRIX).release("2.13")
    assert release is not None
    with pytest.raises(
        CudaChoiceError, match=r"needs NVIDIA driver >= 525\.60\.13 \(for its cu126"
    ):
        choose_cuda_variant(release, DriverVersion.parse("450"))


def test_no_cuda_build() -> None:
    release = load_matrix(REPO_MATRIX).release("2.13")
    assert release is not None
    cpu_only = type(release)(release.minor, release.version, release.python, release.variants[:1])
    with pytest.raises(CudaChoiceError, match=r"^torch 2\.13\.0 has no CUDA build in the matrix$"):
        choose_cuda_variant(cpu_only, DriverVersion.parse("580"))
