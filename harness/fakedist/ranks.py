"""Run one program as several ranks, each in its own fake world, and check that they agree.

A fake world simulates one rank, so running every rank's program costs one fake rank each,
one after another, in this process. :func:`check_ranks` does that for ``"all"`` ranks, a
``"sample"`` (first and last rank, then the first and last member of every group a sampled
rank used, until no new rank appears) or an explicit list, then compares the ranks' recorded
collectives with :func:`fakedist.consistency.compare`. The pytest form is the marker option
``@pytest.mark.fake_world(64, ranks="all")``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakedist.consistency import Divergence, compare, format_ranks
from fakedist.world import World, fake_world, validate

__all__ = ["RankError", "RankMismatch", "RankReport", "check_ranks", "parse_ranks"]

MAX_SAMPLE = 256  # ranks a "sample" may grow to (a 3-D mesh of any size needs about 16)
_OWN = (f"{Path(__file__).parent}",)  # fakedist's own frames, skipped in "where"


class RankMismatch(AssertionError):
    """The ranks disagree, or a rank raised: the message is the report."""


@dataclass(frozen=True)
class RankError:
    """A rank whose program raised: what, and where in the user's code."""

    rank: int
    error: str  # "ValueError: message", one line
    where: str | None


def _error_lines(errors: Sequence[RankError]) -> list[str]:
    """One line per distinct error: ranks that raised the same thing at the same place share
    it (``ranks 0-63 raised ...``), in the order of the first rank of each."""
    same: dict[tuple[str, str | None], list[int]] = {}
    for e in errors:
        same.setdefault((e.error, e.where), []).append(e.rank)
    lines = []
    for (error, where), ranks in same.items():
        who = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {format_ranks(ranks)}"
        lines.append(f"  {who} raised {error}" + (f"  at {where}" if where else ""))
    return lines


@dataclass
class RankReport:
    """What :func:`check_ranks` found: the ranks run, their logs, divergences and errors."""

    world_size: int
    ranks: tuple[int, ...]
    logs: dict[int, Any] = field(repr=False)  # rank -> its CommLog
    divergences: list[Divergence]
    errors: list[RankError]
    capped: bool = False  # a sample stopped at MAX_SAMPLE ranks

    @property
    def ok(self) -> bool:
        """True when every rank ran to the end and they agree."""
        return not self.divergences and not self.errors

    def render(self) -> str:
        """The report: a summary line, errors, then the first divergence in full."""
        checked = f"{len(self.ranks)} of {self.world_size} ranks"
        if self.ok:
            calls = sum(len(log) for log in self.logs.values())
            return f"{checked} agree ({calls} collective calls compared)"
        lines = [f"{checked} checked: {self._problems()}"]
        lines += _error_lines(self.errors)
        if self.divergences:
            lines.append(self.divergences[0].render())
            more = self.divergences[1:]
            lines += [f"  and: {_one_line(d)}" for d in more[:5]]
            if len(more) > 5:
                lines.append(f"  and {len(more) - 5} more")
        if self.capped:
            lines.append(f"  (the sample stopped at {MAX_SAMPLE} ranks)")
        return "\n".join(lines)

    def check(self) -> RankReport:
        """Raise :class:`RankMismatch` with the report unless :attr:`ok`; return self."""
        if not self.ok:
            raise RankMismatch(self.render())
        return self

    def export_flight_recorder(self, folder: str | Path) -> list[Path]:
        """Write the ranks' logs as flight-recorder dumps, one per rank of the world, for
        torch's analyzer (``torchfrtrace <folder> -p fakedist_fr_rank_``; torch 2.10+)."""
        from fakedist import flight_recorder

        logs = {rank: list(log) for rank, log in self.logs.items()}
        return flight_recorder.export(logs, Path(folder), world_size=self.world_size)

    def _problems(self) -> str:
        parts = []
        if self.errors:
            parts.append(f"{len(self.errors)} rank(s) raised")
        if self.divergences:
            parts.append(f"{len(self.divergences)} divergence(s)")
        return ", ".join(parts)

    def __str__(self) -> str:
        return self.render()


