"""fakedist.tooling.action.report and .github: JUnit counts, annotations, summary, outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakedist.tooling.action import report
from fakedist.tooling.action.github import annotation, error_line, escape_property, outputs_text

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1"
 tests="5" time="2.50">
<testcase classname="tests.test_mod" name="test_ok" time="0.1" />
<testcase classname="tests.test_mod" name="test_ok2" time="0.1" />
<testcase classname="tests.test_mod" name="test_skip" time="0.0">
  <skipped type="pytest.skip" message="needs 1 CUDA device, found none">why</skipped></testcase>
<testcase classname="tests.test_mod.TestCase" name="test_bad[2]" time="0.2">
  <failure message="AssertionError: assert 1 == 2&#10;more detail">def helper():
lib/helper.py:3: in helper
tests/test_mod.py:7: in test_bad
tests/helpers.py:12: AssertionError</failure></testcase>
<testcase classname="tests.test_mod" name="test_err" time="0.0">
  <error message="failed on setup with &quot;RuntimeError: boom&quot;">E RuntimeError
tests/conftest.py:4: RuntimeError</error></testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "proj" / "tests").mkdir(parents=True)
    (tmp_path / "proj" / "tests" / "test_mod.py").write_text("# test\n")
    (tmp_path / "junit.xml").write_text(JUNIT)
    return tmp_path / "proj"


def parse(project: Path) -> report.CellResult:
    return report.parse_junit(
        project.parent / "junit.xml", "2.13-cpu", "2.13.0", "cpu", project, project.parent
    )


def test_counts_and_time(project: Path) -> None:
    cell = parse(project)
    assert (cell.passed, cell.failed, cell.skipped) == (2, 2, 1)
    assert cell.time == 2.5


def test_failures_point_at_the_test_file(project: Path) -> None:
    bad, err = parse(project).failures
    assert bad == report.Failure(
        "2.13-cpu",
        "tests/test_mod.py::TestCase::test_bad[2]",
        "AssertionError: assert 1 == 2",
        "proj/tests/test_mod.py",
        7,
    )
    # No traceback line in the test file: the file without a line.
    assert (err.test, err.file, err.line) == (
        "tests/test_mod.py::test_err",
        "proj/tests/test_mod.py",
        None,
    )
    assert err.message == 'failed on setup with "RuntimeError: boom"'


def test_annotations(project: Path) -> None:
    assert report.annotation_lines([parse(project)]) == [
        "::error file=proj/tests/test_mod.py,line=7,"
        "title=tests/test_mod.py%3A%3ATestCase%3A%3Atest_bad[2]"
        " [torch 2.13.0 cpu]::AssertionError: assert 1 == 2",
        "::error file=proj/tests/test_mod.py,title=tests/test_mod.py%3A%3Atest_err"
        ' [torch 2.13.0 cpu]::failed on setup with "RuntimeError: boom"',
    ]


def test_summary_rows_coverage_and_failures(project: Path) -> None:
    missing = report.CellResult("2.14-cpu", "2.14.1", "cpu")
    coverage = report.Coverage(75.25, "| Name | Cover |\n|---|---|\n| a.py | 75% |\n")
    text = report.summary_markdown("tests-cpu", [parse(project), missing], coverage, 80, "3.11")
    assert text == (
        "## fakedist · `tests-cpu` · Python 3.11\n\n"
        "| torch | variant | passed | failed | skipped | time |\n"
        "| --- | --- | ---: | ---: | ---: | ---: |\n"
        "| 2.13.0 | cpu | 2 | 2 | 1 | 2.5 s |\n"
        "| 2.14.1 | cpu | - | - | - | no results |\n\n"
        "### Coverage: 75.25% (fail-under 80) — **below fail-under**\n\n"
        "| Name | Cover |\n|---|---|\n| a.py | 75% |\n\n"
        "### Failed tests\n\n"
        "| test | cell | where | message |\n| --- | --- | --- | --- |\n"
        "| `tests/test_mod.py::TestCase::test_bad[2]` | 2.13-cpu | proj/tests/test_mod.py:7 |"
        " AssertionError: assert 1 == 2 |\n"
        "| `tests/test_mod.py::test_err` | 2.13-cpu | proj/tests/test_mod.py |"
        ' failed on setup with "RuntimeError: boom" |\n'
    )


def test_outputs_and_results_json(project: Path, tmp_path: Path) -> None:
    cell = parse(project)
    values = report.outputs([cell], report.Coverage(91.0), {"include": []}, tmp_path / "r.json")
    assert values == {
        "passed": "2",
        "failed": "2",
        "skipped": "1",
        "coverage": "91.00",
        "matrix": '{"include":[]}',
        "report": str(tmp_path / "r.json"),
    }
    data = json.loads(report.results_json("tests-cpu", [cell], None, 0))
    assert data["totals"] == {"passed": 2, "failed": 2, "skipped": 1}
    assert data["coverage"] is None
    assert data["cells"][0]["failures"][0]["line"] == 7


def test_coverage_xml_percent_counts_branches(tmp_path: Path) -> None:
    xml = tmp_path / "coverage.xml"
    xml.write_text(
        '<coverage lines-valid="90" lines-covered="80" branches-valid="10" branches-covered="5"/>'
    )
    assert report.parse_coverage_xml(xml).percent == 85.0


def test_xunit1_line_attribute_is_used_when_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "junit.xml").write_text(
        '<testsuite time="1"><testcase classname="t" name="x" file="t.py" line="4">'
        '<failure message="boom"/></testcase></testsuite>'
    )
    cell = report.parse_junit(tmp_path / "junit.xml", "c", "2.13.0", "cpu", tmp_path, tmp_path)
    assert cell.failures[0] == report.Failure("c", "t.py::x", "boom", "t.py", 5)


def test_workflow_command_escaping() -> None:
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert error_line("bad\nvalue 100%") == "::error::bad%0Avalue 100%25"
    assert annotation("warning", "m") == "::warning::m"
    assert annotation("error", "m", file="a,b.py", line=3) == "::error file=a%2Cb.py,line=3::m"


def test_outputs_text_multiline_uses_delimiter() -> None:
    text = outputs_text({"a": "1", "b": "x\ny"})
    assert text.startswith("a=1\nb<<ghadelimiter_")
    delimiter = text.split("\n")[1].split("<<")[1]
    assert text.endswith(f"\nx\ny\n{delimiter}\n")


CLASS_TESTS = """\
import pytest


