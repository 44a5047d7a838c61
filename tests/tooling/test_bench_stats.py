"""bench/stats.py: medians, min-max, paired ratios and number formatting (no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of the project, not an installed package
    sys.path.insert(0, str(ROOT))

from bench.stats import Summary, difference, fmt, fmt_summary, ratio, summarize  # noqa: E402


def test_summarize_odd_and_even_counts() -> None:
    assert summarize([3.0, 1.0, 2.0]) == Summary(median=2.0, min=1.0, max=3.0, n=3)
    assert summarize([4, 1, 3, 2]) == Summary(median=2.5, min=1.0, max=4.0, n=4)
    assert summarize([7]).to_dict() == {"median": 7.0, "min": 7.0, "max": 7.0, "n": 1}


def test_summarize_needs_samples() -> None:
    with pytest.raises(ValueError, match="no samples"):
        summarize([])


def test_ratio_is_paired_per_repetition() -> None:
    # pairs: 2/1, 6/2, 12/4 -> 2, 3, 3; not the ratio of the medians (6/2 = 3)
    assert ratio([1.0, 2.0, 4.0], [2.0, 6.0, 12.0]) == Summary(3.0, 2.0, 3.0, 3)


def test_ratio_of_medians_when_counts_differ() -> None:
    assert ratio([1.0, 2.0, 3.0], [10.0]) == Summary(5.0, 5.0, 5.0, 1)


def test_difference_paired_and_unpaired() -> None:
    assert difference([1.0, 2.0], [1.5, 4.0]) == Summary(1.25, 0.5, 2.0, 2)
    assert difference([1.0, 2.0, 3.0], [5.0]) == Summary(3.0, 3.0, 3.0, 1)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.00"),
        (0.012345, "0.0123"),
        (0.5, "0.500"),
        (1.234, "1.23"),
        (12.34, "12.3"),
        (123.4, "123"),
        (65536.0, "65,536"),
        (-2.5, "-2.50"),
    ],
)
def test_fmt(value: float, text: str) -> None:
    assert fmt(value) == text


def test_fmt_summary() -> None:
    assert fmt_summary(Summary(12.34, 11.0, 1234.0, 5)) == "12.3 (11.0\u20131,234)"
    assert fmt_summary(Summary(2.0, 1.5, 3.0, 3), "\u00d7") == "2.00\u00d7 (1.50\u20133.00)"
    assert fmt_summary(Summary(4.0, 4.0, 4.0, 1), " s") == "4.00 s"
