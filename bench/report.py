"""The results document: summaries, goal checks, schema check and the markdown tables.

Everything here is pure (no torch, no timing), so tests/tooling/test_bench_*.py can pin it down.
A comparison as the measuring modules produce it::

    {"id": "scale", "title": "...", "unit": "ms", "baseline": "bare torch",
     "variants": ["bare torch", "fakedist"], "notes": ["..."],
     "cases": [{"case": "8", "samples": {"bare torch": [1.0, 1.1], "fakedist": [1.0, 1.2]}}]}
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.stats import DASH, Summary, difference, fmt, fmt_summary, ratio, summarize

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA = 1
GOALS_FILE = Path(__file__).with_name("goals.toml")
MEASURES = ("ratio", "difference", "median")
TIMES = "\u00d7"  # the multiplication sign of ratio cells
OPS = ("<=", ">=")


def finish(comparison: dict[str, Any]) -> dict[str, Any]:
    """Add ``summary`` (per variant) and ``ratio`` (per non-baseline variant) to each case."""
    base = comparison.get("baseline")
    for case in comparison["cases"]:
        samples: Mapping[str, Sequence[float]] = case["samples"]
        case["summary"] = {v: summarize(s).to_dict() for v, s in samples.items() if s}
        case["ratio"] = {
            v: ratio(samples[base], s).to_dict()
            for v, s in samples.items()
            if base is not None and v != base and s and samples.get(base)
        }
    return comparison


def load_goals(path: Path = GOALS_FILE) -> list[dict[str, Any]]:
    """The goals in ``path``; ValueError naming the file, goal and key for a bad entry."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    goals = data.get("goal", [])
    for i, goal in enumerate(goals):
        where = f"{path.name}: goal[{i}]"
        for key in ("id", "text", "comparison", "case", "variant", "measure", "op", "target"):
            if key not in goal:
                raise ValueError(f"{where}: missing key {key!r}")
        if goal["measure"] not in MEASURES:
            raise ValueError(f"{where}: measure {goal['measure']!r} not in {MEASURES}")
        if goal["op"] not in OPS:
            raise ValueError(f"{where}: op {goal['op']!r} not in {OPS}")
    return list(goals)


def _measure(goal: Mapping[str, Any], base: str | None, samples: Mapping[str, Any]) -> float:
    """The goal's value in one case: against the goal's own ``baseline`` variant if it names
    one, else the comparison's."""
    base = goal.get("baseline", base)
    mine = samples[goal["variant"]]
    if goal["measure"] == "median":
        return summarize(mine).median
    if base is None or not samples.get(base):
        raise KeyError(base)
    measure = ratio if goal["measure"] == "ratio" else difference
    return measure(samples[base], mine).median