class TestFoo:
    def test_bar(self):
        assert 1 == 2

    @pytest.fixture
    def broken(self):
        raise RuntimeError("boom")

    def test_setup(self, broken):
        pass
"""


@pytest.mark.parametrize("tb", ["auto", "native", "no"])
def test_ids_keep_the_class_and_a_line(tb: str, tmp_path: Path) -> None:
    """What pytest writes (xunit1, as the sessions ask for) -> ids that paste back, lines."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(CLASS_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # its own rootdir, wherever TMPDIR is
    junit = tmp_path / "junit.xml"
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    args = ["-p", "no:cacheprovider", f"--tb={tb}", f"--junitxml={junit}"]
    subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-o", "junit_family=xunit1", "tests"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
    )
    cell = report.parse_junit(junit, "c", "2.13.0", "cpu", tmp_path, tmp_path)
    found = {f.test: (f.file, f.line) for f in cell.failures}
    # the failing line (the fixture's raise for the setup error); without a traceback
    # (--tb=no), the test's own def line
    lines = (6, 10) if tb != "no" else (5, 12)
    assert found == {
        "tests/test_x.py::TestFoo::test_bar": ("tests/test_x.py", lines[0]),
        "tests/test_x.py::TestFoo::test_setup": ("tests/test_x.py", lines[1]),
    }
    for test in found:  # each id selects exactly that test again
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--co", "-q", test],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.stdout.splitlines()[0] == test


def test_unreadable_files_are_one_line_errors(tmp_path: Path) -> None:
    empty, broken = tmp_path / "junit-a.xml", tmp_path / "coverage.xml"
    empty.write_bytes(b"")
    broken.write_text("<coverage lines-valid=")
    with pytest.raises(report.ReportError) as info:
        report.parse_junit(empty, "a", "2.13.0", "cpu", tmp_path, tmp_path)
    assert str(info.value) == "junit-a.xml: the file is empty (0 bytes; disk full?)"
    with pytest.raises(report.ReportError) as info:
        report.parse_coverage_xml(broken)
    assert str(info.value).startswith("coverage.xml: not valid XML (")
