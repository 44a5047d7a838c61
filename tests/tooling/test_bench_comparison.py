"""bench/fidelity.py's comparison, built from given timings (no torch: its body runs in
tests/unit/test_bench_fidelity.py), its table, and bench/plot.py's figure with every comparison
in it (no timing assertions)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from _needs import require

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of the project, not an installed package
    sys.path.insert(0, str(ROOT))

from bench import fidelity, report  # noqa: E402
from bench.run import COMPARISONS  # noqa: E402

X = "\u00d7"


def built() -> dict[str, Any]:
    samples = {
        2: {fidelity.FAKE: [10.0, 20.0], fidelity.THREADED: [20.0, 60.0], fidelity.GLOO: [1e3] * 2},
        4: {fidelity.FAKE: [10.0, 10.0], fidelity.THREADED: [40.0, 40.0], fidelity.GLOO: [2e3] * 2},
    }
    first = {fidelity.FAKE: 500.0, fidelity.THREADED: 50.0, fidelity.GLOO: 4000.0}
    body = {2: {fidelity.GLOO: [900.0, 700.0]}}
    return report.finish(
        fidelity.comparison(
            first, samples, first_size=2, losses_agree={2: True, 4: False}, body_ms=body
        )
    )


def document(comparisons: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": report.SCHEMA,
        "date": "2026-01-02",
        "created": "2026-01-02T03:04:05+00:00",
        "command": "python -m bench.run",
        "torch": "2.13.0+cpu",
        "fakedist": "0.1.0",
        "python": "3.11.7",
        "machine": {"cpus": 2, "cpu_model": "Some CPU", "platform": "Linux x86_64"},
        "comparisons": comparisons,
        "goals": [],
    }


def test_comparison_structure() -> None:
    comp = built()
    report.check_schema(document([comp]))
    assert comp["id"] == "fidelity"
    assert "fidelity" in COMPARISONS
    assert (comp["baseline"], comp["unit"]) == (fidelity.FAKE, "ms")
    assert comp["variants"] == [fidelity.FAKE, fidelity.THREADED, fidelity.GLOO]
    assert [c["case"] for c in comp["cases"]] == [
        "world 2",
        "world 4",
        "first call, world 2 (one-time costs)",
    ]
    world2 = comp["cases"][0]
    assert world2["ratio"][fidelity.THREADED] == {"median": 2.5, "min": 2.0, "max": 3.0, "n": 2}
    assert world2["ratio"][fidelity.GLOO]["median"] == 75.0
    assert comp["cases"][2]["summary"][fidelity.GLOO]["n"] == 1


def test_comparison_notes_and_table() -> None:
    comp = built()
    notes = "\n".join(comp["notes"])
    # the first gloo call minus a later one at the same world size, in seconds
    assert "the first gloo call (4.00 s at world 2) starts the fork server" in notes
    assert "3.00 s more than a later gloo call" in notes
    assert "world 2: gloo 800" in notes
    assert "world 2: yes, world 4: NO" in notes
    header, _, row2, *_ = report.comparison_table(comp)
    assert header == f"| case | {fidelity.FAKE} | threaded | {X} | gloo | {X} |"
    assert row2.startswith("| world 2 | 15.0 ")


def test_fork_server_already_running_is_said() -> None:
    samples = {2: {v: [1.0] for v in fidelity.VARIANTS}}
    comp = fidelity.comparison(
        {v: 1.0 for v in fidelity.VARIANTS}, samples, first_size=2, server_was_running=True
    )
    assert any("already running" in note for note in comp["notes"])


def _simple(id_: str, cases: list[dict[str, Any]]) -> dict[str, Any]:
    return report.finish(
        {
            "id": id_,
            "title": id_,
            "unit": "s",
            "baseline": "a",
            "variants": ["a", "b"],
            "notes": [],
            "cases": cases,
        }
    )


def test_plot_with_every_comparison(tmp_path: Path) -> None:
    require(importlib.util.find_spec("matplotlib") is not None, "matplotlib")
    from bench.plot import plot

    plain = [{"case": "c", "samples": {"a": [1.0, 2.0], "b": [3.0, 4.0]}}]
    scale = [
        {"case": f"{n}", "world_size": n, "samples": {"a": [1.0, 2.0], "b": [2.0, 2.0]}}
        for n in (8, 64)
    ]
    comps = [_simple(c, scale if c == "scale" else plain) for c in COMPARISONS if c != "fidelity"]
    path = tmp_path / "all.png"
    plot(document([*comps, built()]), path)
    assert path.stat().st_size > 0
