"""The compatibility sweep's results: one JSON record per torch release, and COMPAT.md.

``nox -s compat`` runs the conformance suite on each torch minor of the matrix, one
environment at a time; after each run it stores a :class:`Run` (the torch build actually
installed, counts, wall time, skip reasons) with :func:`save`, and at the end
:func:`render` turns every stored run into the committed ``matrix/COMPAT.md``.
Torch-free: it only reads JUnit XML and JSON.
"""

from __future__ import annotations

import json
import platform
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fakedist.tooling.action.report import ReportError, read_xml

__all__ = [
    "TORCH_BUILD_SNIPPET",
    "CompatError",
    "Run",
    "build_note",
    "count_junit",
    "load_runs",
    "machine",
    "not_green",
    "record",
    "render",
    "save",
    "supported_range",
]

# Printed by a cell's interpreter: the torch build actually installed, and its CUDA version.
TORCH_BUILD_SNIPPET = (
    "import json, torch; print(json.dumps({'version': torch.__version__, "
    "'cuda': getattr(torch.version, 'cuda', None)}))"
)

_SKIP_LOCATION = re.compile(r"^\S+?:\d+: ")  # "tests/x.py:12: " in front of a skip reason
_COLLECTION_SKIP = re.compile(r"'Skipped: (.*)'\)\s*$", re.DOTALL)
# " (/x/y/z.py)" or " /x/y/z.py" in an error text: this machine's paths stay out of COMPAT.md
_ABSOLUTE_PATH = re.compile(r"\s*\(/[^()\s]+/[^()\s]+\)|(?<=\s)/[^()\s]+/[^()\s]+")


class CompatError(ValueError):
    """A results file that cannot be read; one line naming the file."""


@dataclass(frozen=True)
class Run:
    """One release's conformance run."""

    minor: str
    requested: str  # the version the matrix pins, e.g. 2.14.1
    installed: str  # torch.__version__ of the installed build, e.g. 2.14.1+cu130
    cuda: str | None  # torch.version.cuda: None for a CPU build
    variant: str  # the cell's variant (cpu, cu126, ...)
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    skips: dict[str, int] = field(default_factory=dict)  # reason -> count
    problem: str | None = None  # why no results exist (install failed, junit unreadable)

    @property
    def green(self) -> bool:
        """No failure, no error, and results exist."""
        return self.problem is None and self.failed == 0 and self.errors == 0 and self.passed > 0


def build_note(cell_id: str, variant: str, installed: str, cuda: str | None) -> str | None:
    """What to say when a ``cpu`` cell got a CUDA build (PyPI's Linux torch wheels are CUDA
    builds); None when the label is true."""
    if variant != "cpu" or not cuda:
        return None
    return f"{cell_id}: the index served torch {installed}, a CUDA {cuda} build, running on CPU"


def count_junit(path: Path) -> tuple[int, int, int, int, dict[str, int]]:
    """(passed, failed, errors, skipped, skip reasons with counts) of one JUnit XML file."""
    try:
        root = read_xml(path)
    except ReportError as exc:
        raise CompatError(str(exc)) from None
    passed = failed = errors = skipped = 0
    reasons: Counter[str] = Counter()
    for case in root.iter("testcase"):
        if case.find("failure") is not None:
            failed += 1
        elif case.find("error") is not None:
            errors += 1
        elif (skip := case.find("skipped")) is not None:
            skipped += 1
            reasons[_skip_reason(skip)] += 1
        else:
            passed += 1
    return passed, failed, errors, skipped, dict(reasons.most_common())


def _skip_reason(skip: ET.Element) -> str:
    """The reason of a skip, without its location or any absolute path (machine-specific)."""
    reason = (skip.get("message") or "").strip()
    collected = _COLLECTION_SKIP.search(skip.text or "")
    if reason == "collection skipped" and collected:  # a module-level skip: the reason is in
        reason = collected[1]  # the text, as ('file', line, 'Skipped: reason')
    reason = _ABSOLUTE_PATH.sub("", _SKIP_LOCATION.sub("", reason)).strip()
    return reason or "(no reason)"


