"""Errors: torch's ``error_on_collective`` option, bad arguments to fakedist, and teardown
of the process group when the body raises."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist

import fakedist
from fakedist.backends.fake import ERROR_MESSAGE, features

NEEDS_ERROR_ON_COLLECTIVE = pytest.mark.skipif(
    not features().error_on_collective,
    reason="needs FakeProcessGroup.Options.error_on_collective (torch >= 2.10)",
)

COLLECTIVES = {
    "all_reduce": lambda: dist.all_reduce(torch.ones(3, 3)),
    "all_gather": lambda: dist.all_gather([torch.empty(3, 3) for _ in range(2)], torch.ones(3, 3)),
    "broadcast": lambda: dist.broadcast(torch.ones(3, 3), src=0),
    "barrier": lambda: dist.barrier(),
}


@NEEDS_ERROR_ON_COLLECTIVE
@pytest.mark.parametrize("op", list(COLLECTIVES))
@pytest.mark.fake_world(world_size=2, rank=0, error_on_collective=True)
def test_error_on_collective(fake_world, op: str) -> None:
    assert fake_world.options == {"error_on_collective": True}
    with pytest.raises(RuntimeError) as info:
        COLLECTIVES[op]()
    assert str(info.value).startswith(ERROR_MESSAGE)


@pytest.mark.parametrize("op", list(COLLECTIVES))
@pytest.mark.fake_world(world_size=2, rank=0, faults=[{"op": "*", "every": True}])
def test_every_collective_fails_on_every_torch(fake_world, op: str) -> None:
    """The same failure through a fault schedule: torch's own error_on_collective where it
    exists (2.10+), fakedist's hooks before that, with the message torch's backend raises."""
    with pytest.raises(RuntimeError) as info:
        COLLECTIVES[op]()
    assert str(info.value).startswith(ERROR_MESSAGE)
    assert fake_world.faults.native_every() is True
    assert [r.fault for r in fake_world.comms] == ["fake"]


@NEEDS_ERROR_ON_COLLECTIVE
@pytest.mark.fake_world(world_size=2, rank=0, error_on_collective=False)
def test_error_on_collective_false_runs_collectives(fake_world) -> None:
    t = torch.ones(3, 3)
    dist.all_reduce(t)
    assert t.shape == (3, 3)


def test_error_on_collective_is_rejected_where_torch_lacks_it() -> None:
    if features().error_on_collective:
        with fakedist.fake_world(2, error_on_collective=True) as world:
            assert world.options["error_on_collective"] is True
    else:
        with (
            pytest.raises(ValueError, match="error_on_collective"),
            fakedist.fake_world(2, error_on_collective=True),
        ):
            pass  # pragma: no cover
    assert not dist.is_initialized()


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"world_size": 0}, ("world_size", "0")),
        ({"world_size": -1}, ("world_size", "-1")),
        ({"world_size": "2"}, ("world_size", "'2'")),
        ({"world_size": True}, ("world_size", "True")),
        ({"world_size": 2.0}, ("world_size", "2.0")),
        ({"world_size": 4, "rank": 4}, ("rank", "4")),
        ({"world_size": 4, "rank": -1}, ("rank", "-1")),
        ({"world_size": 2, "rank": "0"}, ("rank", "'0'")),
        ({"world_size": 2, "backend": "gloo-ish"}, ("backend", "'gloo-ish'")),
        ({"world_size": 2, "backend": "fake", "no_such_option": 1}, ("'no_such_option'",)),
        ({"world_size": 2, "backend": "pypg", "no_such_option": 1}, ("'no_such_option'",)),
        ({"world_size": 2, "backend": "mock_process_group", "work": "future"}, ("'work'",)),
        ({"world_size": 2, "backend": "pypg", "work": "threads"}, ("'threads'",)),
    ],
    ids=lambda v: repr(v) if not isinstance(v, dict) else "-".join(f"{k}={v[k]!r}" for k in v),
)
def test_bad_arguments_raise_value_error_naming_the_value(
    kwargs: dict[str, Any], named: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError) as info, fakedist.fake_world(**kwargs):
        pass  # pragma: no cover
    for word in named:
        assert word in str(info.value)
    assert not dist.is_initialized()


def test_decorator_checks_arguments_when_decorating() -> None:
    with pytest.raises(ValueError, match="rank 2"):

        @fakedist.with_fake_comms(world_size=2, rank=2)
        def never_called() -> None:  # pragma: no cover
            pass


@pytest.mark.parametrize("backend", ["fake", "pypg", "mock_process_group"])
def test_group_destroyed_when_body_raises(backend: str) -> None:
    seen: list[bool] = []

    def body() -> None:
        with fakedist.fake_world(4, rank=1, backend=backend):
            seen.append(dist.is_initialized())
            raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        body()
    assert seen == [True]
    assert not dist.is_initialized()
    assert fakedist.current_world() is None


def test_decorated_function_destroys_group_when_it_raises() -> None:
    @fakedist.with_fake_comms(world_size=3, rank=2)
    def body() -> None:
        assert dist.get_world_size() == 3
        raise ZeroDivisionError("inside")

    with pytest.raises(ZeroDivisionError, match="inside"):
        body()
    assert not dist.is_initialized()


def test_subgroups_destroyed_with_the_world() -> None:
    with fakedist.fake_world(4, rank=1):
        sub = dist.new_group([0, 1])
        assert dist.get_world_size(sub) == 2
    assert not dist.is_initialized()
    with fakedist.fake_world(2, rank=0):  # a fresh world starts with only its default group
        assert dist.get_world_size() == 2
        assert dist.get_process_group_ranks(dist.group.WORLD) == [0, 1]


@pytest.mark.fake_world(world_size=2)
def test_nested_world_refused(fake_world) -> None:
    with pytest.raises(RuntimeError, match="already initialised"), fakedist.fake_world(2):
        pass  # pragma: no cover
    assert dist.get_world_size() == 2  # the outer world survives
