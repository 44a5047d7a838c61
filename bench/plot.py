"""The results figure: one panel per comparison (medians, min-max whiskers), log axes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")


def _readable_log(ax: Any, axis: str = "y") -> None:
    """Plain numbers (0.5, 20, 1,000) on a log axis instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter

    def minor(v: float, _: Any) -> str:  # label 2x and 5x a power of ten
        return f"{v:,.10g}" if f"{v:.0e}"[0] in "25" else ""

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))
    target.set_minor_formatter(FuncFormatter(minor))


def _whiskers(summaries: list[Mapping[str, float] | None]) -> tuple[list[float], list[float]]:
    lo = [s["median"] - s["min"] if s else 0.0 for s in summaries]
    hi = [s["max"] - s["median"] if s else 0.0 for s in summaries]
    return lo, hi


def _bars(ax: Any, comp: Mapping[str, Any], log: bool = True) -> None:
    """Grouped bars: a group per case, a bar per variant."""
    cases, variants = comp["cases"], comp["variants"]
    width = 0.8 / len(variants)
    for i, variant in enumerate(variants):
        summaries = [c["summary"].get(variant) for c in cases]
        xs = [k + (i - (len(variants) - 1) / 2) * width for k in range(len(cases))]
        heights = [s["median"] if s else 0.0 for s in summaries]
        ax.bar(
            xs,
            heights,
            width,
            yerr=_whiskers(summaries),
            label=variant,
            color=COLORS[i % len(COLORS)],
            capsize=2,
            error_kw={"lw": 0.8},
        )
    ax.set_xticks(
        range(len(cases)), [c["case"] for c in cases], rotation=20, ha="right", fontsize=7
    )
    if log:
        ax.set_yscale("log")
        _readable_log(ax)
        low, high = ax.get_ylim()
        ax.set_ylim(low, high * 4)  # room for the legend above the bars
    ax.set_ylabel(comp["unit"], fontsize=8)
    ax.set_title(comp["title"], fontsize=9)
    if len(variants) > 1:
        ax.legend(fontsize=6.5, loc="upper left", ncol=2)
    ax.tick_params(labelsize=7)


def _world_sizes(ax: Any, xs: list[int]) -> None:
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log")
    ax.set_xticks(xs, [f"{x:,}" for x in xs])
    ax.xaxis.set_minor_locator(NullLocator())


def _scale(ax: Any, ratio_ax: Any, comp: Mapping[str, Any], target: float | None) -> None:
    xs = [c["world_size"] for c in comp["cases"]]
    for i, variant in enumerate(comp["variants"]):
        summaries = [c["summary"][variant] for c in comp["cases"]]
        ax.errorbar(
            xs,
            [s["median"] for s in summaries],
            yerr=_whiskers(summaries),
            marker="o",
            ms=3,
            capsize=2,
            label=variant,
            color=COLORS[i],
        )
    ax.set(yscale="log", xlabel="world size")
    _world_sizes(ax, xs)
    _readable_log(ax, "y")
    ax.set_ylabel(comp["unit"], fontsize=8)
    ax.set_title(comp["title"], fontsize=9)
    ax.legend(fontsize=7)
    other = comp["variants"][1]
    ratios = [c["ratio"][other] for c in comp["cases"]]
    ratio_ax.errorbar(
        xs,
        [r["median"] for r in ratios],
        yerr=_whiskers(ratios),
        marker="o",
        ms=3,
        capsize=2,
        color=COLORS[1],
        label=f"{other} / {comp['baseline']}",
    )
    if target is not None:
        ratio_ax.axhline(target, ls="--", color="grey", lw=0.8, label=f"goal <= {target:g}")
    ratio_ax.axhline(1.0, color="black", lw=0.5)
    ratio_ax.set(xlabel="world size")
    _world_sizes(ratio_ax, xs)
    ratio_ax.set_title("4. Scale: ratio per repetition", fontsize=9)
    ratio_ax.legend(fontsize=7)
    for a in (ax, ratio_ax):
        a.tick_params(labelsize=7)


def plot(doc: Mapping[str, Any], path: Path) -> None:
    """Write the figure for a results document to ``path`` (PNG, small)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comps = {c["id"]: c for c in doc["comparisons"]}
    panels = sum(k in comps for k in ("collectives", "real_test", "suite", "fidelity"))
    panels += ("harness" in comps or "setup" in comps) + 2 * ("scale" in comps)
    rows = max(1, -(-panels // 3))
    fig, axes = plt.subplots(rows, 3, figsize=(13, 3.75 * rows), squeeze=False)
    slots = iter(axes.flat)
    for key in ("collectives", "real_test"):
        if key in comps:
            _bars(next(slots), comps[key])
    if "harness" in comps or "setup" in comps:
        merged = [comps[k] for k in ("harness", "setup") if k in comps]
        joint = {
            "title": "3. Harness overhead and session setup",
            "unit": "s",
            "variants": ["median"],
            "cases": [
                {"case": v, "summary": {"median": c["cases"][0]["summary"][v]}}
                for c in merged
                for v in c["variants"]
                if c["cases"] and v in c["cases"][0]["summary"]
            ],
        }
        _bars(next(slots), joint)
    if "scale" in comps:
        goal = next((g for g in doc["goals"] if g["id"] == "scale-overhead"), None)
        _scale(next(slots), next(slots), comps["scale"], goal["target"] if goal else None)
    if "suite" in comps:
        _bars(next(slots), comps["suite"], log=False)
    if "fidelity" in comps:
        _bars(next(slots), comps["fidelity"])
    for ax in slots:
        ax.set_visible(False)
    fig.suptitle(
        f"fakedist benchmarks {doc['date']}: torch {doc['torch']}, "
        f"{doc['machine']['cpu_model']}, {doc['machine']['cpus']} cores",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
