"""bench/report.py and bench/suite.py: goals, the results schema, tables, junit parsing."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of the project, not an installed package
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.harness import session_envdir  # noqa: E402
from bench.suite import junit_times  # noqa: E402

X, D = "\u00d7", "\u2013"  # the multiplication sign and en dash the tables use


def comparison() -> dict[str, Any]:
    return report.finish(
        {
            "id": "scale",
            "title": "4. Scale",
            "unit": "ms",
            "baseline": "bare",
            "variants": ["bare", "fakedist"],
            "notes": ["a note"],
            "cases": [
                {"case": "8", "samples": {"bare": [10.0, 20.0], "fakedist": [11.0, 21.0]}},
                {"case": "64", "samples": {"bare": [100.0, 100.0], "fakedist": [150.0, 125.0]}},
            ],
        }
    )


def document() -> dict[str, Any]:
    comp = comparison()
    goals = [
        {
            "id": "scale",
            "text": "adds <= 10%",
            "comparison": "scale",
            "case": "*",
            "variant": "fakedist",
            "measure": "ratio",
            "op": "<=",
            "target": 1.1,
        }
    ]
    return {
        "schema": 1,
        "date": "2026-01-02",
        "created": "2026-01-02T03:04:05+00:00",
        "command": "nox -s bench",
        "torch": "2.13.0+cpu",
        "fakedist": "0.1.0",
        "python": "3.11.7",
        "machine": {"cpus": 2, "cpu_model": "Some CPU", "platform": "Linux x86_64"},
        "comparisons": [comp],
        "goals": report.evaluate_goals([comp], goals),
    }


def test_finish_adds_summaries_and_paired_ratios() -> None:
    case = comparison()["cases"][1]
    assert case["summary"]["fakedist"] == {"median": 137.5, "min": 125.0, "max": 150.0, "n": 2}
    assert case["ratio"] == {"fakedist": {"median": 1.375, "min": 1.25, "max": 1.5, "n": 2}}


def test_no_ratio_without_a_baseline() -> None:
    comp = report.finish(
        {"baseline": None, "cases": [{"case": "a", "samples": {"x": [1.0], "y": [2.0]}}]}
    )
    assert comp["cases"][0]["ratio"] == {}


def test_goal_takes_the_worst_case() -> None:
    (goal,) = document()["goals"]
    assert goal["measured"] == 1.375
    assert (goal["case"], goal["met"]) == ("64", False)


def test_goal_at_least_and_difference_and_unmeasured() -> None:
    comp = comparison()
    base = {"comparison": "scale", "case": "8", "variant": "fakedist", "text": "t"}
    goals = [
        {**base, "id": "a", "measure": "difference", "op": "<=", "target": 1.0},
        {**base, "id": "b", "measure": "median", "op": ">=", "target": 16.0},
        {**base, "id": "c", "measure": "ratio", "op": "<=", "target": 2.0, "case": "9"},
    ]
    a, b, c = report.evaluate_goals([comp], goals)
    assert (a["measured"], a["met"]) == (1.0, True)
    assert (b["measured"], b["met"]) == (16.0, True)
    assert (c["measured"], c["case"], c["met"]) == (None, None, None)


def test_project_goals_file_loads() -> None:
    goals = report.load_goals()
    assert [g["id"] for g in goals] == [
        "per-test-vs-gloo",
        "first-test-vs-gloo",
        "recording-vs-fake",
        "nox-overhead",
        "setup-warm-cache",
        "scale-overhead",
        "ranks-all-64",
        "ranks-all-64-warm",
    ]
    assert {g["op"] for g in goals} == {"<=", ">="}


def test_bad_goal_names_file_goal_and_key(tmp_path: Path) -> None:
    path = tmp_path / "goals.toml"
    path.write_text('[[goal]]\nid = "a"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"goals.toml: goal\[0\]: missing key 'text'"):
        report.load_goals(path)
    fields = 'text="t"\ncomparison="c"\ncase="*"\nvariant="v"\nop="<"\ntarget=1\nmeasure="ratio"'
    path.write_text(f'[[goal]]\nid = "a"\n{fields}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"goal\[0\]: op '<' not in"):
        report.load_goals(path)


def test_schema_accepts_a_full_document() -> None:
    report.check_schema(document())


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("schema",), 2, "results.schema: expected 1, got 2"),
        (("machine", "cpus"), "2", "results.machine.cpus: expected <class 'int'>"),
        (("comparisons", 0, "cases", 0, "samples", "gloo"), [1.0], "unknown variant 'gloo'"),
        (("comparisons", 0, "cases", 1, "samples", "bare"), ["x"], r"samples\['bare'\]"),
        (("goals", 0, "met"), "yes", r"results.goals\[0\].met: expected <class 'bool'>"),
    ],
)
def test_schema_names_the_bad_key(path: tuple[Any, ...], value: Any, message: str) -> None:
    doc = copy.deepcopy(document())
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match=message):
        report.check_schema(doc)


def test_schema_missing_key() -> None:
    doc = document()
    del doc["torch"]
    with pytest.raises(ValueError, match="results: missing key 'torch'"):
        report.check_schema(doc)


def test_comparison_table() -> None:
    assert report.comparison_table(comparison()) == [
        f"| case | bare | fakedist | {X} bare |",
        "| --- | ---: | ---: | ---: |",
        f"| 8 | 15.0 (10.0{D}20.0) | 16.0 (11.0{D}21.0) | 1.08{X} (1.05{D}1.10) |",
        f"| 64 | 100 | 138 (125{D}150) | 1.38{X} (1.25{D}1.50) |",
    ]


def test_render_markdown() -> None:
    lines = report.render_markdown(document()).splitlines()
    assert lines[0] == "# fakedist benchmarks, 2026-01-02"
    assert lines[2] == (
        "torch 2.13.0+cpu · fakedist 0.1.0 · Python 3.11.7 · Some CPU, 2 cores · Linux x86_64"
    )
    assert lines[4].startswith("Reproduce: `nox -s bench`.")
    assert lines[8:11] == [
        "| goal | target | measured (worst case) |  |",
        "| --- | ---: | ---: | --- |",
        f"| adds <= 10% | <= 1.10{X} | 1.38{X} (64) | **missed** |",
    ]
    assert lines[12] == "## 4. Scale (ms)"
    assert lines[-1] == "- a note"


def test_recorded_command_drops_machine_specific_options() -> None:
    argv = ["--reps", "3", "--nox-python", "/x/python", "--out=/tmp/r", "--label", "y"]
    assert report.recorded_command("nox -s bench --", argv) == "nox -s bench -- --reps 3"


def test_parse_cpu_model() -> None:
    text = "processor\t: 0\nmodel name\t: Intel(R)  Xeon(R) @ 2.50GHz\nmodel name\t: other\n"
    assert report.parse_cpu_model(text) == "Intel(R) Xeon(R) @ 2.50GHz"
    assert report.parse_cpu_model("processor : 0\n") == "unknown CPU"


def test_session_envdir() -> None:
    assert session_envdir("tests-cpu(2.13-cpu)") == "tests-cpu-2-13-cpu"


def test_junit_times() -> None:
    xml = (
        '<testsuites><testsuite tests="3" failures="1" errors="0" time="9.5">'
        '<testcase classname="tests.conformance.test_a" name="t1" time="1.25"/>'
        '<testcase classname="tests.conformance.test_b" name="t2" time="2.5"/>'
        '<testcase classname="tests.unit.test_c" name="t3" time="4"/>'
        "</testsuite></testsuites>"
    )
    assert junit_times(xml) == {
        "selected": 3.75,
        "total": 9.5,
        "tests": 3.0,
        "failures": 1.0,
        "errors": 0.0,
    }
