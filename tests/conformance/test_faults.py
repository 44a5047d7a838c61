"""Fault schedules: which call fails, with which error, from the API, the marker and the env."""

from __future__ import annotations

import time
from typing import Any

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from fakedist import fake_world  # noqa: E402
from fakedist.backends import fake  # noqa: E402
from fakedist.faults import (  # noqa: E402
    ENV_VAR,
    FAKE_MESSAGE,
    CollectiveTimeout,
    FaultSchedule,
    faults_from_env,
)

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def _ag() -> None:
    dist.all_gather([torch.empty(2) for _ in range(dist.get_world_size())], torch.ones(2))


def _outcomes(n: int, call: Any) -> list[str]:
    out = []
    for _ in range(n):
        try:
            call()
            out.append("ok")
        except RuntimeError as exc:
            out.append(type(exc).__name__)
    return out


def test_nth_call_of_an_op_fails_and_only_that_one() -> None:
    with fake_world(4, faults=[{"op": "all_gather", "nth": 2}]) as world:
        dist.all_reduce(torch.ones(1))  # other ops do not count
        assert _outcomes(4, _ag) == ["ok", "RuntimeError", "ok", "ok"]
        assert [r.fault for r in world.comms.filter("all_gather")] == [None, "fake", None, None]
        assert world.faults.faults[0].fired == 1


def test_every_call_of_an_op_fails() -> None:
    with fake_world(2, faults=[{"op": "allreduce", "every": True}]):
        assert _outcomes(3, lambda: dist.all_reduce(torch.ones(1))) == ["RuntimeError"] * 3
        dist.barrier()  # other ops unaffected


def test_calls_on_a_given_group_fail() -> None:
    with fake_world(4, rank=1, faults=[{"op": "*", "group": [0, 1]}]) as world:
        sub = dist.new_group([0, 1])
        other = dist.new_group([1, 2])
        dist.all_reduce(torch.ones(1), group=other)
        dist.all_reduce(torch.ones(1))
        with pytest.raises(RuntimeError, match="all_reduce on group"):
            dist.all_reduce(torch.ones(1), group=sub)
        dist.all_reduce(torch.ones(1), group=sub)  # nth defaults to 1: once
        assert [r.fault for r in world.comms] == [None, None, "fake", None]


def test_first_call_after_a_step_count_fails() -> None:
    with fake_world(2, faults=[{"op": "all_reduce", "after_step": 2}]) as world:
        outcomes = []
        for _ in range(4):
            outcomes += _outcomes(2, lambda: dist.all_reduce(torch.ones(1)))
            world.step()
        assert outcomes == ["ok"] * 4 + ["RuntimeError"] + ["ok"] * 3
        assert [r.step for r in world.comms if r.fault] == [2]


def test_fake_error_is_the_runtime_error_torch_raises() -> None:
    with fake_world(2, faults=[{"op": "broadcast"}]), pytest.raises(RuntimeError) as info:
        dist.broadcast(torch.ones(1), src=0)
    assert type(info.value) is RuntimeError
    assert str(info.value).startswith(FAKE_MESSAGE)
    assert "broadcast on group" in str(info.value)


def test_backend_error_is_dist_backend_error() -> None:
    cls = getattr(dist, "DistBackendError", RuntimeError)  # torch 2.1 added it
    with fake_world(2, faults=[{"op": "barrier", "error": "backend"}]) as world:
        name = world.group_name
        with pytest.raises(cls) as info:
            dist.barrier()
    assert type(info.value) is cls
    assert str(info.value) == (
        f"injected backend error by fakedist: barrier on group {name!r} (call #1 of this rank)"
    )


def test_timeout_is_a_dist_error_and_a_timeout_error_naming_the_op() -> None:
    with (
        fake_world(2, faults=[{"op": "all_gather", "error": "timeout"}]),
        pytest.raises(CollectiveTimeout) as info,
    ):
        _ag()
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, getattr(dist, "DistError", RuntimeError))
    assert str(info.value).startswith("all_gather timed out")


def test_delay_slows_the_call_without_failing_it() -> None:
    with fake_world(2, faults=[{"op": "all_reduce", "error": "none", "delay": 0.2}]) as world:
        start = time.perf_counter()
        dist.all_reduce(torch.ones(1))
        assert time.perf_counter() - start >= 0.2
        start = time.perf_counter()
        dist.all_reduce(torch.ones(1))
        assert time.perf_counter() - start < 0.2
        assert [r.fault for r in world.comms] == [None, None]


def test_delay_ends_at_the_timeout_with_a_collective_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKEDIST_TIMEOUT", "0.5")
    with fake_world(2, faults=[{"op": "all_reduce", "error": "none", "delay": 30}]) as world:
        start = time.monotonic()
        with pytest.raises(CollectiveTimeout) as info:
            dist.all_reduce(torch.ones(1))
        assert time.monotonic() - start < 5  # cut at 0.5 s from the world's start, not 30 s
        assert str(info.value).startswith(
            "all_reduce timed out: its 30 s delay ran past the 0.5 s timeout (injected by fakedist"
        )
        assert [r.fault for r in world.comms] == ["timeout"]


