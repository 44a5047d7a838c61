"""Fidelities: how a test body runs across the ranks of a world.

``fake``      one rank, simulated in this process over a fake backend: any world size,
              shapes and the CommLog are real, collective results are not (the default).
``threaded``  every rank runs the body in its own thread over PyTorch's threaded process
              group: real collective results, one process.
``gloo``      every rank runs the body in its own forked process over gloo on loopback:
              real results from a real backend.

``local`` (LocalTensorMode) is not offered; docs/fidelity.md says why. :func:`run_world` is
the API; the pytest plugin calls it for ``@pytest.mark.fake_world(fidelity=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fakedist.fidelity.bodies import TestCall
from fakedist.fidelity.outcome import (
    FidelitySetupError,
    FidelityUnsupported,
    RankFailure,
    RankOutcome,
    conclude,
)
from fakedist.fidelity.plan import Plan
from fakedist.timeouts import (
    DEFAULT_TIMEOUT,
    MAX_SECONDS,
    env_timeout,
    parse_timeout,
)

FIDELITIES = ("fake", "threaded", "gloo")
RANK_FIDELITIES = ("threaded", "gloo")  # every rank runs the body
NOT_OFFERED = {
    "local": "LocalTensorMode runs one body for all ranks, not one body per rank "
    "(see docs/fidelity.md); use it inside a fake world instead",
}

__all__ = [
    "DEFAULT_TIMEOUT",
    "FIDELITIES",
    "MAX_SECONDS",
    "FidelitySetupError",
    "FidelityUnsupported",
    "Plan",
    "RankFailure",
    "RankOutcome",
    "TestCall",
    "make_plan",
    "parse_fidelity",
    "parse_timeout",
    "run_plan",
    "run_world",
]


def parse_fidelities(value: Any) -> list[str]:
    """The fidelities a marker asks for: one name, a list of names, or ``"all"``."""
    if value == "all":
        return list(FIDELITIES)
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("fidelity list is empty")
        names = [parse_fidelity(v) for v in value]
        if len(set(names)) != len(names):
            raise ValueError(f"fidelity list {list(value)!r} repeats a fidelity")
        return names
    return [parse_fidelity(value)]


def parse_fidelity(value: Any) -> str:
    """A fidelity name, or ValueError naming the bad value."""
    if value in NOT_OFFERED:
        raise ValueError(f"fidelity {value!r} is not offered: {NOT_OFFERED[value]}")
    if value not in FIDELITIES:
        raise ValueError(f"unknown fidelity {value!r}; fidelities: {', '.join(FIDELITIES)}")
    return str(value)


def run_world(
    body: Callable[[Any], Any],
    world_size: int,
    *,
    fidelity: str = "threaded",
    faults: Sequence[dict[str, Any]] | None = None,
    record: bool = True,
    timeout: float | None = None,
    name: str | None = None,
) -> list[Any]:
    """Run ``body(world)`` on every rank at ``fidelity``; return each rank's result.

    Raises :class:`RankFailure` (naming the rank, its traceback and, for a hung rank, the
    collective it waits in) when a rank fails, hangs past ``timeout`` or dies, and
    :class:`FidelityUnsupported` when the body needs what the fidelity lacks. Every thread,
    process and process group started here is gone when this returns.
    """
    fidelity = parse_fidelity(fidelity)
    if fidelity not in RANK_FIDELITIES:
        raise ValueError(f"run_world runs every rank: fidelity must be one of {RANK_FIDELITIES}")
    seconds = parse_timeout(timeout, "timeout") if timeout is not None else None
    name = name or str(getattr(body, "__name__", "body"))
    return run_plan(make_plan(fidelity, world_size, faults, record, seconds, name), body)


def make_plan(
    fidelity: str,
    world_size: Any,
    faults: Sequence[dict[str, Any]] | None,
    record: Any,
    timeout: float | None,
    name: str,
) -> Plan:
    """A validated plan (ValueError naming the bad value): ``FAKEDIST_FAULTS`` added to
    ``faults``, ``timeout`` (None: ``FAKEDIST_TIMEOUT``, else 60 s)."""
    from fakedist.faults import FaultSchedule, faults_from_env
    from fakedist.world import validate

    validate(world_size, 0, "fake")
    specs = (*(faults or ()), *faults_from_env())
    FaultSchedule(specs, world_size)  # bad specs fail here, before any rank starts
    if not isinstance(record, bool):
        raise ValueError(f"record must be True or False, got {record!r}")
    seconds = timeout or env_timeout() or DEFAULT_TIMEOUT
    return Plan(fidelity, world_size, specs, record, seconds, name=name)


def run_plan(plan: Plan, body: Callable[[Any], Any]) -> list[Any]:
    """Run a validated plan (see :func:`run_world`)."""
    if plan.fidelity == "threaded":
        from fakedist.fidelity import threaded

        outcomes = threaded.run(plan, body)
    else:
        from fakedist.fidelity import gloo

        outcomes = gloo.run(plan, body)
    return conclude(plan, outcomes)
