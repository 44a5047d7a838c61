"""The ``mock_process_group`` backend: rank and world-size queries only, always torn down."""

from __future__ import annotations

import unittest

import pytest
import torch
import torch.distributed as dist

import fakedist
from fakedist import mock


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


def test_mock_process_group_keywords_as_torch() -> None:
    pg = mock.MockProcessGroup(rank=1, world=4)
    assert (pg.rank(), pg.size(), pg.getBackendName()) == (1, 4, "mock_process_group")


def test_mock_init_dist_then_destroy() -> None:
    mock.mock_init_dist(rank=2, world_size=3)
    try:
        assert (dist.get_rank(), dist.get_world_size()) == (2, 3)
        assert dist.get_backend() == "mock_process_group"
        with pytest.raises(RuntimeError) as raised:
            mock.mock_init_dist(rank=0, world_size=3)
        assert str(raised.value) == (
            "mock_init_dist: a default process group is already initialised "
            "(backend 'mock_process_group'); destroy it first"
        )
    finally:
        dist.destroy_process_group()


def test_mock_init_dist_bad_rank() -> None:
    with pytest.raises(ValueError, match=r"^rank 3 is outside \[0, 3\) for world_size=3$"):
        mock.mock_init_dist(rank=3, world_size=3)
    assert not dist.is_initialized()


def test_fake_store_initialises_the_fake_backend() -> None:
    fakedist.register_backends()
    dist.init_process_group("fake", store=mock.FakeStore(), rank=1, world_size=4)
    try:
        assert (dist.get_rank(), dist.get_world_size(), dist.get_backend()) == (1, 4, "fake")
        t = torch.ones(2)
        dist.all_reduce(t)
        assert t.shape == (2,)
    finally:
        dist.destroy_process_group()


def _store_less_fake_init() -> bool:
    """Can ``init_process_group("fake")`` start without a store on this torch? torch 2.4
    rendezvouses through ``env://`` first ("environment variable MASTER_ADDR expected");
    2.13 does not."""
    fakedist.register_backends()
    try:
        dist.init_process_group("fake", rank=0, world_size=1)
    except ValueError:
        return False
    dist.destroy_process_group()
    return True


def test_store_less_fake_init() -> None:
    if not _store_less_fake_init():
        pytest.skip(
            "this torch's init_process_group needs a store (or env://) for 'fake' "
            "(store-less init arrived in torch 2.9)"
        )
    dist.init_process_group("fake", rank=3, world_size=8)
    try:
        assert (dist.get_rank(), dist.get_world_size(), dist.get_backend()) == (3, 8, "fake")
    finally:
        dist.destroy_process_group()
