"""fakedist.tooling.results: where runs leave their results, and the summary table."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakedist.tooling import results
from fakedist.tooling.results import RunResult

JUNIT = (
    '<testsuites><testsuite time="3">'
    '<testcase classname="t" name="a"/>'
    '<testcase classname="t" name="b"><failure message="no"/></testcase>'
    '<testcase classname="t" name="c"><error message="setup"/></testcase>'
    '<testcase classname="t" name="d"><skipped message="later"/></testcase>'
    "</testsuite></testsuites>"
)


def test_the_paths_are_under_reports() -> None:
    root = Path("/repo")
    assert results.junit_path(root, "2.13-cpu") == root / "reports" / "junit-2.13-cpu.xml"
    assert results.coverage_data(root, "tooling") == root / "reports/coverage/.coverage.tooling"
    assert results.COVERAGE_XML.parent == results.COVERAGE_DIR


def test_read_run_counts_errors_as_failed(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT, encoding="utf-8")
    result = results.read_run("2.13-cpu", "2.13.0+cpu", junit, 12.5, 80.0)
    assert result == RunResult("2.13-cpu", "2.13.0+cpu", 1, 2, 1, 12.5, 80.0)
    assert not result.ok


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (None, "junit.xml: cannot be read (No such file or directory)"),
        ("", "junit.xml: the file is empty (0 bytes; disk full?)"),
    ],
)
def test_unreadable_results_are_the_problem(tmp_path: Path, body: str | None, problem: str) -> None:
    junit = tmp_path / "junit.xml"
    if body is not None:
        junit.write_text(body, encoding="utf-8")
    result = results.read_run("tooling", results.NO_TORCH, junit, 1.0, None)
    assert (result.problem, result.passed, result.ok) == (problem, 0, False)


@pytest.mark.parametrize(
    ("text", "total"),
    [("87.50\n", 87.5), ("Combined\n100\n", 100.0), ("No data to report.\n", None), ("", None)],
)
def test_coverage_total(text: str, total: float | None) -> None:
    assert results.coverage_total(text) == total


@pytest.mark.parametrize(
    ("build", "label"),
    [
        ('{"version": "2.13.0+cpu", "cuda": null}\n', "2.13.0+cpu"),
        ('noise\n{"version": "2.13.0", "cuda": "12.8"}\n', "2.13.0 (CUDA 12.8)"),
        ('{"version": "2.13.0+cu126", "cuda": "12.6"}', "2.13.0+cu126"),
        ("not json", "unknown"),
    ],
)
def test_torch_label(build: str, label: str) -> None:
    assert results.torch_label(build) == label


def test_summary_table() -> None:
    runs = [
        RunResult("tooling", "none", 530, 0, 0, 12.34, 78.1),
        RunResult("2.13-cpu", "2.13.0+cpu", 657, 1, 8, 51.0, 65.5),
        RunResult("2.14-cpu", "2.14.1+cpu", seconds=3.0, problem="stopped before its tests ran"),
    ]
    assert results.summary_lines(runs) == [
        "run       torch       passed  failed  skipped   time  coverage",
        "tooling   none           530       0        0  12.3s    78.10%",
        "2.13-cpu  2.13.0+cpu     657       1        8  51.0s    65.50%",
        "2.14-cpu  2.14.1+cpu       -       -        -   3.0s         -",
        "2.14-cpu: stopped before its tests ran",
        "total: 1187 passed, 1 failed, 8 skipped",
        "not green: 2.13-cpu, 2.14-cpu",
    ]


def test_summary_all_green() -> None:
    lines = results.summary_lines([RunResult("tooling", "none", 3, seconds=1.0)])
    assert lines[-1] == "total: 3 passed, 0 failed, 0 skipped"
