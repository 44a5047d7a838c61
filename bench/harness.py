"""Comparison 3: what the harness costs around pytest, and how long a fresh environment takes.

- harness: ``nox -s "tests-cpu(<cell>)" -R -- <tests>`` on the existing (warm) environment
  vs bare ``python -m pytest <tests>`` with that environment's interpreter. nox runs from a
  scratch copy of the project (``--envdir`` pointing at the real .nox), so the project's own
  reports/ and coverage data are left alone.
- setup: a fresh virtualenv + the cell's torch + pytest, uv from a warm cache vs pip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NOX = "nox -R tests-cpu"
PYTEST = "bare pytest"
COVERAGE = "coverage run -m pytest"
UV, PIP = "uv, warm cache", "pip"
COPY = ("noxfile.py", "pyproject.toml", "matrix", "requirements", "harness", "tests")
TIMEOUT_S = 600


def session_envdir(session: str) -> str:
    """nox's folder name for a session: ``tests-cpu(2.13-cpu)`` -> ``tests-cpu-2-13-cpu``."""
    return re.sub(r"[^\w-]+", "-", session).strip("-")


def _run(argv: Sequence[str], cwd: Path | None = None) -> float:
    """Seconds ``argv`` takes; RuntimeError with its output's tail when it fails."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-1500:]
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")
    return elapsed


def _copy_project(root: Path, dest: Path) -> None:
    for name in COPY:
        src = root / name
        if src.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)


def harness_overhead(
    root: Path, nox_python: str, cell: str, tests: Sequence[str], reps: int
) -> dict[str, Any]:
    """Alternate bare pytest and nox -R on ``tests``, ``reps`` times (after one warm-up each)."""
    session = f"tests-cpu({cell})"
    envdir = root / ".nox"
    env_python = envdir / session_envdir(session) / "bin" / "python"
    notes = []
    with tempfile.TemporaryDirectory(prefix="fakedist-bench-") as tmp:
        work = Path(tmp)
        _copy_project(root, work)
        nox = [nox_python, "-m", "nox", "-f", str(work / "noxfile.py"), "--envdir", str(envdir)]
        if not env_python.exists():  # first run on this checkout: build it once, untimed
            _run([*nox, "-s", session, "--install-only"], cwd=work)
            notes.append(f"the {session} environment was built first (not timed)")
        junit = f"--junitxml={work / 'junit.xml'}"
        argv = {
            PYTEST: [str(env_python), "-m", "pytest", *tests],
            COVERAGE: [str(env_python), "-m", "coverage", "run", "-m", "pytest", junit, *tests],
            NOX: [*nox, "-s", session, "-R", "--", *tests],
        }
        samples: dict[str, list[float]] = {v: [] for v in argv}
        for rep in range(reps + 1):
            for variant, command in argv.items():
                seconds = _run(command, cwd=work)
                if rep:  # repetition 0 warms the page cache and .pyc files
                    samples[variant].append(seconds)
    notes.insert(
        0,
        f"{' '.join(tests)} in the {session} environment. The session runs pytest under "
        "coverage with junit XML; the middle column is that command alone, so nox's own "
        "share is the difference between the last two.",
    )
    return {
        "id": "harness",
        "title": "3a. Harness overhead, warm environment",
        "unit": "s",
        "baseline": PYTEST,
        "variants": [PYTEST, COVERAGE, NOX],
        "cases": [{"case": " ".join(tests), "samples": samples}],
        "notes": notes,
    }


def _setup_argv(
    installer: str, python: str, env: Path, requirements: Sequence[str]
) -> list[list[str]]:
    from fakedist.tooling import install

    sources = install.Sources.from_environment(os.environ, install.read_pip_config(python))
    env_python = str(env / "bin" / "python")
    deps = install.deps_install_argv(
        "uv" if installer == UV else "pip", env_python, requirements, sources
    )
    if installer == UV:
        uv = shutil.which("uv") or "uv"
        return [[uv, "venv", "-q", "--python", python, str(env)], [uv, *deps[1:]]]
    return [[python, "-m", "venv", str(env)], [*deps, "-q"]]


def setup_cost(torch_requirement: str, uv_reps: int, pip_reps: int) -> dict[str, Any]:
    """Fresh venv + torch + pytest: one untimed uv run warms uv's cache, then alternate."""
    python = getattr(sys, "_base_executable", sys.executable)
    requirements = [torch_requirement, "pytest"]
    samples: dict[str, list[float]] = {UV: [], PIP: []}
    with tempfile.TemporaryDirectory(prefix="fakedist-bench-") as tmp:
        for rep in range(max(uv_reps, pip_reps) + 1):
            for variant, wanted in ((UV, uv_reps), (PIP, pip_reps)):
                if rep > wanted or (rep == 0 and variant == PIP):
                    continue
                env = Path(tmp) / f"{variant[:2]}-{rep}"
                seconds = sum(_run(a) for a in _setup_argv(variant, python, env, requirements))
                shutil.rmtree(env)
                if rep:
                    samples[variant].append(seconds)
    return {
        "id": "setup",
        "title": "3b. Session setup: fresh venv + torch + pytest",
        "unit": "s",
        "baseline": UV,
        "variants": [UV, PIP],
        "cases": [{"case": " + ".join(["venv", *requirements]), "samples": samples}],
        "notes": [
            "the same index settings for both (fakedist.tooling.install carries pip's into uv); "
            "uv's cache warmed by one untimed run; pip with its own cache as it is."
        ],
    }
