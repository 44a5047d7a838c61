"""Results of a run: JUnit XML per cell -> counts, failure annotations, job summary, outputs."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fakedist.action.github import annotation

__all__ = [
    "CellResult",
    "Coverage",
    "Failure",
    "annotation_lines",
    "outputs",
    "parse_coverage_xml",
    "parse_junit",
    "results_json",
    "summary_markdown",
    "totals",
]

# "tests/test_x.py:12: AssertionError" / "tests/test_x.py:12: in test_x" in a pytest traceback.
_LOCATION = re.compile(r"^(?P<file>[^\s:][^:\n]*?\.py):(?P<line>\d+):", re.MULTILINE)


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


@dataclass(frozen=True)
class Coverage:
    """Combined coverage: the total percent and the markdown table ``coverage report`` wrote."""

    percent: float
    table: str = ""


def _test_file(classname: str, base: Path) -> str | None:
    """``tests.test_x.TestCase`` -> ``tests/test_x.py`` when that file exists under ``base``."""
    parts = classname.split(".")
    for start in range(len(parts)):  # rootdir above ``base``: drop leading components
        for end in range(len(parts), start, -1):
            candidate = "/".join(parts[start:end]) + ".py"
            if (base / candidate).is_file():
                return candidate
    return None


def _relative_to(path: Path, workspace: Path) -> str:
    try:
        return path.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _locate(text: str, test_file: str | None, base: Path) -> tuple[Path | None, int | None]:
    """The traceback line in the test file (else the last frame) that a failure points at."""
    found = [(m["file"], int(m["line"])) for m in _LOCATION.finditer(text)]
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
    test_file = case.get("file") or _test_file(classname, base)
    path, line = _locate(problem.text or "", test_file, base)
    if line is None and case.get("line", "").isdigit():
        line = int(case.get("line", "0")) + 1  # xunit1 'line' is 0-based
    message = (problem.get("message") or problem.get("type") or "failed").strip()
    first = message.splitlines()[0] if message else "failed"
    test = f"{test_file}::{name}" if test_file else f"{classname}::{name}"
    where = None if path is None else _relative_to(path, workspace)
    return Failure(cell, test, first[:300], where, line)


def parse_junit(
    path: Path, cell: str, torch: str, variant: str, base: Path, workspace: Path
) -> CellResult:
    """Count one pytest JUnit XML file; ``base`` is the directory pytest ran in."""
    root = ET.parse(path).getroot()
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
    """Total percent from a Cobertura ``coverage.xml`` (lines and branches, like coverage.py)."""
    root = ET.parse(path).getroot()
    covered = int(root.get("lines-covered", "0")) + int(root.get("branches-covered", "0"))
    valid = int(root.get("lines-valid", "0")) + int(root.get("branches-valid", "0"))
    return Coverage(100.0 * covered / valid if valid else 100.0, table)


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
) -> str:
    """The job summary: one row per torch cell, the coverage table, the failed tests."""
    lines = [f"## fakedist · `{session}` · Python {python}", ""]
    if cells:
        lines += [
            "| torch | variant | passed | failed | skipped | time |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for c in cells:
            if c.junit is None:
                lines.append(f"| {c.torch} | {c.variant} | - | - | - | no results |")
            else:
                lines.append(
                    f"| {c.torch} | {c.variant} | {c.passed} | {c.failed} | {c.skipped} "
                    f"| {c.time:.1f} s |"
                )
        lines.append("")
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
    report: Path,
) -> dict[str, str]:
    """The action's outputs: passed, failed, skipped, coverage, matrix, report."""
    passed, failed, skipped = totals(cells)
    return {
        "passed": str(passed),
        "failed": str(failed),
        "skipped": str(skipped),
        "coverage": "" if coverage is None else f"{coverage.percent:.2f}",
        "matrix": json.dumps(matrix, separators=(",", ":")),
        "report": str(report),
    }


def results_json(
    session: str, cells: Sequence[CellResult], coverage: Coverage | None, fail_under: float
) -> str:
    """The ``report`` file: every cell with its counts and failures, plus coverage."""
    passed, failed, skipped = totals(cells)
    data = {
        "session": session,
        "totals": {"passed": passed, "failed": failed, "skipped": skipped},
        "coverage": None if coverage is None else round(coverage.percent, 2),
        "fail_under": fail_under,
        "cells": [asdict(c) for c in cells],
    }
    return json.dumps(data, indent=2) + os.linesep