def evaluate_goals(
    comparisons: Sequence[Mapping[str, Any]], goals: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each goal's measured value: the worst over its cases (``met`` None: not measured)."""
    by_id = {c["id"]: c for c in comparisons}
    out = []
    for goal in goals:
        comparison = by_id.get(goal["comparison"], {"cases": [], "baseline": None})
        found: list[tuple[float, str]] = []
        for case in comparison["cases"]:
            if goal["case"] not in ("*", case["case"]) or not case["samples"].get(goal["variant"]):
                continue
            try:
                value = _measure(goal, comparison["baseline"], case["samples"])
            except KeyError:
                continue
            found.append((value, case["case"]))
        result = {k: goal[k] for k in ("id", "text", "op", "target", "measure")}
        if not found:
            out.append({**result, "measured": None, "case": None, "met": None})
            continue
        value, case_name = max(found) if goal["op"] == "<=" else min(found)
        met = value <= goal["target"] if goal["op"] == "<=" else value >= goal["target"]
        out.append({**result, "measured": value, "case": case_name, "met": met})
    return out


def _require(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise ValueError(f"{where}: missing key {key!r}")
    if not isinstance(doc[key], kind) or (isinstance(doc[key], bool) and kind is not bool):
        raise ValueError(f"{where}.{key}: expected {kind}, got {doc[key]!r}")
    return doc[key]


def check_schema(doc: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first key of ``doc`` that breaks the results schema."""
    if _require(doc, "schema", int, "results") != SCHEMA:
        raise ValueError(f"results.schema: expected {SCHEMA}, got {doc['schema']!r}")
    for key in ("date", "created", "torch", "fakedist", "python", "command"):
        _require(doc, key, str, "results")
    machine = _require(doc, "machine", dict, "results")
    _require(machine, "cpus", int, "results.machine")
    _require(machine, "cpu_model", str, "results.machine")
    _require(machine, "platform", str, "results.machine")
    for i, comp in enumerate(_require(doc, "comparisons", list, "results")):
        where = f"results.comparisons[{i}]"
        for key in ("id", "title", "unit"):
            _require(comp, key, str, where)
        if comp.get("baseline") is not None:
            _require(comp, "baseline", str, where)
        variants = _require(comp, "variants", list, where)
        _require(comp, "notes", list, where)
        for j, case in enumerate(_require(comp, "cases", list, where)):
            cwhere = f"{where}.cases[{j}]"
            _require(case, "case", str, cwhere)
            for variant, values in _require(case, "samples", dict, cwhere).items():
                if variant not in variants:
                    raise ValueError(f"{cwhere}.samples: unknown variant {variant!r}")
                if not all(isinstance(x, (int, float)) for x in values):
                    raise ValueError(f"{cwhere}.samples[{variant!r}]: not all numbers")
            _require(case, "summary", dict, cwhere)
            _require(case, "ratio", dict, cwhere)
    for i, goal in enumerate(_require(doc, "goals", list, "results")):
        for key in ("id", "text", "op"):
            _require(goal, key, str, f"results.goals[{i}]")
        if goal.get("met") is not None:
            _require(goal, "met", bool, f"results.goals[{i}]")


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def comparison_table(comp: Mapping[str, Any]) -> list[str]:
    """One markdown table: a column per variant, each followed by its ratio to the baseline."""
    base = comp.get("baseline")
    header = ["case"]
    for variant in comp["variants"]:
        header.append(variant)
        if base is not None and variant != base:
            header.append(f"{TIMES} {base}" if len(comp["variants"]) == 2 else TIMES)
    lines = [_row(header), _row(["---"] + ["---:"] * (len(header) - 1))]
    for case in comp["cases"]:
        cells = [case["case"]]
        for variant in comp["variants"]:
            summary = case["summary"].get(variant)
            cells.append(fmt_summary(Summary(**summary)) if summary else "—")
            if base is not None and variant != base:
                r = case["ratio"].get(variant)
                cells.append(fmt_summary(Summary(**r), TIMES) if r else "—")
        lines.append(_row(cells))
    return lines


def goal_line(goal: Mapping[str, Any]) -> list[str]:
    """A goals-table row: goal, target, measured (worst case), met."""
    unit = {"ratio": TIMES, "difference": " s", "median": " s"}[goal["measure"]]
    target = f"{goal['op']} {fmt(goal['target'])}{unit}"
    if goal["measured"] is None:
        return [goal["text"], target, "not measured", "—"]
    measured = f"{fmt(goal['measured'])}{unit} ({goal['case']})"
    return [goal["text"], target, measured, "met" if goal["met"] else "**missed**"]


def render_markdown(doc: Mapping[str, Any]) -> str:
    """The whole results file as markdown: machine line, goals, one table per comparison."""
    m = doc["machine"]
    lines = [
        f"# fakedist benchmarks, {doc['date']}",
        "",
        f"torch {doc['torch']} · fakedist {doc['fakedist']} · Python {doc['python']} · "
        f"{m['cpu_model']}, {m['cpus']} cores · {m['platform']}",
        "",
        f"Reproduce: `{doc['command']}`. Cells: median (min{DASH}max) over the repetitions; "
        f"{TIMES}: the ratio to the baseline (first column), taken per repetition.",
        "",
        "## Goals",
        "",
        _row(["goal", "target", "measured (worst case)", ""]),
        _row(["---", "---:", "---:", "---"]),
    ]
    lines += [_row(goal_line(g)) for g in doc["goals"]]
    for comp in doc["comparisons"]:
        lines += ["", f"## {comp['title']} ({comp['unit']})", "", *comparison_table(comp)]
        if comp["notes"]:
            lines += ["", *(f"- {note}" for note in comp["notes"])]
    return "\n".join(lines) + "\n"


def parse_cpu_model(cpuinfo: str) -> str:
    """The first ``model name`` in /proc/cpuinfo text ("unknown CPU" without one)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return " ".join(value.split())
    return "unknown CPU"


def recorded_command(label: str, argv: Sequence[str]) -> str:
    """The command to print: ``label`` and the options, without machine-specific ones."""
    private = ("--nox-python", "--label", "--out")
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in private:
            skip = True
        elif not arg.startswith(tuple(f"{p}=" for p in private)):
            kept.append(arg)
    return " ".join([label, *kept])
