"""fakedist.tooling.action.run and .project: nox argv/env, per-cell results, outputs, exit codes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from fakedist.tooling import results
from fakedist.tooling.action import run as run_module
from fakedist.tooling.action.inputs import DEFAULTS, env_name, read_inputs, record, replay
from fakedist.tooling.action.project import Project, from_env
from fakedist.tooling.action.run import Context, child_env, main_run, main_validate, nox_argv

ROOT = Path(__file__).resolve().parents[2]
PASS = '<testsuite time="1.5"><testcase classname="tests.test_a" name="test_a"/></testsuite>'
FAIL = (
    '<testsuite time="0.5"><testcase classname="tests.test_a" name="test_b">'
    '<failure message="assert 0">tests/test_a.py:2: AssertionError</failure></testcase></testsuite>'
)
COVERAGE_XML = (
    '<coverage lines-valid="10" lines-covered="9" branches-valid="0" branches-covered="0"/>'
)


class FakeNox:
    """Stands in for nox: records calls, writes what the sessions would write."""

    def __init__(
        self, root: Path, junit: Mapping[str, str], rc: int = 0, coverage_xml: str = COVERAGE_XML
    ) -> None:
        self.root, self.junit, self.rc, self.coverage_xml = root, junit, rc, coverage_xml
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, argv: Sequence[str], env: Mapping[str, str]) -> int:
        self.calls.append((list(argv), dict(env)))
        session = argv[argv.index("--session") + 1]
        if session == "coverage":
            (self.root / results.COVERAGE_XML).write_text(self.coverage_xml)
            (self.root / results.COVERAGE_MARKDOWN).write_text("| Name | Cover |\n")
            return 0
        (self.root / results.COVERAGE_DIR).mkdir(parents=True, exist_ok=True)
        for cell, xml in self.junit.items():
            results.junit_path(self.root, cell).write_text(xml)
            results.coverage_data(self.root, cell).write_text("data")  # one file per cell
        return self.rc


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Context, dict[str, str]]:
    action = tmp_path / "action"
    (action / "matrix").mkdir(parents=True)
    shutil.copy(ROOT / "matrix" / "torch.toml", action / "matrix" / "torch.toml")
    workspace = tmp_path / "ws"
    (workspace / "tests").mkdir(parents=True)
    (workspace / "tests" / "test_a.py").write_text("def test_a():\n    assert 0\n")
    files = {"GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(tmp_path / "sum")}
    ctx = Context(action, workspace, tmp_path / "tools" / "bin", files, tag="0123abcd")
    return ctx, files


def inputs_env(**values: str) -> dict[str, str]:
    return {env_name(k.replace("_", "-")): v for k, v in values.items()}


def read_outputs(path: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in Path(path).read_text().splitlines())


def test_context_finds_the_action_checkout(tmp_path: Path) -> None:
    """The Action runs from its checkout: the noxfile and matrix next to harness/."""
    ctx = Context.from_env({"GITHUB_WORKSPACE": str(tmp_path)})
    if Path(run_module.__file__).resolve().is_relative_to(ROOT / "harness"):
        assert (ctx.action_root / "noxfile.py").is_file()
        assert ctx.action_root == ROOT
    assert ctx.workspace == tmp_path.resolve()


def test_nox_argv(setup: tuple[Context, dict[str, str]]) -> None:
    ctx, _ = setup
    assert nox_argv(ctx, "tests-cpu", ["-k", "a b"]) == [
        str(ctx.tools_bin / "nox"),
        "--noxfile",
        str(ctx.action_root / "noxfile.py"),
        "--session",
        "tests-cpu",
        "--no-color",
        "--",
        "-k",
        "a b",
    ]
    assert nox_argv(ctx, "coverage")[-1] == "--no-color"


def test_child_env_carries_settings_not_inputs(setup: tuple[Context, dict[str, str]]) -> None:
    ctx, _ = setup
    base = {
        "PATH": "/bin",
        "PYTHONPATH": "/x",
        "FAKEDIST_INPUT_TORCH": "2.13",
        "PIP_FIND_LINKS": "/w",
    }
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, base)
    inputs = read_inputs(
        inputs_env(
            torch="2.13", tests="tests", suite="false", index_url="default", python_version="3.11"
        ),
        ctx.workspace,
    )
    assert child_env(inputs, ctx) == {
        "PATH": "/bin",
        "PIP_FIND_LINKS": "/w",
        "FAKEDIST_TORCH": "2.13",
        "FAKEDIST_PYTHON": "3.11",
        "FAKEDIST_TORCH_INDEX": "default",
        "FAKEDIST_PROJECT": str(ctx.workspace),
        "FAKEDIST_TESTS": "tests",
        "FAKEDIST_SUITE": "0",
        "FAKEDIST_INSTALL": "",
        "FAKEDIST_COVERAGE": "1",
        "FAKEDIST_COV_SOURCE": "",
        "FAKEDIST_SHUFFLE": "",
        "FAKEDIST_WORKERS": "",
    }


def test_project_round_trip_and_commands(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    project = Project(
        tmp_path, ("tests",), True, (".[test]", "pkg", "numpy==2.0"), True, ("a", "b")
    )
    assert from_env(project.env()) == project
    assert from_env({}) is None
    assert project.install_specs() == ["-e", f"{tmp_path}[test]", "pkg", "numpy==2.0"]
    assert project.pytest_paths(Path("/fd")) == ["tests", "/fd/tests/conformance"]
    assert project.pytest_command() == [
        "python",
        "-m",
        "coverage",
        "run",
        "--source=a,b",
        "-m",
        "pytest",
    ]
    suite_only = Project(tmp_path)
    assert suite_only.pytest_command()[-4:] == ["run", "--source=fakedist", "-m", "pytest"]
    assert Project(tmp_path, ("t",)).pytest_command() == [
        "python",
        "-m",
        "coverage",
        "run",
        "-m",
        "pytest",
    ]
    assert Project(tmp_path, coverage=False).pytest_command() == ["python", "-m", "pytest"]
    with pytest.raises(ValueError, match="FAKEDIST_PROJECT: '/nonexistent' is not a directory"):
        from_env({"FAKEDIST_PROJECT": "/nonexistent"})


def test_run_two_cells_reports_each(setup: tuple[Context, dict[str, str]]) -> None:
    ctx, files = setup
    env = {**files, **inputs_env(torch="2.13,2.14", python_version="3.11", fail_under="80")}
    nox = FakeNox(ctx.action_root, {"2.13-cpu": PASS, "2.14-cpu": FAIL}, rc=1)
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")
    assert main_run(env, nox, ctx) == 1
    assert [call[0][4] for call in nox.calls] == ["tests-cpu", "coverage"]
    outputs = read_outputs(files["GITHUB_OUTPUT"])
    assert {k: outputs[k] for k in ("passed", "failed", "skipped", "coverage")} == {
        "passed": "1",
        "failed": "1",
        "skipped": "0",
        "coverage": "90.00",
    }
    assert [c["id"] for c in json.loads(outputs["matrix"])["include"]] == ["2.13-cpu", "2.14-cpu"]
    report_dir = ctx.workspace / "fakedist-report"
    assert outputs["report"] == str(report_dir / "results.0123abcd.json")
    assert sorted(p.name for p in report_dir.iterdir()) == [
        ".coverage.2.13-cpu.0123abcd",
        ".coverage.2.14-cpu.0123abcd",
        "junit-2.13-cpu.0123abcd.xml",
        "junit-2.14-cpu.0123abcd.xml",
        "results.0123abcd.json",
        "summary.0123abcd.md",
    ]
    summary = Path(files["GITHUB_STEP_SUMMARY"]).read_text()
    assert "| 2.13.0 | cpu | 1 | 0 | 0 | 1.5 s |\n| 2.14.1 | cpu | 0 | 1 | 0 | 0.5 s |" in summary
    assert "### Coverage: 90.00% (fail-under 80)\n" in summary


def test_run_prints_annotation_and_below_fail_under(
    setup: tuple[Context, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    ctx, files = setup
    env = {**files, **inputs_env(torch="2.13", python_version="3.11", fail_under="95")}
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")
    assert main_run(env, FakeNox(ctx.action_root, {"2.13-cpu": FAIL}, rc=1), ctx) == 1
    out = capsys.readouterr().out.splitlines()
    assert (
        "::error file=tests/test_a.py,line=2,title=tests/test_a.py%3A%3Atest_b [torch 2.13.0 cpu]"
        "::assert 0"
    ) in out
    assert "::error::fakedist: coverage 90.00%25 is below fail-under 95" in out


def test_run_green(setup: tuple[Context, dict[str, str]]) -> None:
    ctx, files = setup
    env = {**files, **inputs_env(torch="2.13", python_version="3.11", coverage="false")}
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")
    nox = FakeNox(ctx.action_root, {"2.13-cpu": PASS})
    assert main_run(env, nox, ctx) == 0
    assert len(nox.calls) == 1  # no coverage session
    assert read_outputs(files["GITHUB_OUTPUT"])["coverage"] == ""


def test_missing_results_fail_the_run(
    setup: tuple[Context, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    ctx, files = setup
    env = {**files, **inputs_env(torch="2.13", python_version="3.11", coverage="false")}
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")
    assert main_run(env, FakeNox(ctx.action_root, {}, rc=1), ctx) == 1
    assert "::error::fakedist: cell 2.13-cpu produced no test results (see nox output)" in (
        capsys.readouterr().out
    )
    assert (
        "| 2.13.0 | cpu | - | - | - | no results |"
        in Path(files["GITHUB_STEP_SUMMARY"]).read_text()
    )


def test_bad_input_runs_nothing(
    setup: tuple[Context, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    ctx, files = setup
    env = {**files, **inputs_env(torch="2.13 && touch x")}
    nox = FakeNox(ctx.action_root, {})
    assert main_run(env, nox, ctx) == 2
    assert nox.calls == []
    assert capsys.readouterr().out == (
        "::error::fakedist: input 'torch': shell metacharacter '&' is not allowed in"
        " '2.13 && touch x'\n"
    )
    assert not Path(files["GITHUB_OUTPUT"]).exists()


def test_combine_session(setup: tuple[Context, dict[str, str]]) -> None:
    ctx, files = setup
    data = ctx.workspace / "fakedist-report"
    data.mkdir()
    (data / ".coverage.2.13-cpu.aaaaaaaa").write_text("d")
    (data / ".coverage.2.14-cpu.bbbbbbbb").write_text("d")
    (data / "junit-2.14-cpu.bbbbbbbb.xml").write_text(PASS)
    env = {**files, **inputs_env(session="coverage", fail_under="80")}
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")
    nox = FakeNox(ctx.action_root, {})
    assert main_run(env, nox, ctx) == 0
    assert [c[0][4] for c in nox.calls] == ["coverage"]
    assert sorted(p.name for p in (ctx.action_root / results.COVERAGE_DIR).iterdir()) == [
        ".coverage.2.13-cpu.aaaaaaaa",
        ".coverage.2.14-cpu.bbbbbbbb",
        "coverage.md",
        "coverage.xml",
    ]
    assert not list(ctx.action_root.glob(".coverage*"))  # nothing in the checkout's root
    assert read_outputs(files["GITHUB_OUTPUT"])["coverage"] == "90.00"
    assert "| 2.14.1 | cpu | 1 | 0 | 0 | 1.5 s |" in Path(files["GITHUB_STEP_SUMMARY"]).read_text()


def test_combine_without_data_is_an_error(
    setup: tuple[Context, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    ctx, files = setup
    env = {**files, **inputs_env(session="coverage")}
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")
    assert main_run(env, FakeNox(ctx.action_root, {}), ctx) == 2
    assert capsys.readouterr().out == (
        "::error::fakedist: input 'session': 'coverage' found no .coverage.* files in"
        f" {ctx.workspace / 'fakedist-report'}\n"
    )


def test_validate_outputs(
    setup: tuple[Context, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, files = setup
    env = {
        **files,
        "GITHUB_WORKSPACE": str(ctx.workspace),
        **inputs_env(torch="2.13,2.14", python_version="3.11"),
    }
    assert main_validate(env) == 0
    outputs = read_outputs(files["GITHUB_OUTPUT"])
    assert outputs["cache-key"] == "2.13.0-cpu_2.14.1-cpu"
    assert outputs["python"] == "3.11"
    assert json.loads(outputs["matrix"])["include"][0]["requirement"] == "torch==2.13.0"
    recorded = json.loads(outputs["inputs"])  # what the run step reads
    assert recorded == {
        **{env_name(name): value for name, value in DEFAULTS.items() if name != "index-url"},
        env_name("torch"): "2.13,2.14",
        env_name("python-version"): "3.11",
    }


def test_the_record_replays_the_inputs_exactly() -> None:
    given = inputs_env(torch=" 2.13 ", tests="tests/a.py tests/b.py::test_x", workers="auto")
    url = "https://u:s3cret@mirror.example/{variant}"
    text = record({**given, env_name("index-url"): url})
    assert "s3cret" not in text  # index-url is never recorded: it comes by env
    step = {"PATH": "/bin", env_name("torch"): "2.1", env_name("index-url"): url}
    replayed = replay({**step, "FAKEDIST_INPUTS": text})
    assert (replayed["PATH"], replayed[env_name("index-url")]) == ("/bin", url)
    assert "FAKEDIST_INPUTS" not in replayed
    assert {k: replayed[k] for k in given} == given  # the record wins, spaces and all
    assert replayed[env_name("session")] == "tests-cpu"  # defaults recorded too


def test_run_reads_the_validate_steps_record(setup: tuple[Context, dict[str, str]]) -> None:
    ctx, files = setup
    given = inputs_env(torch="2.13", python_version="3.11", pytest_args="-x")
    env = {**files, "FAKEDIST_INPUTS": record(given)}
    nox = FakeNox(ctx.action_root, {"2.13-cpu": PASS})
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")
    assert main_run(env, nox, ctx) == 0
    argv, child = nox.calls[0]
    assert argv[-2:] == ["--", "-x"]
    assert (child["FAKEDIST_TORCH"], child["FAKEDIST_PYTHON"]) == ("2.13", "3.11")
    assert [k for k in child if k.startswith("FAKEDIST_INPUT")] == []


@pytest.mark.parametrize("text", ["nope", "[]", '{"FAKEDIST_INPUT_TORCH": "2.13"}'])
def test_a_record_the_validate_step_did_not_write_is_one_line(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_run({"FAKEDIST_INPUTS": text}) == 2
    out = capsys.readouterr().out
    assert out == (
        "::error::fakedist: FAKEDIST_INPUTS: not the validate step's record of the inputs:"
        f" {text!r}\n"
    )


def test_empty_results_files_still_give_outputs_and_a_summary(
    setup: tuple[Context, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk leaves zero-byte junit and coverage files: one line each, outputs, summary."""
    ctx, files = setup
    env = {**files, **inputs_env(torch="2.13", python_version="3.11")}
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")
    nox = FakeNox(ctx.action_root, {"2.13-cpu": ""}, rc=1, coverage_xml="")
    assert main_run(env, nox, ctx) == 1
    out = capsys.readouterr().out
    assert "Traceback" not in out
    assert (
        "::error::fakedist: cell 2.13-cpu: junit-2.13-cpu.xml: the file is empty"
        " (0 bytes; disk full?)"
    ) in out.splitlines()
    assert (
        "::error::fakedist: coverage: coverage.xml: the file is empty (0 bytes; disk full?)"
    ) in out.splitlines()
    outputs = read_outputs(files["GITHUB_OUTPUT"])
    assert (outputs["passed"], outputs["failed"], outputs["coverage"]) == ("0", "0", "")
    results = json.loads(Path(outputs["report"]).read_text())
    assert results["problems"] == [
        "junit-2.13-cpu.xml: the file is empty (0 bytes; disk full?)",
        "coverage.xml: the file is empty (0 bytes; disk full?)",
    ]
    summary = Path(files["GITHUB_STEP_SUMMARY"]).read_text()
    assert "| 2.13.0 | cpu | - | - | - | unreadable results |" in summary
    assert (
        "### Could not be read\n\n"
        "- junit-2.13-cpu.xml: the file is empty (0 bytes; disk full?)\n"
        "- coverage.xml: the file is empty (0 bytes; disk full?)\n"
    ) in summary


