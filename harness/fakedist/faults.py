"""Fault schedules: make chosen collectives fail (or stall), deterministically, on every torch.

A schedule is a list of specs (dicts, from ``fake_world(faults=[...])``, the ``fake_world``
marker or the ``FAKEDIST_FAULTS`` environment variable as JSON). Keys:

``op``          canonical op or alias (any name in :data:`fakedist.ops.OPS`), or ``"*"``: any op
``nth``         fail the nth matching call only (1-based; default 1 unless ``every``)
``every``       fail every matching call
``group``       only calls on this group: global ranks (list) or a group name
``after_step``  only calls made once ``world.step()`` has been called this many times
``rank``        only on this global rank (int) or these ranks (list); at ``threaded``/``gloo``
                fidelity every rank has its own schedule, so this picks the failing rank
``error``       ``"fake"`` (RuntimeError as torch's fake backend raises), ``"backend"``
                (``DistBackendError``), ``"timeout"`` (:class:`CollectiveTimeout`) or ``"none"``
``delay``       seconds to sleep before the call (alone, with ``error="none"``: a slow call);
                at most a day, and cut at the world's timeout: the call then fails with
                :class:`CollectiveTimeout`

Matching calls are counted per spec, so ``{"op": "all_gather", "nth": 2}`` fails exactly the
second all_gather. A schedule of one ``{"op": "*", "every": true}`` spec on the ``fake`` backend
uses torch's own ``error_on_collective`` where torch has it (2.10+); everything else goes
through fakedist's hooks (:mod:`fakedist._hooks`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fakedist import envvars
from fakedist.backends.fake import ERROR_MESSAGE
from fakedist.comms import normalise_op
from fakedist.timeouts import MAX_SECONDS

__all__ = [
    "ENV_VAR",
    "ERRORS",
    "FAKE_MESSAGE",
    "KEYS",
    "CollectiveTimeout",
    "Fault",
    "FaultSchedule",
    "faults_from_env",
    "make_error",
    "parse_fault",
    "spec_list",
]

ENV_VAR = envvars.FAULTS
KEYS = ("op", "nth", "every", "group", "after_step", "error", "delay", "rank")
ERRORS = ("fake", "backend", "timeout", "none")
FAKE_MESSAGE = ERROR_MESSAGE  # torch's fake backend's text
SLEEP_SLICE = 0.05  # seconds: a delay sleeps in slices, so a stopped rank thread ends soon


def _dist_error_base() -> type[Exception]:
    """``torch.distributed.DistError`` (torch 2.1+), else RuntimeError."""
    try:
        import torch.distributed as dist

        base: type[Exception] = getattr(dist, "DistError", RuntimeError)
        return base
    except ImportError:  # pragma: no cover - torch is always there when faults fire
        return RuntimeError


class CollectiveTimeout(_dist_error_base(), TimeoutError):  # type: ignore[misc]
    """An injected timeout: a ``DistError`` (where torch has it) and a ``TimeoutError``."""


def _backend_error_class() -> type[Exception]:
    import torch.distributed as dist

    # DistBackendError appeared in torch 2.1 (older releases raised plain RuntimeError).
    cls: type[Exception] = getattr(dist, "DistBackendError", RuntimeError)
    return cls


@dataclass
class Fault:
    """One validated spec and its per-spec call counter."""

    op: str  # canonical op, or "*"
    nth: int | None
    every: bool
    group: tuple[int, ...] | str | None
    after_step: int
    error: str
    delay: float
    ranks: tuple[int, ...] | None = None  # only on these global ranks
    seen: int = 0  # matching calls so far
    fired: int = 0  # times this fault fired

    def matches(self, op: str, group_name: str, ranks: tuple[int, ...], step: int) -> bool:
        if self.op != "*" and self.op != op:
            return False
        if self.group is not None and self.group != ranks and self.group != group_name:
            return False
        return step >= self.after_step

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op}
        if self.every:
            out["every"] = True
        else:
            out["nth"] = self.nth
        if self.group is not None:
            out["group"] = list(self.group) if isinstance(self.group, tuple) else self.group
        if self.after_step:
            out["after_step"] = self.after_step
        out["error"] = self.error
        if self.delay:
            out["delay"] = self.delay
        if self.ranks is not None:
            out["rank"] = list(self.ranks)
        return out


def _int(spec: dict[str, Any], key: str, minimum: int) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"fault spec {spec!r}: {key} must be an int >= {minimum}, got {value!r}")
    return value


def parse_fault(spec: Any, world_size: int | None = None) -> Fault:
    """Validate one spec; ValueError names the bad key or value."""
    if not isinstance(spec, dict):
        raise ValueError(f"fault spec must be a dict, got {spec!r}")
    unknown = [k for k in spec if k not in KEYS]
    if unknown:
        raise ValueError(
            f"fault spec {spec!r}: unknown key {unknown[0]!r}; keys: {', '.join(KEYS)}"
        )
    if "op" not in spec:
        raise ValueError(f"fault spec {spec!r}: 'op' is required")
    op = spec["op"]
    if not isinstance(op, str):
        raise ValueError(f"fault spec {spec!r}: op must be a string, got {op!r}")
    op = "*" if op == "*" else normalise_op(op)
    nth = _int(spec, "nth", 1)
    after_step = _int(spec, "after_step", 0) or 0
    every = spec.get("every", False)
    if not isinstance(every, bool):
        raise ValueError(f"fault spec {spec!r}: every must be true or false, got {every!r}")
    if every and nth is not None:
        raise ValueError(f"fault spec {spec!r}: give nth or every=true, not both")
    if "every" in spec and not every and nth is None:
        raise ValueError(f"fault spec {spec!r}: every=false without nth can never fire")
    error = spec.get("error", "fake")
    if error not in ERRORS:
        raise ValueError(
            f"fault spec {spec!r}: unknown error {error!r}; errors: {', '.join(ERRORS)}"
        )
    delay = spec.get("delay", 0)
    if (
        isinstance(delay, bool)
        or not isinstance(delay, (int, float))
        or not 0 <= delay <= MAX_SECONDS  # False for NaN too
    ):
        raise ValueError(
            f"fault spec {spec!r}: delay must be seconds from 0 to {MAX_SECONDS:g} (a day), "
            f"got {delay!r}"
        )
    if error == "none" and not delay:
        raise ValueError(f"fault spec {spec!r}: error='none' without a delay does nothing")
    group = _parse_group(spec, world_size)
    ranks = _parse_ranks(spec, world_size)
    nth = None if every else (nth or 1)
    return Fault(op, nth, every, group, after_step, error, float(delay), ranks)


def _parse_ranks(spec: dict[str, Any], world_size: int | None) -> tuple[int, ...] | None:
    value = spec.get("rank")
    if value is None:
        return None
    ranks = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not _is_rank_list(ranks):
        raise ValueError(f"fault spec {spec!r}: rank must be a rank or a list of ranks")
    _check_in_world(spec, "rank", ranks, world_size)
    return tuple(ranks)


def _is_rank_list(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(r, int) and not isinstance(r, bool) for r in value)
    )


def _check_in_world(spec: dict[str, Any], what: str, ranks: Any, world_size: int | None) -> None:
    """ValueError for the first rank outside the world: such a spec could never fire."""
    bad = [r for r in ranks if world_size is not None and not 0 <= r < world_size]
    if bad:
        raise ValueError(
            f"fault spec {spec!r}: {what} {bad[0]} is outside [0, {world_size}), "
            "so it can never fire"
        )


def _parse_group(spec: dict[str, Any], world_size: int | None) -> tuple[int, ...] | str | None:
    group = spec.get("group")
    if group is None or isinstance(group, str):
        return group
    if not _is_rank_list(group):
        raise ValueError(
            f"fault spec {spec!r}: group must be a list of ranks or a name, got {group!r}"
        )
    ranks = tuple(group)
    if len(set(ranks)) != len(ranks):
        raise ValueError(f"fault spec {spec!r}: group {list(ranks)} repeats a rank")
    _check_in_world(spec, "group rank", ranks, world_size)
    return ranks


def faults_from_env(environ: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Specs from ``FAKEDIST_FAULTS`` (a JSON list, or one JSON object); [] when unset."""
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ENV_VAR} is not valid JSON ({exc}): {raw!r}") from None
    if not isinstance(data, (list, dict)):
        raise ValueError(
            f"{ENV_VAR} must be a JSON list of fault specs or one spec object, got {raw!r}"
        )
    specs = data if isinstance(data, list) else [data]
    return [dict(s) if isinstance(s, dict) else s for s in specs]


