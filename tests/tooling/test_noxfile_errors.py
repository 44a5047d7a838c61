"""The noxfile's refusals, run through nox itself: each stops before anything is installed.

Each test runs ``nox`` (from PATH; skipped without it) on this repository's noxfile with a
scratch ``--envdir``, so no environment of a real run is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOX = shutil.which("nox")
pytestmark = pytest.mark.skipif(NOX is None, reason="nox is not on PATH")


def nox(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FAKEDIST_", "NOX_", "PYTEST_")) and k not in ("CI", "PYTHONPATH")
    }
    assert NOX is not None
    return subprocess.run(
        [NOX, "--noxfile", str(ROOT / "noxfile.py"), "--envdir", str(tmp_path / "envs"), *args],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_missing_interpreter_fails_instead_of_skipping(tmp_path: Path) -> None:
    proc = nox(tmp_path, "-s", "unit", FAKEDIST_PYTHON="3.99")
    assert proc.returncode != 0
    # nox may add "(took a second)" before the full stop on a loaded machine
    assert "nox > Session unit failed: Python interpreter 3.99 not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_collect_only_is_refused_before_installing(tmp_path: Path) -> None:
    proc = nox(tmp_path, "-s", "tests-cpu", "--", "--co", FAKEDIST_TORCH="2.13")
    assert proc.returncode != 0
    assert (
        "nox > Session tests-cpu(2.13-cpu) aborted: tests-cpu(2.13-cpu): '--co' collects tests"
        " without running any, and a run of no tests cannot pass; list them with python -m"
        " pytest --collect-only instead" in proc.stderr  # nox may add "(took ...)" after
    )
    assert not list((tmp_path / "envs").rglob("site-packages/torch"))  # nothing installed
