"""The ``mock_process_group`` backend: rank and world-size queries only, always torn down."""

from __future__ import annotations

import unittest

import pytest
import torch
import torch.distributed as dist

import fakedist
from fakedist.backends import mock


@pytest.mark.parametrize(("rank", "world_size"), [(0, 1), (2, 5), (7, 8)])
def test_with_dist_queries(rank: int, world_size: int) -> None:
    with mock.with_dist(rank=rank, world_size=world_size):
        assert dist.is_initialized()
        assert (dist.get_rank(), dist.get_world_size()) == (rank, world_size)
        assert dist.get_backend() == "mock_process_group"
        world = fakedist.current_world()
        assert world is not None
        assert world.backend == "mock_process_group"
    assert not dist.is_initialized()
    assert fakedist.current_world() is None


def test_with_dist_has_no_collectives() -> None:
    with mock.with_dist(rank=1, world_size=2):
        with pytest.raises(RuntimeError):
            dist.all_reduce(torch.ones(2))
        assert dist.get_world_size() == 2  # the group is still usable for queries
    assert not dist.is_initialized()


def test_with_dist_torn_down_when_body_raises() -> None:
    with pytest.raises(LookupError), mock.with_dist(rank=0, world_size=3):
        raise LookupError
    assert not dist.is_initialized()


def test_with_fake_comms_function() -> None:
    @mock.with_fake_comms(rank=1, world_size=3)
    def body(x: int) -> tuple[int, int, int]:
        return dist.get_rank(), dist.get_world_size(), x

    assert body(9) == (1, 3, 9)
    assert not dist.is_initialized()


def test_with_fake_comms_bare_decorator_defaults() -> None:
    @mock.with_fake_comms
    def body() -> tuple[int, int]:
        return dist.get_rank(), dist.get_world_size()

    assert body() == (0, 2)
    assert not dist.is_initialized()


class _Case(unittest.TestCase):
    __test__ = False  # run explicitly below, not collected by pytest

    @mock.with_fake_comms(rank=3, world_size=4)
    def test_mock(self) -> None:
        self.assertEqual((dist.get_rank(), dist.get_world_size()), (3, 4))
        self.assertEqual(dist.get_backend(), "mock_process_group")

    @fakedist.with_fake_comms(world_size=8, rank=6)
    def test_fake(self) -> None:
        self.assertEqual((dist.get_rank(), dist.get_world_size()), (6, 8))
        self.assertEqual(dist.get_backend(), "fake")

    @fakedist.with_fake_comms(world_size=2, rank=1, backend="mock_process_group")
    def test_fails(self) -> None:
        self.assertEqual(dist.get_rank(), 0)  # fails on purpose: rank is 1


@pytest.mark.parametrize("name", ["test_mock", "test_fake"])
def test_unittest_method_decorated(name: str) -> None:
    result = unittest.TestResult()
    _Case(name).run(result)
    assert (result.testsRun, result.failures, result.errors) == (1, [], [])
    assert not dist.is_initialized()


def test_unittest_method_failure_still_tears_down() -> None:
    result = unittest.TestResult()
    _Case("test_fails").run(result)
    assert len(result.failures) == 1
    assert "AssertionError" in result.failures[0][1]
    assert not dist.is_initialized()
