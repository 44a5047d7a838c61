"""A bench goal may measure against its own baseline variant instead of the comparison's."""

from __future__ import annotations

from bench.report import evaluate_goals

COMPARISON = {
    "id": "ranks",
    "baseline": "cold",
    "cases": [{"case": "world 64", "samples": {"cold": [500.0], "warm": [30.0], "all": [1800.0]}}],
}


def _goal(**extra: object) -> dict[str, object]:
    return {
        "id": "g",
        "text": "t",
        "comparison": "ranks",
        "case": "world 64",
        "variant": "all",
        "measure": "ratio",
        "op": "<=",
        "target": 10.0,
        **extra,
    }


def test_the_comparison_baseline_is_the_default() -> None:
    (result,) = evaluate_goals([COMPARISON], [_goal()])
    assert (result["measured"], result["met"]) == (3.6, True)


def test_a_goal_names_its_own_baseline() -> None:
    (result,) = evaluate_goals([COMPARISON], [_goal(baseline="warm")])
    assert (result["measured"], result["met"]) == (60.0, False)