def test_marker_timeout_ends_delays_at_fake_fidelity(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, torch, torch.distributed as dist

        @pytest.mark.fake_world(2, timeout=0.5, faults=[{"op": "barrier", "error": "none",
                                                         "delay": 30}])
        def test_slow(fake_world):
            dist.barrier()
        """
    )
    start = time.monotonic()
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    assert time.monotonic() - start < 20
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["E   *CollectiveTimeout: barrier timed out: its 30 s delay ran past the 0.5 s timeout*"]
    )


def test_functional_collectives_fail_too() -> None:
    import torch.distributed._functional_collectives as funcol

    with (
        fake_world(2, faults=[{"op": "all_reduce"}]),
        pytest.raises(RuntimeError, match=FAKE_MESSAGE),
    ):
        funcol.all_reduce(torch.ones(2), "sum", dist.group.WORLD)


def test_every_collective_uses_torch_error_on_collective_where_it_fits() -> None:
    with fake_world(2, faults=[{"op": "*", "every": True}]) as world:
        with pytest.raises(RuntimeError, match=FAKE_MESSAGE) as info:
            dist.all_reduce(torch.ones(1))
        with pytest.raises(RuntimeError, match=FAKE_MESSAGE):
            dist.barrier()
        native = fake.features().error_on_collective  # torch 2.10+
        assert ("injected by fakedist" in str(info.value)) is not native
        assert [r.fault for r in world.comms] == ["fake", "fake"]


@pytest.mark.fake_world(world_size=4, faults=[{"op": "all_gather", "nth": 2}])
def test_marker_sets_the_schedule_and_a_retry_loop_recovers(fake_world: Any) -> None:
    def gather_with_retry(tries: int = 3) -> list[Any]:
        for attempt in range(1, tries + 1):
            out = [torch.empty(2) for _ in range(4)]
            try:
                dist.all_gather(out, torch.full((2,), float(attempt)))
                return out
            except RuntimeError as exc:
                if FAKE_MESSAGE not in str(exc) or attempt == tries:
                    raise
        raise AssertionError("unreachable")

    assert len(gather_with_retry()) == 4  # the first all_gather succeeds
    result = gather_with_retry()  # the second fails once; the retry (3rd call) succeeds
    assert fake_world.comms.ops() == ["all_gather"] * 3
    assert [r.fault for r in fake_world.comms] == [None, "fake", None]
    assert len(result) == 4


def test_environment_variable_adds_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, '[{"op": "barrier", "error": "timeout"}]')
    with fake_world(2) as world, pytest.raises(CollectiveTimeout, match="barrier timed out"):
        dist.barrier()
    assert world.faults.faults[0].as_dict() == {"op": "barrier", "nth": 1, "error": "timeout"}
    assert faults_from_env({ENV_VAR: '{"op": "send"}'}) == [{"op": "send"}]
    assert faults_from_env({}) == []


def test_bad_env_json_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "[{op: 1")
    with pytest.raises(ValueError, match=f"{ENV_VAR} is not valid JSON"), fake_world(2):
        pass
    assert not dist.is_initialized()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"op": "all_gahter"}, "unknown collective op 'all_gahter'"),
        ({"op": "all_gather", "when": 1}, "unknown key 'when'"),
        ({"op": "all_gather", "nth": 0}, "nth must be an int >= 1, got 0"),
        ({"op": "all_gather", "nth": True}, "nth must be an int >= 1, got True"),
        ({"nth": 1}, "'op' is required"),
        ({"op": "all_gather", "every": False}, "every=false without nth can never fire"),
        ({"op": "all_gather", "every": True, "nth": 2}, "give nth or every=true, not both"),
        ({"op": "all_gather", "group": [0, 9]}, "group rank 9 is outside \\[0, 4\\)"),
        ({"op": "all_gather", "group": [1, 1]}, "group \\[1, 1\\] repeats a rank"),
        ({"op": "all_gather", "error": "oom"}, "unknown error 'oom'"),
        ({"op": "all_gather", "error": "none"}, "error='none' without a delay does nothing"),
        ({"op": "all_gather", "delay": -1}, "delay must be seconds from 0 to 86400 .*, got -1"),
        ({"op": "all_gather", "delay": float("nan")}, "delay must be seconds .*, got nan$"),
        ({"op": "all_gather", "delay": float("inf")}, "delay must be seconds .*, got inf$"),
        ({"op": "all_gather", "delay": 1e9}, "delay must be seconds .*, got 1000000000.0$"),
        ({"op": "all_gather", "after_step": -1}, "after_step must be an int >= 0, got -1"),
        ("all_gather", "fault spec must be a dict, got 'all_gather'"),
    ],
)
def test_bad_specs_raise_naming_the_value(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message), fake_world(4, faults=[spec]):
        pass
    assert not dist.is_initialized()


def test_a_schedule_must_be_a_list() -> None:
    with pytest.raises(ValueError, match="faults must be a list of specs"):
        FaultSchedule({"op": "all_gather"})  # type: ignore[arg-type]
