"""with_fake_comms on unittest.TestCase methods at the threaded and gloo fidelities: pytest
collects the cases below itself (its unittest integration), and the tests at the end run
them under unittest's own runner, where the instance holds an open stream."""

from __future__ import annotations

import io
import threading
import unittest
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from fakedist import with_fake_comms


class TestStateReachesEveryRank(unittest.TestCase):
    marks: Path | None = None  # set by the runner tests below: where cleanups leave files

    def setUp(self) -> None:
        self.scale = 2.0
        self.marks_dir = type(self).marks  # an instance attribute: it reaches the copies

    @with_fake_comms(world_size=2, fidelity="gloo")
    def test_gloo(self) -> None:
        self._all_reduce_scaled()

    @with_fake_comms(world_size=3, fidelity="threaded")
    def test_threaded(self) -> None:
        self._all_reduce_scaled()

    def _all_reduce_scaled(self) -> None:
        t = torch.ones(2) * self.scale
        dist.all_reduce(t)
        self.assertEqual(t.tolist(), [self.scale * dist.get_world_size()] * 2)
        if self.marks_dir is not None:
            mark = self.marks_dir / f"{self._testMethodName}-rank{dist.get_rank()}"
            self.addCleanup(mark.touch)

    @with_fake_comms(world_size=2, fidelity="gloo")
    def rank_and_scale(self) -> tuple[int, float]:
        """Not a test: a helper whose per-rank values come back."""
        return dist.get_rank(), self.scale

    def test_helper_returns_each_rank_value(self) -> None:
        self.assertEqual(self.rank_and_scale(), [(0, 2.0), (1, 2.0)])


class UnpicklableState(unittest.TestCase):
    __test__ = False  # run by test_unpicklable_attribute_is_named only

    def setUp(self) -> None:
        self.lock = threading.Lock()

    @with_fake_comms(world_size=2, fidelity="gloo")
    def test_it(self) -> None:
        dist.barrier()


def _run(case: type[unittest.TestCase]) -> tuple[unittest.TestResult, str]:
    stream = io.StringIO()
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
    result = unittest.TextTestRunner(stream=stream, verbosity=2).run(suite)
    return result, stream.getvalue()


def test_unittest_runner_sends_copies_and_runs_their_cleanups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TestStateReachesEveryRank, "marks", tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result, output = _run(TestStateReachesEveryRank)
    assert result.wasSuccessful(), output
    # the test methods return None, not the ranks' [None, None] (deprecated since 3.11)
    assert not [w for w in caught if "return a value that is not None" in str(w.message)]
    assert result.testsRun == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "test_gloo-rank0",
        "test_gloo-rank1",
        "test_threaded-rank0",
        "test_threaded-rank1",
        "test_threaded-rank2",
    ]


def test_unpicklable_attribute_is_named() -> None:
    result, output = _run(UnpicklableState)
    assert not result.wasSuccessful(), output
    [(_, trace)] = result.errors
    assert trace.splitlines()[-1] == (
        "fakedist.fidelity.outcome.FidelitySetupError: gloo fidelity: cannot send attribute "
        "'lock' of UnpicklableState (cannot pickle '_thread.lock' object) to the worker "
        "processes: what a gloo rank runs must be picklable"
    )
