"""Summaries of repeated measurements: median and min-max, and paired ratios of two variants."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    """Median, min and max of ``n`` samples."""

    median: float
    min: float
    max: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(samples: Sequence[float]) -> Summary:
    """Median and min-max; ValueError on no samples."""
    if not samples:
        raise ValueError("summarize: no samples")
    values = [float(x) for x in samples]
    return Summary(statistics.median(values), min(values), max(values), len(values))


def ratio(base: Sequence[float], other: Sequence[float]) -> Summary:
    """``other / base`` measured in the same run.

    Repetitions alternate the variants, so with as many samples on both sides the ratio is
    taken per repetition (pairs) and summarised; otherwise it is the ratio of the medians.
    """
    if not base or not other:
        raise ValueError("ratio: no samples")
    if len(base) == len(other):
        pairs = [o / b for b, o in zip(base, other)]
        return summarize(pairs)
    value = statistics.median(other) / statistics.median(base)
    return Summary(value, value, value, 1)


def difference(base: Sequence[float], other: Sequence[float]) -> Summary:
    """``other - base``, per repetition when paired, else of the medians."""
    if not base or not other:
        raise ValueError("difference: no samples")
    if len(base) == len(other):
        return summarize([o - b for b, o in zip(base, other)])
    value = statistics.median(other) - statistics.median(base)
    return Summary(value, value, value, 1)


def fmt(value: float) -> str:
    """About three significant digits, thousands separated: 1,234 / 12.3 / 1.23 / 0.123."""
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1 or size == 0:
        return f"{value:.2f}"
    return f"{value:#.3g}"


DASH = "\u2013"  # en dash, between min and max


def fmt_summary(summary: Summary, suffix: str = "") -> str:
    """``median (min-max)`` with an en dash; a single sample prints alone."""
    if summary.n == 1 or summary.min == summary.max:
        return f"{fmt(summary.median)}{suffix}"
    return f"{fmt(summary.median)}{suffix} ({fmt(summary.min)}{DASH}{fmt(summary.max)})"
