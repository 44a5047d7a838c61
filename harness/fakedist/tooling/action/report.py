"""Results of a run: JUnit XML per cell -> counts, failure annotations, job summary, outputs.

A results file that cannot be read (empty after a full disk, truncated, not XML) is a
:class:`ReportError` with one line naming the file; the run reports it and carries on.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fakedist.tooling.action.github import annotation

__all__ = [
    "CellResult",
    "Coverage",
    "Failure",
    "ReportError",
    "annotation_lines",
    "no_tests_problem",
    "outputs",
    "parse_coverage_xml",
    "parse_junit",
    "read_xml",
    "results_json",
    "summary_markdown",
    "totals",
]

# "tests/test_x.py:12: AssertionError" / "tests/test_x.py:12: in test_x" in a pytest traceback,
# 'File "tests/test_x.py", line 12, in test_x' (--tb=native), "file tests/x.py, line 12" (setup).
_LOCATION = re.compile(
    r"^(?P<file>[^\s:][^:\n]*?\.py):(?P<line>\d+):"
    r'|^\s*File "(?P<nfile>[^"\n]+?\.py)", line (?P<nline>\d+)'
    r"|^file (?P<sfile>[^,\n]+?\.py), line (?P<sline>\d+)",
    re.MULTILINE,
)


class ReportError(ValueError):
    """A results file that cannot be read; the message is one line naming the file."""


def read_xml(path: Path) -> ET.Element:
    """The parsed root of ``path``, or ReportError saying why it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReportError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if not data.strip():
        raise ReportError(f"{path.name}: the file is empty ({len(data)} bytes; disk full?)")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise ReportError(f"{path.name}: not valid XML ({exc}); truncated?") from None


@dataclass(frozen=True)
class Failure:
    """A failed or erroring test and where it failed."""

    cell: str
    test: str
    message: str
    file: str | None = None  # relative to the workspace when inside it
    line: int | None = None


@dataclass(frozen=True)
class CellResult:
    """One torch cell's counts (``junit`` is None when the cell produced no results)."""

    id: str
    torch: str
    variant: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    time: float = 0.0
    junit: str | None = None
    failures: tuple[Failure, ...] = field(default_factory=tuple)
    problem: str | None = None  # why the results could not be read


@dataclass(frozen=True)
class Coverage:
    """Combined coverage: the total percent and the markdown table ``coverage report`` wrote."""

    percent: float
    table: str = ""


def _test_file(classname: str, base: Path) -> tuple[str | None, list[str]]:
    """``tests.test_x.TestCase`` -> (``tests/test_x.py``, ``["TestCase"]``) when that file
    exists under ``base``; the classes are what follows the module in ``classname``."""
    parts = classname.split(".")
    for start in range(len(parts)):  # rootdir above ``base``: drop leading components
        for end in range(len(parts), start, -1):
            candidate = "/".join(parts[start:end]) + ".py"
            if (base / candidate).is_file():
                return candidate, parts[end:]
    return None, []


def _relative_to(path: Path, workspace: Path) -> str:
    try:
        return path.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _locate(text: str, test_file: str | None, base: Path) -> tuple[Path | None, int | None]:
    """The traceback line in the test file (else the last frame) that a failure points at."""
    found = [
        (m["file"] or m["nfile"] or m["sfile"], int(m["line"] or m["nline"] or m["sline"]))
        for m in _LOCATION.finditer(text)
    ]
    if test_file is not None:
        in_test = [(f, n) for f, n in found if Path(f).as_posix().endswith(test_file)]
        if in_test:
            return base / in_test[-1][0], in_test[-1][1]
        return base / test_file, None
    if found:
        return base / found[-1][0], found[-1][1]
    return None, None


def _failure(
    cell: str, case: ET.Element, problem: ET.Element, base: Path, workspace: Path
) -> Failure:
    classname, name = case.get("classname", ""), case.get("name", "?")
    test_file, classes = _test_file(classname, base)
    if test_file is None:
        test_file = case.get("file")  # xunit1: relative to pytest's rootdir
    path, line = _locate(problem.text or "", test_file, base)
    if line is None and case.get("line", "").isdigit():
        line = int(case.get("line", "0")) + 1  # xunit1 'line' is 0-based
    message = (problem.get("message") or problem.get("type") or "failed").strip()
    first = message.splitlines()[0] if message else "failed"
    # the node id pytest accepts back: file::Class::test
    test = "::".join([test_file, *classes, name]) if test_file else f"{classname}::{name}"
    where = None if path is None else _relative_to(path, workspace)
    return Failure(cell, test, first[:300], where, line)


def parse_junit(
    path: Path, cell: str, torch: str, variant: str, base: Path, workspace: Path
) -> CellResult:
    """Count one pytest JUnit XML file; ``base`` is the directory pytest ran in.

    ReportError (one line) when the file cannot be read."""
    root = read_xml(path)
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    passed = failed = skipped = 0
    failures: list[Failure] = []
    for case in root.iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            failed += 1
            failures.append(_failure(cell, case, problem, base, workspace))
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    time = sum(float(s.get("time", "0") or 0) for s in suites)
    return CellResult(
        cell, torch, variant, passed, failed, skipped, time, str(path), tuple(failures)
    )


