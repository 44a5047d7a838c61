"""CommLog: what a simulated rank sent, one record per collective, on every backend.

Records are made by :mod:`fakedist._hooks` (patched ``ProcessGroup`` methods and functional
collective ops; see that module for why not a TorchDispatchMode). This module holds the record
type, the op-name normalisation and the query/assertion API exposed as ``world.comms``.

``bytes`` is the payload this rank hands to the collective, not the wire traffic (which depends
on the algorithm): all_reduce, reduce, all_gather*, gather, reduce_scatter*, all_to_all*: the
input tensors; broadcast and scatter: the tensors on the source rank, 0 elsewhere; send: the
tensor; recv and barrier: 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from fakedist import ops

__all__ = [
    "ALIASES",
    "OPS",
    "CommLog",
    "CommRecord",
    "GroupFilter",
    "RawRecord",
    "normalise_op",
    "reduce_name",
    "resolve_group_filter",
    "side_by_side",
    "table",
]

# Python API names, ProcessGroup method names, c10d op names and functional op names -> one op
# (a snapshot of fakedist.ops, the table they come from; normalise_op reads the table itself).
ALIASES: dict[str, str] = ops.aliases()
OPS: tuple[str, ...] = ops.names()


def normalise_op(name: str) -> str:
    """The canonical op for any of its names (``allreduce_`` -> ``all_reduce``).

    Raises ValueError naming an unknown op and listing the known ones.
    """
    base = name.removeprefix("torch.ops.").removesuffix(".default")
    if base.startswith(("c10d.", *(f"{ns}." for ns in ops.FUNCTIONAL_NAMESPACES))):
        base = base.split(".", 1)[1]
    try:
        return ops.canonical(base)
    except KeyError:
        known = ", ".join(ops.names())
        raise ValueError(f"unknown collective op {name!r}; known ops: {known}") from None


class RawRecord(NamedTuple):
    """A record as the hooks make it on every call; :class:`CommRecord` is made from it later."""

    op: str  # canonical op name
    functional: bool
    group_name: str
    group_ranks: tuple[int, ...]
    shapes: tuple[Any, ...]  # torch.Size of each tensor
    dtypes: tuple[Any, ...]  # torch.dtype of each tensor
    bytes: int
    src: int | None
    dst: int | None
    async_op: Any  # a bool, the options object whose asyncOp says it, or None
    step: int
    fault: str | None
    where: str | None  # file:line in the user's code, with CommLog.call_sites
    reduce_op: Any  # the ReduceOp or functional op string of a reducing call, else None


@dataclass(frozen=True)
class CommRecord:
    """One collective call made by this rank."""

    index: int  # position in the log, from 0
    op: str  # canonical op name (see OPS)
    functional: bool  # made through a functional collective (_c10d_functional.*)
    group_name: str  # the process group's name ("0" for the default group on recent torch)
    group_ranks: tuple[int, ...]  # global ranks of the group, in group-rank order
    shapes: tuple[tuple[int, ...], ...]  # shapes of the tensors recorded for the op
    dtypes: tuple[str, ...]  # their dtypes, e.g. "torch.float32"
    bytes: int  # payload handed to the collective by this rank (see module docstring)
    src: int | None = None  # global source rank of broadcast/scatter/recv
    dst: int | None = None  # global destination rank of reduce/gather/send
    async_op: bool | None = None  # True: returned work/an async tensor; None: torch did not say
    step: int = 0  # value of world.step() counter when the call was made
    fault: str | None = None  # error kind injected into this call, if any
    where: str | None = None  # file:line of the call in the user's code (CommLog.call_sites)
    reduce_op: str | None = None  # SUM, AVG, MAX, ... for reducing ops; None for the others

    @property
    def group_size(self) -> int:
        return len(self.group_ranks)

    def row(self) -> list[str]:
        peer = f"src={self.src}" if self.src is not None else ""
        if self.dst is not None:
            peer = f"dst={self.dst}"
        shapes = ", ".join("x".join(map(str, s)) or "scalar" for s in self.shapes)
        dtypes = ",".join(sorted({d.removeprefix("torch.") for d in self.dtypes}))
        flags = "".join(
            (
                ("F" if self.functional else ""),
                ("A" if self.async_op else ""),
                (f" !{self.fault}" if self.fault else ""),
            )
        )
        return [
            str(self.index),
            self.op,
            f"{self.group_name}({self.group_size})",
            shapes,
            dtypes,
            str(self.bytes),
            peer,
            flags,
        ]


GroupFilter = Any  # a ProcessGroup, a ranks sequence, a group name, (DeviceMesh, dim) or None


class CommLog:
    """The collectives one rank made, in order; ``world.comms``."""

    def __init__(self, world_size: int | None = None) -> None:
        self._records: list[CommRecord] = []
        self._raw: list[RawRecord] = []  # appended by the hooks; see records
        self.call_sites = False  # True: each record says where the user's code made the call
        self.world_size = world_size  # checks rank lists given as ``group``

    @property
    def records(self) -> list[CommRecord]:
        """Every record, in call order (raw tuples from the hot path are converted here)."""
        if self._raw:
            start = len(self._records)
            self._records.extend(_materialise(start + i, raw) for i, raw in enumerate(self._raw))
            self._raw.clear()
        return self._records

    # -- collection ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records) + len(self._raw)

    def __iter__(self) -> Iterator[CommRecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> CommRecord:
        return self.records[index]

    def clear(self) -> None:
        """Forget everything recorded so far (e.g. after model setup)."""
        self._records.clear()
        self._raw.clear()

    # -- queries ---------------------------------------------------------------------------
    def filter(
        self, op: str | None = None, group: GroupFilter = None, functional: bool | None = None
    ) -> list[CommRecord]:
        """Records of ``op`` (any alias) on ``group``, optionally only (non-)functional ones."""
        want = normalise_op(op) if op is not None else None
        ranks = resolve_group_filter(group) if group is not None else None
        if isinstance(ranks, tuple):
            self._check_ranks(group, ranks)
        return [
            r
            for r in self.records
            if (want is None or r.op == want)
            and (ranks is None or r.group_ranks == ranks or r.group_name == ranks)
            and (functional is None or r.functional == functional)
        ]

    def _check_ranks(self, group: GroupFilter, ranks: tuple[int, ...]) -> None:
        """ValueError for a rank outside the world: such a group can never have been used."""
        size = self.world_size
        if size is None:
            import torch.distributed as dist

            size = dist.get_world_size() if dist.is_initialized() else None
        bad = next((r for r in ranks if r < 0 or (size is not None and r >= size)), None)
        if bad is not None:
            world = f"[0, {size}) for world_size={size}" if size is not None else "the world"
            raise ValueError(f"group {group!r}: rank {bad} is outside {world}")

    def count(self, op: str | None = None, group: GroupFilter = None) -> int:
        """How many calls of ``op`` (all ops when None) on ``group`` (any when None)."""
        return len(self.filter(op, group))

    def bytes(self, op: str | None = None, group: GroupFilter = None) -> int:
        """Total bytes this rank handed to ``op`` on ``group``."""
        return sum(r.bytes for r in self.filter(op, group))

    def ops(self, group: GroupFilter = None) -> list[str]:
        """Canonical op names in call order."""
        return [r.op for r in self.filter(None, group)]

    def groups(self) -> dict[str, tuple[int, ...]]:
        """Every group seen: name -> global ranks."""
        return {r.group_name: r.group_ranks for r in self.records}

    # -- assertions ------------------------------------------------------------------------
    def assert_count(self, op: str, n: int, group: GroupFilter = None) -> None:
        """AssertionError (with the recorded ops) unless ``op`` was called exactly ``n`` times."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"assert_count: n must be an int >= 0, got {n!r}")
        got = self.count(op, group)
        if got != n:
            where = f" on group {group!r}" if group is not None else ""
            raise AssertionError(
                f"expected {n} call(s) of {normalise_op(op)}{where}, recorded {got}\n{self}"
            )

    def assert_sequence(self, expected: Sequence[str], group: GroupFilter = None) -> None:
        """AssertionError unless the recorded ops are exactly ``expected`` (aliases allowed).

        The message shows the expected and the recorded sequence side by side.
        """
        want = [normalise_op(op) for op in expected]
        got = self.ops(group)
        if want != got:
            raise AssertionError("collective sequence differs\n" + side_by_side(want, got))

    # -- output ----------------------------------------------------------------------------
    def to_json(self) -> str:
        """JSON: ``{"groups": {name: ranks}, "calls": [record without its ranks, ...]}``
        (``where`` and ``reduce_op`` only where recorded)."""
        calls = []
        for r in self.records:
            d = asdict(r)
            del d["group_ranks"]
            for key in ("where", "reduce_op"):  # only where recorded
                if d[key] is None:
                    del d[key]
            d["group_size"] = r.group_size
            calls.append(d)
        groups = {name: list(ranks) for name, ranks in self.groups().items()}
        return json.dumps({"groups": groups, "calls": calls})

    def dump(self, path: str) -> None:
        """Write :meth:`to_json` to ``path``."""
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self.to_json())

    def __str__(self) -> str:
        head = ["#", "op", "group(size)", "shapes", "dtype", "bytes", "peer", "flags"]
        return table([head] + [r.row() for r in self.records]) + (
            "\nflags: F functional, A async, !kind injected fault" if self.records else ""
        )

    def __repr__(self) -> str:
        return f"<CommLog {len(self.records)} calls>"


