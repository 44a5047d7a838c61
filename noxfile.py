"""fakedist's sessions: a table of contents. What each does: fakedist.tooling.sessions (tested).

Cells come from matrix/torch.toml plus FAKEDIST_TORCH, FAKEDIST_PYTHON, FAKEDIST_TORCH_INDEX,
FAKEDIST_CUDA and FAKEDIST_WHEELHOUSE (see matrix/README.md). Posargs go to pytest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "harness"))

from fakedist.tooling import envdir, install  # noqa: E402
from fakedist.tooling.matrix import Cell  # noqa: E402
from fakedist.tooling.sessions import Harness  # noqa: E402

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["ci"]
nox.options.error_on_missing_interpreters = True  # a missing Python fails, never skips
if hasattr(nox.options, "download_python"):  # nox >= 2025.x
    nox.options.download_python = "never"
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")  # only interpreters already here
os.environ.update(install.bytecode_settings(os.environ))  # .pyc files where Python writes none

# A checkout nox cannot write to: one line now, not nox's traceback when a session starts.
PROBLEM = envdir.problem(ROOT, sys.argv)
if PROBLEM:
    sys.exit(PROBLEM)

# Reads the matrix now: nox parametrises the cell sessions when it imports this file.
HARNESS = Harness.load(ROOT, os.environ, nox.command.CommandFailed)
CELLS, PYTHON = HARNESS.cells, HARNESS.python


@nox.session(name="tests-cpu", python=PYTHON)
@nox.parametrize("cell", CELLS.cpu_params, ids=CELLS.cpu_ids)
def tests_cpu(session: nox.Session, cell: Cell | None) -> None:
    """Conformance + unit suites on each selected CPU torch build, on xdist, coverage per cell."""
    HARNESS.tests_cpu(session, cell)


@nox.session(python=False, default=False)
def summary(session: nox.Session) -> None:
    """Queued by unit, tests-cpu and cuda: per run passed/failed/skipped, time, torch, coverage."""
    HARNESS.summary(session)


@nox.session(name="tests-shuffled", python=PYTHON, default=False)
def tests_shuffled(session: nox.Session) -> None:
    """Isolation: the torch suites in one process, in a new random order (seed in the header)."""
    HARNESS.tests_shuffled(session)


@nox.session(python=False, default=False)
def compat(session: nox.Session) -> None:
    """The conformance suite on every torch minor (FAKEDIST_TORCH picks), then COMPAT.md."""
    HARNESS.compat(session)


@nox.session(name="compat-cell", python=PYTHON, default=False)
@nox.parametrize("cell", list(CELLS.compat), ids=CELLS.compat_ids)
def compat_cell(session: nox.Session, cell: Cell) -> None:
    """One torch minor: conformance suite without coverage; its environment is removed after."""
    HARNESS.compat_cell(session, cell)


@nox.session(name="compat-report", python=False, default=False)
def compat_report(session: nox.Session) -> None:
    """COMPAT.md from the runs: matrix/COMPAT.md when every release ran, else reports/."""
    HARNESS.compat_report(session)


@nox.session(python=PYTHON, default=False)
def cuda(session: nox.Session) -> None:
    """CUDA torch builds chosen for this machine's NVIDIA driver; the full suite on the GPU."""
    HARNESS.cuda(session)


@nox.session(python=PYTHON, default=False)
def coverage(session: nox.Session) -> None:
    """Combine unit's and each cell's coverage data: terminal, reports/coverage/, fail-under."""
    HARNESS.coverage(session)


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """The tooling's tests (tests/tooling) without torch, with coverage; quick."""
    HARNESS.unit(session)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on harness/fakedist."""
    HARNESS.lint(session)


@nox.session(python=False)
def ci(session: nox.Session) -> None:
    """What CI runs: linters, unit, tests-cpu cells + summary, coverage, Action, torch sweep."""
    HARNESS.ci(session)


@nox.session(name="action-selftest", python=PYTHON, default=False)
def action_selftest(session: nox.Session) -> None:
    """The Action's self-test workflow under act (host mode, offline); asserts outputs/summary."""
    HARNESS.action_selftest(session)


@nox.session(name="action-lint", python=PYTHON, default=False)
def action_lint(session: nox.Session) -> None:
    """zizmor (pedantic) and check-jsonschema on action.yml and the workflows."""
    HARNESS.action_lint(session)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """fakedist vs built-in fake, gloo, bare pytest, pip: bench/results/<date>.{json,md,png}."""
    HARNESS.bench(session)
