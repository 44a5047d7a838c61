"""``python -m fakedist doctor`` on the installed torch: its build, devices and fake features."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from fakedist.accelerator import accelerator_info
from fakedist.tooling import cli
from fakedist.tooling.devices import detect_nvidia_driver

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FAKEDIST_")}
    return subprocess.run(
        [sys.executable, "-m", "fakedist", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_doctor_reports_torch_devices_and_fake_features() -> None:
    proc = run("doctor")
    assert proc.returncode == 0, proc.stderr
    rows = dict(
        line.split(":", 1) for line in proc.stdout.splitlines() if not line.startswith("fake:")
    )
    fake = dict(
        line[len("fake: ") :].split(":", 1)
        for line in proc.stdout.splitlines()
        if line.startswith("fake:")
    )
    rows = {k: v.strip() for k, v in rows.items()}
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "cpu build"
    assert rows["torch"].startswith(f"{torch.__version__} ({build}) at ")
    assert rows["devices"] == accelerator_info().describe()
    assert rows["python"].startswith(sys.version.split()[0])
    assert list(fake) == [
        "built-in fake backend",
        "FakeProcessGroup",
        "FakeProcessGroup.Options",
        "error_on_collective",
        "split_group",
        "simulate_uniform_ranks",
    ]
    assert fake["split_group"].strip() == ("yes" if hasattr(dist, "split_group") else "no")
    assert rows["fakedist backends"] == "fake, mock_process_group, pypg"
    assert {"fake", "pypg"} <= set(rows["torch backends"].split(", "))
    if detect_nvidia_driver() is None:
        assert rows["nvidia driver"] == "none"
        assert rows["cuda variant"] == "cpu (no NVIDIA driver found)"


def test_doctor_require_accelerator(capsys: pytest.CaptureFixture[str]) -> None:
    # in-process: the test above runs ``python -m fakedist`` as a process already
    code = cli.main(["doctor", "--require-accelerator"])
    err = capsys.readouterr().err
    if accelerator_info().count:
        assert code == 0, err
    else:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "cpu"
        driver = detect_nvidia_driver() or "none"
        assert code == 1
        assert err == (
            f"fakedist doctor: torch {torch.__version__} ({build} build) sees no accelerator"
            f" (nvidia driver: {driver})\n"
        )
