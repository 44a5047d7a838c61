"""The noxfile's refusals, run through nox itself: each stops before anything is installed.

Each test runs ``nox`` on this repository's noxfile with a scratch ``--envdir``, so no
environment of a real run is touched: the nox next to this interpreter (``nox -s unit``
installs requirements/tools.txt there), else the one on PATH. Without one they skip, and
under CI (``CI`` set) they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from _needs import require

ROOT = Path(__file__).resolve().parents[2]


def _find_nox() -> str | None:
    here = Path(sys.executable).parent / "nox"
    return str(here) if here.is_file() else shutil.which("nox")


NOX = _find_nox()


def nox(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    require(NOX is not None, "nox")
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


def test_an_envdir_nox_cannot_create_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("", encoding="utf-8")  # a read-only checkout, as root can
    proc = nox(tmp_path, "-s", "unit", "--envdir", str(tmp_path / "blocker" / "envs"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"fakedist: nox cannot create its environments in {tmp_path / 'blocker' / 'envs'}"
        f" ({tmp_path / 'blocker'} is not a folder); run nox with --envdir <a writable folder>"
    )
    doc = " ".join((ROOT / "docs" / "bad-inputs.md").read_text(encoding="utf-8").split())
    assert "`fakedist: nox cannot create its environments in /repo/.nox (read-only file" in doc
