"""fake_world / with_fake_comms: arguments, teardown, decorator forms."""

from __future__ import annotations

import unittest

import pytest

dist = pytest.importorskip("torch.distributed")
import torch  # noqa: E402

import fakedist  # noqa: E402
from fakedist.backends import fake, register_backends  # noqa: E402


def test_register_backends_is_idempotent() -> None:
    first = register_backends()
    second = register_backends()
    assert first == second == ("fake", "mock_process_group", "pypg")
    for name in first:
        assert name in dist.Backend.backend_list


def test_world_fields_and_teardown() -> None:
    with fakedist.fake_world(16, rank=5) as world:
        assert (world.world_size, world.rank, world.backend) == (16, 5, "fake")
        assert fakedist.current_world() is world
        assert world.group is dist.group.WORLD
        assert type(world.pg).__name__ == "FakeProcessGroup"
    assert not dist.is_initialized()
    assert fakedist.current_world() is None


def _body_that_raises() -> None:
    with fakedist.fake_world(4):
        dist.new_group([0, 1])
        raise KeyError("inside")


def test_teardown_when_body_raises() -> None:
    with pytest.raises(KeyError, match="inside"):
        _body_that_raises()
    assert not dist.is_initialized()


def test_nested_world_is_refused_and_outer_survives() -> None:
    with fakedist.fake_world(2):
        with pytest.raises(RuntimeError, match="already initialised"), fakedist.fake_world(2):
            pass
        assert dist.is_initialized()
        assert dist.get_world_size() == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"world_size": 0}, "world_size must be >= 1, got 0"),
        ({"world_size": -3}, "world_size must be >= 1, got -3"),
        ({"world_size": 2.0}, "world_size must be an int >= 1, got 2.0"),
        ({"world_size": True}, "world_size must be an int >= 1, got True"),
        ({"world_size": 2, "rank": 2}, r"rank 2 is outside \[0, 2\) for world_size=2"),
        ({"world_size": 2, "rank": -1}, r"rank -1 is outside \[0, 2\)"),
        ({"world_size": 2, "rank": "0"}, r"rank must be an int in \[0, 2\), got '0'"),
        ({"world_size": 2, "backend": "gloo"}, "unknown backend 'gloo'"),
        ({"world_size": 2, "no_such_option": 1}, "fake backend: unknown option 'no_such_option'"),
    ],
)
def test_bad_arguments_raise_before_init(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message), fakedist.fake_world(**kwargs):  # type: ignore[arg-type]
        pass
    assert not dist.is_initialized()


@pytest.mark.skipif(
    not fake.features().error_on_collective,
    reason="needs FakeProcessGroup.Options.error_on_collective (torch >= 2.10)",
)
def test_error_on_collective_option() -> None:
    with (
        fakedist.fake_world(2, error_on_collective=True),
        pytest.raises(RuntimeError, match=fake.ERROR_MESSAGE),
    ):
        dist.all_reduce(torch.ones(1))


def test_decorator_on_function_returns_value() -> None:
    @fakedist.with_fake_comms(world_size=4, rank=3)
    def body(x: int) -> tuple[int, int, int]:
        return dist.get_rank(), dist.get_world_size(), x

    assert body(7) == (3, 4, 7)
    assert not dist.is_initialized()


def test_decorator_checks_arguments_when_decorating() -> None:
    with pytest.raises(ValueError, match=r"rank 5 is outside \[0, 2\)"):
        fakedist.with_fake_comms(world_size=2, rank=5)


def test_decorator_bare_form_uses_defaults() -> None:
    @fakedist.with_fake_comms
    def body() -> tuple[int, int]:
        return dist.get_rank(), dist.get_world_size()

    assert body() == (0, 2)


class DecoratedCase(unittest.TestCase):
    @fakedist.with_fake_comms(world_size=2, rank=1, backend="pypg")
    def test_method(self) -> None:
        t = torch.ones(3)
        dist.all_reduce(t)
        self.assertEqual(t.tolist(), [2.0, 2.0, 2.0])
        self.assertEqual(dist.get_rank(), 1)


def test_unittest_method_runs_and_tears_down() -> None:
    result = unittest.TestResult()
    DecoratedCase("test_method").run(result)
    assert result.wasSuccessful(), result.failures + result.errors
    assert result.testsRun == 1
    assert not dist.is_initialized()