def parse_coverage_xml(path: Path, table: str = "") -> Coverage:
    """Total percent from a Cobertura ``coverage.xml`` (lines and branches, like coverage.py).

    ReportError (one line) when the file cannot be read."""
    root = read_xml(path)
    try:
        covered = int(root.get("lines-covered", "0")) + int(root.get("branches-covered", "0"))
        valid = int(root.get("lines-valid", "0")) + int(root.get("branches-valid", "0"))
    except ValueError as exc:
        raise ReportError(f"{path.name}: not a coverage report ({exc})") from None
    return Coverage(100.0 * covered / valid if valid else 100.0, table)


def no_tests_problem(path: Path) -> str | None:
    """Why the pytest run that wrote ``path`` cannot count as a pass: its results are
    unreadable, or it ran no test. None when it ran at least one."""
    try:
        root = read_xml(path)
    except ReportError as exc:
        return f"pytest's results cannot be read: {exc}"
    if next(root.iter("testcase"), None) is None:
        return (
            f"pytest ran no tests ({path.name} lists none): check the test paths and any"
            " -k, -m, --deselect or --ignore in the pytest arguments"
        )
    return None


def totals(cells: Sequence[CellResult]) -> tuple[int, int, int]:
    """Passed, failed, skipped over all cells."""
    return (
        sum(c.passed for c in cells),
        sum(c.failed for c in cells),
        sum(c.skipped for c in cells),
    )


def annotation_lines(cells: Sequence[CellResult]) -> list[str]:
    """``::error file=…,line=…::`` for every failed test."""
    lines = []
    for cell in cells:
        for failure in cell.failures:
            title = f"{failure.test} [torch {cell.torch} {cell.variant}]"
            lines.append(
                annotation(
                    "error", failure.message, file=failure.file, line=failure.line, title=title
                )
            )
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(
    session: str,
    cells: Sequence[CellResult],
    coverage: Coverage | None,
    fail_under: float,
    python: str,
    problems: Sequence[str] = (),
) -> str:
    """The job summary: one row per torch cell, what could not be read, the coverage table,
    the failed tests. ``problems``: unreadable files besides the cells' own results."""
    lines = [f"## fakedist · `{session}` · Python {python}", ""]
    if cells:
        lines += [
            "| torch | variant | passed | failed | skipped | time |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for c in cells:
            if c.problem is not None:
                lines.append(f"| {c.torch} | {c.variant} | - | - | - | unreadable results |")
            elif c.junit is None:
                lines.append(f"| {c.torch} | {c.variant} | - | - | - | no results |")
            else:
                lines.append(
                    f"| {c.torch} | {c.variant} | {c.passed} | {c.failed} | {c.skipped} "
                    f"| {c.time:.1f} s |"
                )
        lines.append("")
    unreadable = [*(c.problem for c in cells if c.problem is not None), *problems]
    if unreadable:
        lines += ["### Could not be read", "", *(f"- {_md(p)}" for p in unreadable), ""]
    if coverage is not None:
        verdict = "" if coverage.percent >= fail_under else " — **below fail-under**"
        lines += [f"### Coverage: {coverage.percent:.2f}% (fail-under {fail_under:g}){verdict}", ""]
        if coverage.table.strip():
            lines += [coverage.table.strip(), ""]
    failures = [f for c in cells for f in c.failures]
    if failures:
        lines += [
            "### Failed tests",
            "",
            "| test | cell | where | message |",
            "| --- | --- | --- | --- |",
        ]
        for f in failures:
            where = f"{f.file}:{f.line}" if f.file and f.line else (f.file or "?")
            lines.append(f"| `{_md(f.test)}` | {f.cell} | {_md(where)} | {_md(f.message)} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def outputs(
    cells: Sequence[CellResult],
    coverage: Coverage | None,
    matrix: Mapping[str, object],
    report: Path | None,
) -> dict[str, str]:
    """The action's outputs: passed, failed, skipped, coverage, matrix, report ('' when the
    results file could not be written)."""
    passed, failed, skipped = totals(cells)
    return {
        "passed": str(passed),
        "failed": str(failed),
        "skipped": str(skipped),
        "coverage": "" if coverage is None else f"{coverage.percent:.2f}",
        "matrix": json.dumps(matrix, separators=(",", ":")),
        "report": "" if report is None else str(report),
    }


def results_json(
    session: str,
    cells: Sequence[CellResult],
    coverage: Coverage | None,
    fail_under: float,
    problems: Sequence[str] = (),
) -> str:
    """The ``report`` file: every cell with its counts and failures, plus coverage and
    the files that could not be read."""
    passed, failed, skipped = totals(cells)
    data = {
        "session": session,
        "totals": {"passed": passed, "failed": failed, "skipped": skipped},
        "coverage": None if coverage is None else round(coverage.percent, 2),
        "fail_under": fail_under,
        "cells": [asdict(c) for c in cells],
        "problems": [*(c.problem for c in cells if c.problem is not None), *problems],
    }
    return json.dumps(data, indent=2) + os.linesep
