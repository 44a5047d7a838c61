"""bench/fidelity.py: the comparison's body at fake and threaded fidelity, on torch. What it
builds from timings, its table and the figure: tests/tooling/test_bench_comparison.py."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of the project, not an installed package
    sys.path.insert(0, str(ROOT))

from bench import fidelity  # noqa: E402


@pytest.mark.parametrize("variant", [fidelity.FAKE, fidelity.THREADED])
def test_body_runs(variant: str) -> None:
    ranks = fidelity.run_variant(variant, 2)
    assert len(ranks) == (1 if variant == fidelity.FAKE else 2)
    assert all(ms >= 0 for _, ms in ranks)
    if variant == fidelity.THREADED:  # real results: each rank's own batch, finite losses
        losses = [loss for loss, _ in ranks]
        assert all(math.isfinite(x) for x in losses)
        assert losses[0] != losses[1]