def _materialise(index: int, raw: RawRecord) -> CommRecord:
    """A record from the hot path's: sizes -> tuples, dtypes -> str, opts -> async flag."""
    flag = raw.async_op
    async_op = flag if isinstance(flag, bool) else getattr(flag, "asyncOp", None)
    return CommRecord(
        index,
        raw.op,
        raw.functional,
        raw.group_name,
        raw.group_ranks,
        tuple(tuple(s) for s in raw.shapes),
        tuple(str(d) for d in raw.dtypes),
        raw.bytes,
        raw.src,
        raw.dst,
        async_op,
        raw.step,
        raw.fault,
        raw.where,
        reduce_name(raw.reduce_op),
    )


def reduce_name(op: Any) -> str | None:
    """``SUM`` for ``ReduceOp.SUM``, ``RedOpType.SUM``, or a functional op's ``"sum"``."""
    if op is None:
        return None
    text = op if isinstance(op, str) else str(getattr(op, "op", op))  # ReduceOp wraps RedOpType
    return text.rsplit(".", 1)[-1].upper()


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def side_by_side(expected: list[str], recorded: list[str]) -> str:
    n = max(len(expected), len(recorded))
    rows = [["#", "expected", "recorded", ""]]
    for i in range(n):
        e = expected[i] if i < len(expected) else "-"
        g = recorded[i] if i < len(recorded) else "-"
        rows.append([str(i), e, g, "" if e == g else "<-- differs"])
    return table(rows)


def resolve_group_filter(group: GroupFilter) -> tuple[int, ...] | str:
    """A ranks tuple (or a group name) for a ProcessGroup, ranks, name or (mesh, dim)."""
    if isinstance(group, str):
        return group
    if isinstance(group, tuple) and len(group) == 2 and hasattr(group[0], "get_group"):
        group = group[0].get_group(group[1])  # (DeviceMesh, dim or dim name)
    if isinstance(group, Iterable):
        return tuple(int(r) for r in group)
    import torch.distributed as dist

    if hasattr(group, "get_group"):  # a 1-D DeviceMesh
        group = group.get_group()
    return tuple(dist.get_process_group_ranks(group))