def spec_list(faults: Any) -> list[Any]:
    """``faults`` as a list of specs ([] for None); a lone spec or a string is a ValueError."""
    if faults is None:
        return []
    if isinstance(faults, dict):
        raise ValueError(
            f"faults must be a list of specs, got the dict {faults!r}; wrap it in a list:"
            f" [{faults!r}]"
        )
    if isinstance(faults, str):
        raise ValueError(f"faults must be a list of specs, got {faults!r}")
    return list(faults)


class _Overrun(str):
    """The error kind ``"timeout"`` for a delay cut at the timeout, with what to say about it."""

    note: str = ""


class FaultSchedule:
    """The faults of one world; consulted by the hooks before every collective.

    Delays end at the world's timeout, counted from when the schedule was made: ``timeout``
    seconds (None: ``FAKEDIST_TIMEOUT``, else 60) plus ``slack`` (the threaded and gloo
    runners give theirs, so that they, not the rank, report the rank as hung).
    """

    def __init__(
        self,
        specs: Sequence[Any] = (),
        world_size: int | None = None,
        rank: int = 0,
        *,
        timeout: float | None = None,
        slack: float = 0.0,
    ) -> None:
        parsed = [parse_fault(s, world_size) for s in spec_list(specs)]
        # Specs for other ranks are dropped here, so the hot path never looks at them.
        self.specs = parsed
        self.faults = [f for f in parsed if f.ranks is None or rank in f.ranks]
        self.step = 0
        self.started = time.monotonic()
        self.timeout = timeout
        self.slack = slack

    def limit(self, timeout: float) -> None:
        """Cut delays at ``timeout`` seconds from the start of the world."""
        self.timeout = timeout

    def __bool__(self) -> bool:
        return bool(self.faults)

    def __repr__(self) -> str:
        return f"FaultSchedule({[f.as_dict() for f in self.specs]!r})"

    def native_every(self) -> bool:
        """True when torch's ``error_on_collective`` expresses this schedule exactly."""
        if len(self.specs) != 1:
            return False
        f = self.specs[0]
        return (
            f.op == "*"
            and f.every
            and f.group is None
            and not f.after_step
            and f.error == "fake"
            and not f.delay
            and f.ranks is None
        )

    def check(self, op: str, group_name: str, ranks: tuple[int, ...]) -> str | None:
        """Count this call against every spec; sleep/raise as due. Returns the error kind fired."""
        for f in self.faults:
            if not f.matches(op, group_name, ranks, self.step):
                continue
            f.seen += 1
            if f.every or f.seen == f.nth:
                f.fired += 1
                if f.delay and not self._sleep(f.delay):
                    kind = _Overrun("timeout")
                    kind.note = f"its {f.delay:g} s delay ran past the {self.timeout:g} s timeout"
                    return kind
                if f.error != "none":
                    return f.error
        return None

    def _sleep(self, delay: float) -> bool:
        """Sleep ``delay`` seconds, in slices, up to the deadline; False when cut there."""
        if self.timeout is None:
            from fakedist.timeouts import DEFAULT_TIMEOUT, env_timeout

            self.timeout = env_timeout() or DEFAULT_TIMEOUT
        deadline = self.started + self.timeout + self.slack
        now = time.monotonic()
        end = min(now + delay, deadline)
        while now < end:
            time.sleep(min(SLEEP_SLICE, end - now))
            now = time.monotonic()
        return end < deadline


def make_error(kind: str, op: str, group_name: str, call: int) -> Exception:
    """The exception for an injected fault of ``kind`` on ``op``."""
    where = f"{op} on group {group_name!r} (call #{call} of this rank)"
    if kind == "fake":
        return RuntimeError(f"{FAKE_MESSAGE} (injected by fakedist: {where})")
    if kind == "backend":
        return _backend_error_class()(f"injected backend error by fakedist: {where}")
    note = getattr(kind, "note", "")
    if note:
        return CollectiveTimeout(f"{op} timed out: {note} (injected by fakedist: {where})")
    return CollectiveTimeout(f"{op} timed out (injected by fakedist: {where})")
