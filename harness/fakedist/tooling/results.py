"""The test sessions' results: where they go, and the summary a session ends with.

Each pytest run of ``unit``, ``tests-cpu`` and ``cuda`` (a *run*: one torch cell, or ``tooling``
for unit's torch-free tests) writes its JUnit XML to ``reports/junit-<run>.xml`` and its
coverage data, combined, to ``reports/coverage/.coverage.<run>``. The session then records a
:class:`RunResult` (:func:`read_run`) and ``nox -s summary`` prints :func:`summary_lines`: one
row per run with its counts, wall time, the torch build it used and its coverage total.
``nox -s coverage`` combines the runs' data files into one report. Torch-free: it only reads
files and text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fakedist.tooling.compat import CompatError, count_junit

__all__ = [
    "COVERAGE_DIR",
    "COVERAGE_MARKDOWN",
    "COVERAGE_XML",
    "NO_TORCH",
    "REPORTS_DIR",
    "RunResult",
    "coverage_data",
    "coverage_total",
    "junit_path",
    "read_run",
    "summary_lines",
    "torch_label",
]

REPORTS_DIR = Path("reports")  # under the checkout; git-ignored
COVERAGE_DIR = REPORTS_DIR / "coverage"  # one combined data file per run, and the report
COVERAGE_XML = COVERAGE_DIR / "coverage.xml"  # nox -s coverage: every run together
COVERAGE_MARKDOWN = COVERAGE_DIR / "coverage.md"
NO_TORCH = "none"  # the torch column of a torch-free run


def junit_path(root: Path, run: str) -> Path:
    """Where a run's JUnit XML goes."""
    return root / REPORTS_DIR / f"junit-{run}.xml"


def coverage_data(root: Path, run: str) -> Path:
    """A run's coverage data file; its processes write ``<that>.<host>.<pid>.<random>``."""
    return root / COVERAGE_DIR / f".coverage.{run}"


@dataclass(frozen=True)
class RunResult:
    """One pytest run: its counts (errors count as failed), wall time and coverage total."""

    run: str
    torch: str  # the build used, ``2.13.0+cpu``; NO_TORCH for a torch-free run
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    coverage: float | None = None  # percent; None when not measured or not combined
    problem: str | None = None  # why there are no counts

    @property
    def ok(self) -> bool:
        """Counts exist, at least one test passed, none failed."""
        return self.problem is None and self.failed == 0 and self.passed > 0


def read_run(
    run: str, torch: str, junit: Path, seconds: float, coverage: float | None
) -> RunResult:
    """The result of a run from its JUnit XML; an unreadable file becomes the problem."""
    try:
        passed, failed, errors, skipped, _ = count_junit(junit)
    except CompatError as exc:
        return RunResult(run, torch, seconds=seconds, coverage=coverage, problem=str(exc))
    return RunResult(run, torch, passed, failed + errors, skipped, seconds, coverage)


def coverage_total(text: str) -> float | None:
    """The percent ``coverage report --format=total`` printed (its last line); None if it
    printed no number."""
    lines = text.strip().splitlines()
    try:
        value = float(lines[-1]) if lines else math.nan
    except ValueError:
        return None
    return value if 0.0 <= value <= 100.0 else None


def torch_label(build_json: str) -> str:
    """``2.13.0+cpu``, or ``2.13.0 (CUDA 12.8)`` for a build whose version does not say so,
    from the JSON line of :data:`fakedist.tooling.compat.TORCH_BUILD_SNIPPET`."""
    try:
        build = json.loads(build_json.strip().splitlines()[-1])
        version, cuda = str(build["version"]), build.get("cuda")
    except (IndexError, ValueError, TypeError, KeyError):
        return "unknown"
    return f"{version} (CUDA {cuda})" if cuda and "+cu" not in version else version


_HEADER = ("run", "torch", "passed", "failed", "skipped", "time", "coverage")


def _row(result: RunResult) -> tuple[str, ...]:
    cover = "-" if result.coverage is None else f"{result.coverage:.2f}%"
    if result.problem is not None:
        return (result.run, result.torch, "-", "-", "-", f"{result.seconds:.1f}s", cover)
    counts = (str(result.passed), str(result.failed), str(result.skipped))
    return (result.run, result.torch, *counts, f"{result.seconds:.1f}s", cover)


def summary_lines(results: Sequence[RunResult]) -> list[str]:
    """A table, one row per run; then the problems, the totals, and the runs that are not
    green (a failure, no test passed, or no results)."""
    rows = [_HEADER, *(_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = [
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    ]
    lines += [f"{r.run}: {r.problem}" for r in results if r.problem is not None]
    passed, failed = sum(r.passed for r in results), sum(r.failed for r in results)
    skipped = sum(r.skipped for r in results)
    lines.append(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    bad = [r.run for r in results if not r.ok]
    if bad:
        lines.append(f"not green: {', '.join(bad)}")
    return lines