def test_truncated_junit_is_named(
    setup: tuple[Context, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    ctx, files = setup
    env = {**files, **inputs_env(torch="2.13", python_version="3.11", coverage="false")}
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")
    assert main_run(env, FakeNox(ctx.action_root, {"2.13-cpu": PASS[:40]}), ctx) == 1
    assert (
        "::error::fakedist: cell 2.13-cpu: junit-2.13-cpu.xml: not valid XML (unclosed token:"
        " line 1, column 22); truncated?"
    ) in capsys.readouterr().out.splitlines()
    assert read_outputs(files["GITHUB_OUTPUT"])["report"]


def test_unwritable_report_dir_still_sets_outputs(
    setup: tuple[Context, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """No space for fakedist-report/: outputs (report empty) and the summary are still set."""
    ctx, files = setup
    env = {**files, **inputs_env(torch="2.13", python_version="3.11", coverage="false")}
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")
    (ctx.workspace / "fakedist-report").write_text("a file where the folder should be")
    assert main_run(env, FakeNox(ctx.action_root, {"2.13-cpu": PASS}), ctx) == 1
    out = capsys.readouterr().out.splitlines()
    assert "Traceback" not in "\n".join(out)
    assert any(
        line.startswith("::error::fakedist: junit-2.13-cpu.xml: cannot be copied into")
        for line in out
    )
    outputs = read_outputs(files["GITHUB_OUTPUT"])
    assert (outputs["passed"], outputs["report"]) == ("1", "")
    assert "| 2.13.0 | cpu | 1 | 0 | 0 | 1.5 s |" in Path(files["GITHUB_STEP_SUMMARY"]).read_text()


def test_a_run_of_no_tests_fails(
    setup: tuple[Context, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    ctx, files = setup
    env = {**files, **inputs_env(torch="2.13", python_version="3.11", coverage="false")}
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")
    empty = '<testsuite tests="0" time="0.1"></testsuite>'
    assert main_run(env, FakeNox(ctx.action_root, {"2.13-cpu": empty}), ctx) == 1
    assert "::error::fakedist: cell 2.13-cpu ran no tests (see the pytest arguments)" in (
        capsys.readouterr().out.splitlines()
    )


def test_harness_requirements_leave_out_shuffling_and_workers(tmp_path: Path) -> None:
    pinned = tmp_path / "test.txt"
    pinned.write_text(
        "# pins\npytest==9.2.0\npytest-cov==7.1.0\ncoverage[toml]==7.17.3\n"
        "pytest-xdist==3.8.0\npytest-randomly==5.1.0\nnumpy\n"
    )
    plain = Project(tmp_path, ("tests",), suite=False)
    assert plain.harness_requirements(pinned) == ["pytest==9.2.0", "coverage[toml]==7.17.3"]
    assert plain.pytest_command()[-2:] == ["-m", "pytest"]
    asked = Project(tmp_path, suite=True, coverage=False, shuffle="42", workers="2")
    assert asked.harness_requirements(pinned) == [
        "pytest==9.2.0",
        "pytest-xdist==3.8.0",
        "pytest-randomly==5.1.0",
        "numpy",
    ]
    assert asked.pytest_command() == [
        "python", "-m", "pytest", "--randomly-seed=42", "-n", "2"
    ]  # fmt: skip
    assert Project(tmp_path, shuffle="random").pytest_options() == []
    assert from_env(asked.env()) == asked


def test_validate_matrix_output_hides_index_credentials(
    setup: tuple[Context, dict[str, str]],
) -> None:
    ctx, files = setup
    env = {
        **files,
        "GITHUB_WORKSPACE": str(ctx.workspace),
        **inputs_env(
            torch="2.13", python_version="3.11", index_url="https://u:s3cret@m.example/{variant}"
        ),
    }
    assert main_validate(env) == 0
    text = Path(files["GITHUB_OUTPUT"]).read_text()
    assert "s3cret" not in text
    assert (
        json.loads(read_outputs(files["GITHUB_OUTPUT"])["matrix"])["include"][0]["index_url"]
        == "https://***@m.example/cpu"
    )


def test_read_only_checkout_is_one_line_and_runs_nothing(
    setup: tuple[Context, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx, files = setup
    env = {**files, **inputs_env(torch="2.13", python_version="3.11")}
    ctx = Context(ctx.action_root, ctx.workspace, ctx.tools_bin, env, tag="0123abcd")

    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.TemporaryFile", read_only)
    nox = FakeNox(ctx.action_root, {"2.13-cpu": PASS})
    assert main_run(env, nox, ctx) == 2
    assert nox.calls == []
    assert capsys.readouterr().out == (
        f"::error::fakedist: the action's checkout {ctx.action_root} is not writable"
        " (Permission denied): nox keeps its environments and results there\n"
    )