def _one_line(d: Divergence) -> str:
    if d.kind == "p2p":
        return f"send/recv between ranks {d.group_ranks[0]} and {d.group_ranks[1]} ({d.phrase()})"
    return (
        f"group {format_ranks(d.group_ranks, brackets=True)} at call #{d.position} ({d.phrase()})"
    )


def parse_ranks(value: Any, world_size: int) -> str | tuple[int, ...]:
    """``"all"``, ``"sample"`` or a tuple of distinct ranks in the world; ValueError naming it."""
    if value in ("all", "sample"):
        return str(value)
    if isinstance(value, (list, tuple)) and value:
        bad = [r for r in value if isinstance(r, bool) or not isinstance(r, int)]
        bad += [r for r in value if isinstance(r, int) and not 0 <= r < world_size]
        if bad:
            raise ValueError(
                f"ranks: {bad[0]!r} is not a rank of a world of {world_size} "
                f"(ranks are ints in [0, {world_size}))"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"ranks: {list(value)!r} repeats a rank")
        return tuple(value)
    raise ValueError(f"ranks must be 'all', 'sample' or a non-empty list of ranks, got {value!r}")


def check_ranks(
    body: Callable[[World], Any],
    world_size: int,
    ranks: str | Sequence[int] = "all",
    *,
    backend: str = "fake",
    **options: Any,
) -> RankReport:
    """Run ``body(world)`` as each chosen rank of ``world_size``, each in its own fake world,
    and compare what the ranks issued. Returns the report; ``.check()`` raises on a problem.

    ``options`` go to :func:`fakedist.fake_world` (faults, backend options). A rank whose
    body raises is reported with its error and left out of the comparison.
    """
    validate(world_size, 0, backend)
    chosen = parse_ranks(ranks, world_size)
    logs: dict[int, Any] = {}
    errors: list[RankError] = []

    def run(rank: int) -> None:
        with fake_world(world_size, rank=rank, backend=backend, **options) as world:
            world.comms.call_sites = True
            try:
                body(world)
            except Exception as exc:
                errors.append(RankError(rank, _error_line(exc), _user_frame(exc)))
                return
            logs[rank] = world.comms

    capped = False
    if chosen == "sample":
        order, capped = _sample(world_size, run, logs)
    else:
        order = list(range(world_size)) if isinstance(chosen, str) else list(chosen)
        for rank in order:
            run(rank)
    return RankReport(
        world_size=world_size,
        ranks=tuple(sorted(order)),
        logs=logs,
        divergences=compare({rank: list(log) for rank, log in logs.items()}),
        errors=sorted(errors, key=lambda e: e.rank),
        capped=capped,
    )


def _sample(
    world_size: int, run: Callable[[int], None], logs: dict[int, Any]
) -> tuple[list[int], bool]:
    """Run rank 0 and the last rank, then the first and last member of every group a run
    rank used, until none is new (or MAX_SAMPLE ranks ran)."""
    queue = list(dict.fromkeys([0, world_size - 1]))
    done: list[int] = []
    while queue:
        if len(done) == MAX_SAMPLE:
            return done, True
        rank = queue.pop(0)
        done.append(rank)
        run(rank)
        for record in logs.get(rank, ()):
            group = tuple(record.group_ranks)
            for boundary in (group[0], group[-1]) if group else ():
                if boundary not in done and boundary not in queue:
                    queue.append(boundary)
            for peer in (record.src, record.dst):
                if peer is not None and peer not in done and peer not in queue:
                    queue.append(peer)
    return done, False


def _error_line(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _user_frame(exc: BaseException) -> str | None:
    """file:line of the innermost traceback frame outside fakedist and torch."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        name = frame.filename
        if not name.startswith(_OWN) and "/torch/" not in name:
            return f"{Path(name).name}:{frame.lineno}"
    return None
