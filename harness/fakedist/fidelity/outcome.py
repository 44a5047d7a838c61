"""What each rank did, and the one exception (or result list) that sums it up."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakedist.fidelity.plan import Plan

# rank status, in the order a summary lists them
FIRST = ("failed", "died", "hung", "unsupported", "skipped")
AFTER = ("stopped", "passed")


class RankFailure(AssertionError):
    """A rank failed, hung or died; the message names it (first line) with its traceback."""

    def __init__(self, message: str, outcomes: list[RankOutcome], rank: int) -> None:
        super().__init__(message)
        self.outcomes = outcomes
        self.rank = rank  # the rank that failed, died or hung first


class FidelitySetupError(Exception):
    """The ranks could not start (a group already initialised, a body gloo cannot send)."""


class FidelityUnsupported(Exception):
    """The body needs something the fidelity lacks; the test is skipped with this reason."""


@dataclass
class RankOutcome:
    """One rank's end: status, a one-line summary, the traceback, where it hung."""

    rank: int
    status: str = "running"  # passed failed skipped unsupported stopped hung died
    summary: str = ""  # "AssertionError: ..." / "killed by SIGKILL" / "all_reduce (t.py:3)"
    detail: str = ""  # traceback text
    value: Any = None  # the body's return value
    order: float = 0.0  # when it ended (monotonic), to tell the first failure

    def end(self, status: str, summary: str = "", detail: str = "", at: float = 0.0) -> None:
        self.status, self.summary, self.detail, self.order = status, summary, detail, at


def describe_exception(exc: BaseException) -> tuple[str, str, str]:
    """(status, one-line summary, traceback) for an exception a rank's body raised."""
    import pytest

    if isinstance(exc, FidelityUnsupported):
        return "unsupported", str(exc), ""
    if isinstance(exc, pytest.skip.Exception):
        return "skipped", str(exc.msg), ""
    if isinstance(exc, SystemExit) and "termination" in str(exc.code):
        return "stopped", "stopped by the threaded group after another rank failed", ""
    summary = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    exc = _from_user_code(exc)
    try:  # pytest's short traceback (assertion introspection included)
        from _pytest._code import ExceptionInfo

        info = ExceptionInfo.from_exception(exc)
        detail = str(info.getrepr(style="short", chain=True))
    except Exception:  # any failure here falls back to the plain traceback
        import traceback

        detail = "".join(traceback.format_exception(exc))
    return "failed", summary, detail


def _from_user_code(exc: BaseException) -> BaseException:
    """``exc`` with the runner's own frames (fakedist calling the body) cut off the top."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the fakedist package
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(here + os.sep):
            break
        tb = tb.tb_next
    return exc.with_traceback(tb)


def signal_name(code: int) -> str:
    """``SIGKILL`` for a process exit code of -9, ``exit code 3`` otherwise."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def conclude(plan: Plan, outcomes: list[RankOutcome]) -> list[Any]:
    """The ranks' return values when all passed; else raise for the first failure."""
    bad = [o for o in outcomes if o.status in FIRST[:3]]
    if bad:
        first = _first(bad)
        raise RankFailure(_failure_message(plan, outcomes, first), outcomes, first.rank)
    odd = [o for o in outcomes if o.status in ("unsupported", "skipped")]
    if odd:
        first = min(odd, key=lambda o: (o.status != "unsupported", o.rank))
        where = f"rank {first.rank}: " if len(odd) < len(outcomes) else ""
        prefix = f"{plan.fidelity} fidelity: " if first.status == "unsupported" else ""
        raise FidelityUnsupported(f"{prefix}{where}{first.summary}")
    stray = [o for o in outcomes if o.status != "passed"]
    if stray:  # a rank stopped although none failed: cannot happen, but never pass it
        first = _first(stray)
        raise RankFailure(_failure_message(plan, outcomes, first), outcomes, first.rank)
    return [o.value for o in outcomes]


def _first(bad: list[RankOutcome]) -> RankOutcome:
    """The rank to blame: the first to fail or die; a hung one only when none did."""
    return min(bad, key=lambda o: (o.status == "hung", o.order))


def _failure_message(plan: Plan, outcomes: list[RankOutcome], first: RankOutcome) -> str:
    n = plan.world_size
    if first.status == "hung":
        hung = [o for o in outcomes if o.status == "hung"]
        ranks = ", ".join(str(o.rank) for o in hung)
        head = (
            f"{plan.name}: rank{'s' if len(hung) > 1 else ''} {ranks} of {n} ({plan.fidelity}) "
            f"hung: still running after the {plan.timeout:g} s timeout"
        )
    else:
        head = f"{plan.name}: rank {first.rank} of {n} ({plan.fidelity}) {first.status}"
        head += f": {first.summary}" if first.summary else ""
    lines = [head]
    for o in outcomes:
        if o.status == "passed":
            lines.append(f"  rank {o.rank}: passed")
        elif o.status == "hung":
            lines.append(f"  rank {o.rank}: hung {o.summary}")
        else:
            lines.append(f"  rank {o.rank}: {o.status}" + (f": {o.summary}" if o.summary else ""))
    if first.detail:
        lines += ["", f"rank {first.rank} traceback:", first.detail.rstrip()]
    return "\n".join(lines)