def save(run: Run, folder: Path) -> Path:
    """Write ``run`` as ``<folder>/<minor>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run.minor}.json"
    path.write_text(json.dumps(asdict(run), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load_runs(folder: Path) -> list[Run]:
    """Every stored run in ``folder``, oldest release first."""
    runs = []
    for path in sorted(folder.glob("*.json")):
        try:
            runs.append(Run(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError) as exc:
            raise CompatError(f"{path}: not a compat record ({exc})") from None
    return sorted(runs, key=lambda r: _minor_key(r.minor))


def _minor_key(minor: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in minor.split("."))
    except ValueError:
        return (10**6,)  # nightly last


def supported_range(runs: Iterable[Run]) -> str:
    """``"2.1 to 2.15"`` over the green releases (of a contiguous sweep), or ``"none"``."""
    green = [r.minor for r in runs if r.green and r.minor[0].isdigit()]
    if not green:
        return "none"
    ordered = sorted(green, key=_minor_key)
    return ordered[0] if len(ordered) == 1 else f"{ordered[0]} to {ordered[-1]}"


def machine() -> str:
    """A short description of the machine the sweep ran on (no host names, no paths)."""
    import os

    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, no GPU used"
    )


def _build(run: Run) -> str:
    kind = f"CUDA {run.cuda} build, run on CPU" if run.cuda else "CPU build"
    return f"`{run.installed}` ({kind})"


def render(runs: Sequence[Run], date: str, where: str) -> str:
    """COMPAT.md: the table, then the skip reasons of each release."""
    lines = [
        "# torch compatibility",
        "",
        "Generated by `nox -s compat` (the conformance suite, no coverage, on every torch minor",
        "of `matrix/torch.toml`, one environment at a time). Do not edit by hand.",
        "",
        f"- Date: {date}",
        f"- Machine: {where}",
        f"- Supported (0 failed, 0 errors): torch {supported_range(runs)}",
        "",
        "| torch | build installed | passed | failed | errors | skipped | wall |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        if r.problem:
            lines.append(f"| {r.minor} | {r.problem} | - | - | - | - | {r.seconds:.0f} s |")
            continue
        lines.append(
            f"| {r.minor} | {_build(r)} | {r.passed} | {r.failed} | {r.errors} | {r.skipped} "
            f"| {r.seconds:.0f} s |"
        )
    lines += ["", "## Skip reasons", ""]
    for r in runs:
        if not r.skips:
            continue
        lines.append(f"### torch {r.minor}")
        lines.append("")
        lines += [f"- {count} x {reason}" for reason, count in r.skips.items()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def record(
    cell_minor: str,
    requested: str,
    variant: str,
    build_json: str,
    junit: Path,
    seconds: float,
) -> Run:
    """A Run from the build snippet's output and the run's JUnit file (problem if unreadable)."""
    try:
        build = json.loads(build_json.strip().splitlines()[-1])
        installed, cuda = str(build["version"]), build.get("cuda")
    except (ValueError, IndexError, KeyError, TypeError):
        return Run(
            cell_minor,
            requested,
            "?",
            None,
            variant,
            seconds=seconds,
            problem="torch did not install or import",
        )
    try:
        passed, failed, errors, skipped, skips = count_junit(junit)
    except CompatError as exc:
        return Run(
            cell_minor, requested, installed, cuda, variant, seconds=seconds, problem=str(exc)
        )
    return Run(
        cell_minor,
        requested,
        installed,
        cuda,
        variant,
        passed,
        failed,
        errors,
        skipped,
        round(seconds, 1),
        skips,
    )


def not_green(runs: Sequence[Run]) -> list[str]:
    """One line per release that failed, errored or produced no results."""
    return [
        f"torch {r.minor}: {r.problem}"
        if r.problem
        else f"torch {r.minor}: {r.failed} failed, {r.errors} errors, {r.passed} passed"
        for r in runs
        if not r.green
    ]
