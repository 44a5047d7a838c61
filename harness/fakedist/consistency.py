"""Do the ranks agree? Compare the collectives that several ranks of one program issued.

Input: each rank's recorded calls (``CommRecord``s of :mod:`fakedist.comms`), from running
the same program once per rank (:mod:`fakedist.ranks`). For every process group, every member
rank that ran must issue the same sequence of collectives on it: the same op, reduce op,
dtypes, shapes (where the op needs them equal on every rank, see ``OpSpec.shapes_agree``) and
root. Every send must meet a recv on its peer, in order, with the same shapes and dtypes. On
a cluster each disagreement is a hang or a crash; here it is a :class:`Divergence`.

Pure functions over records: no torch, no process group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fakedist import ops

__all__ = ["Call", "Divergence", "compare", "format_ranks"]

SHOWN_BEFORE = 3  # calls the group agreed on, shown before a divergence


@dataclass(frozen=True)
class Call:
    """What one rank did at one position, as the comparison sees it."""

    op: str
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    root: int | None  # src or dst, global rank
    reduce_op: str | None
    where: str | None  # the user's file:line

    def describe(self) -> str:
        """``all_reduce [4x8] float32 op=SUM`` (root and reduce op where the op has them)."""
        shapes = ", ".join("x".join(map(str, s)) or "scalar" for s in self.shapes)
        dtypes = ",".join(dict.fromkeys(d.removeprefix("torch.") for d in self.dtypes))
        spec = _spec(self.op)
        parts = [self.op, f"[{shapes}]" if self.shapes else "", dtypes]
        if self.root is not None and spec is not None and spec.peer is not None:
            parts.append(f"{spec.peer}={self.root}")
        if self.reduce_op:
            parts.append(f"op={self.reduce_op}")
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Divergence:
    """The first position at which the ranks of one group (or one send/recv pair) disagree."""

    kind: Literal["collective", "p2p"]
    group_ranks: tuple[int, ...]
    group_name: str
    position: int  # 0-based, in the group's sequence (or the pair's sends)
    what: str  # "op", "reduce op", "root (src)", "dtypes", "shapes", or "missing" (no call)
    variants: tuple[tuple[tuple[int, ...], Call | None], ...]  # ranks doing one thing each
    agreed: tuple[str, ...]  # the last ops the group agreed on before it
    order: int  # earliest log index of the diverging calls: which divergence came first

    def render(self) -> str:
        """The readable block: the group, the position, what each rank did and where."""
        if self.kind == "p2p":
            head = self._p2p_head()
        else:
            size = len(self.group_ranks)
            head = (
                f"ranks disagree in group {format_ranks(self.group_ranks, brackets=True)} "
                f"(name {self.group_name!r}, {size} rank{'s' if size != 1 else ''}) "
                f"at call #{self.position} of that group: {self.phrase()}"
            )
        lines = [head]
        width = max(len(_label(ranks)) for ranks, _ in self.variants)
        for ranks, call in self.variants:
            what = call.describe() if call is not None else self._nothing()
            where = f"  at {call.where}" if call is not None and call.where else ""
            lines.append(f"  {_label(ranks):<{width}}  {what}{where}")
        if self.agreed:
            lines.append(f"  before it the ranks agreed on: {', '.join(self.agreed)}")
        return "\n".join(lines)

    def phrase(self) -> str:
        """What differs, as words: ``op differs``, ``shapes differ``, ``not every rank ...``."""
        if self.what == "missing":
            return "not every rank makes this call"
        return f"{self.what} differ" + ("" if self.what in ("shapes", "dtypes") else "s")

    def _p2p_head(self) -> str:
        a, b = self.group_ranks
        (_, send), (_, recv) = self.variants
        if recv is None:
            return f"rank {a}'s send #{self.position} to rank {b} has no matching recv on rank {b}"
        if send is None:
            return (
                f"rank {b}'s recv #{self.position} from rank {a} has no matching send on rank {a}"
            )
        return f"rank {a}'s send #{self.position} to rank {b} and its recv: {self.phrase()}"

    def _nothing(self) -> str:
        if self.kind == "p2p":
            return "(no matching call)"
        if self.position:
            return f"(nothing: calls on this group end at #{self.position - 1})"
        return "(nothing: no call on this group)"


def compare(logs: Mapping[int, Sequence[Any]]) -> list[Divergence]:
    """Every group's first divergence and every unmatched send/recv, the earliest first."""
    found = [*_collectives(logs), *_point_to_point(logs)]
    return sorted(found, key=lambda d: (d.order, d.group_ranks, d.position))


def format_ranks(ranks: Iterable[int], *, brackets: bool = False) -> str:
    """``0-3, 7`` for ranks 0, 1, 2, 3 and 7 (runs of three or more shortened)."""
    ordered = sorted(set(ranks))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{ordered[i]}-{ordered[j]}")
        else:
            parts += [str(r) for r in ordered[i : j + 1]]
        i = j + 1
    text = ", ".join(parts)
    return f"[{text}]" if brackets else text


def _label(ranks: tuple[int, ...]) -> str:
    return f"rank{'s' if len(ranks) > 1 else ''} {format_ranks(ranks)}"


def _spec(op: str) -> ops.OpSpec | None:
    try:
        return ops.by_name(op)
    except KeyError:  # an op recorded under a name the table does not know
        return None


def _is_p2p(op: str) -> bool:
    spec = _spec(op)
    return spec is not None and spec.layout in ("p2p", "anysource")


def _call(record: Any) -> Call:
    spec = _spec(record.op)
    root = None
    if spec is not None and spec.peer is not None:
        root = getattr(record, spec.peer, None)
    return Call(
        op=record.op,
        shapes=tuple(tuple(s) for s in record.shapes),
        dtypes=tuple(record.dtypes),
        root=root,
        reduce_op=getattr(record, "reduce_op", None),
        where=getattr(record, "where", None),
    )


# ------------------------------------------------------------------------- collectives
def _collectives(logs: Mapping[int, Sequence[Any]]) -> list[Divergence]:
    sequences: dict[tuple[int, ...], dict[int, list[Any]]] = {}
    names: dict[tuple[int, ...], str] = {}
    for rank, records in logs.items():
        for record in records:
            if _is_p2p(record.op):
                continue
            group = tuple(record.group_ranks)
            sequences.setdefault(group, {}).setdefault(rank, []).append(record)
            names.setdefault(group, str(record.group_name))
    found = []
    for group, by_rank in sequences.items():
        members = [r for r in group if r in logs]  # the members that ran
        divergence = _first_in_group(group, names[group], {r: by_rank.get(r, []) for r in members})
        if divergence is not None:
            found.append(divergence)
    return found


def _signature(call: Call) -> tuple[Any, ...]:
    spec = _spec(call.op)
    shapes = call.shapes if spec is None or spec.shapes_agree else None
    return (call.op, call.reduce_op, call.root, call.dtypes, shapes)


_FIELDS = ("op", "reduce op", "root", "dtypes", "shapes")


def _first_in_group(
    group: tuple[int, ...], name: str, by_rank: Mapping[int, list[Any]]
) -> Divergence | None:
    length = max((len(v) for v in by_rank.values()), default=0)
    for position in range(length):
        variants: dict[tuple[Any, ...] | None, list[int]] = {}
        calls: dict[tuple[Any, ...] | None, tuple[Call | None, int | None]] = {}
        for rank, records in by_rank.items():
            record = records[position] if position < len(records) else None
            call = _call(record) if record is not None else None
            key = _signature(call) if call is not None else None
            variants.setdefault(key, []).append(rank)
            calls.setdefault(key, (call, getattr(record, "index", None)))
        if len(variants) == 1:
            continue
        keys = sorted(variants, key=lambda k: min(variants[k]))
        first = by_rank[min(by_rank)]
        agreed = tuple(r.op for r in first[max(0, position - SHOWN_BEFORE) : position])
        order = min((i for _, i in calls.values() if i is not None), default=0)
        return Divergence(
            kind="collective",
            group_ranks=group,
            group_name=name,
            position=position,
            what=_what_differs([k for k in keys]),
            variants=tuple((tuple(variants[k]), calls[k][0]) for k in keys),
            agreed=agreed,
            order=order,
        )
    return None


def _what_differs(keys: list[tuple[Any, ...] | None]) -> str:
    present = [k for k in keys if k is not None]
    if len(present) < len(keys):
        return "missing"
    for i, field in enumerate(_FIELDS):
        if len({k[i] for k in present}) > 1:
            if field == "root":
                spec = _spec(present[0][0])
                return f"root ({spec.peer})" if spec is not None and spec.peer else "root"
            return field
    return "call"


# ---------------------------------------------------------------------- point to point
def _point_to_point(logs: Mapping[int, Sequence[Any]]) -> list[Divergence]:
    """Sends from a to b against b's recvs from a, in order (both ranks must have run)."""
    sends: dict[tuple[int, int], list[Any]] = {}
    recvs: dict[tuple[int, int], list[Any]] = {}
    for rank, records in logs.items():
        for record in records:
            spec = _spec(record.op)
            if spec is None or spec.layout != "p2p":  # anysource recvs match any sender
                continue
            peer = getattr(record, spec.peer or "", None)
            if peer is None:
                continue
            if spec.peer == "dst":
                sends.setdefault((rank, peer), []).append(record)
            else:
                recvs.setdefault((peer, rank), []).append(record)
    found = []
    for pair in sorted(set(sends) | set(recvs)):
        a, b = pair
        if a not in logs or b not in logs:
            continue  # one end did not run: nothing to compare with
        divergence = _first_in_pair(pair, sends.get(pair, []), recvs.get(pair, []))
        if divergence is not None:
            found.append(divergence)
    return found


def _first_in_pair(
    pair: tuple[int, int], sent: list[Any], received: list[Any]
) -> Divergence | None:
    a, b = pair
    for position in range(max(len(sent), len(received))):
        send = _call(sent[position]) if position < len(sent) else None
        recv = _call(received[position]) if position < len(received) else None
        if send is not None and recv is not None:
            if (send.shapes, send.dtypes) == (recv.shapes, recv.dtypes):
                continue
            what = "shapes" if send.shapes != recv.shapes else "dtypes"
        else:
            what = "missing"
        records = [r[position] for r in (sent, received) if position < len(r)]
        return Divergence(
            kind="p2p",
            group_ranks=pair,
            group_name=str(records[0].group_name),
            position=position,
            what=what,
            variants=(((a,), send), ((b,), recv)),
            agreed=(),
            order=min(getattr(r, "index", 0) for r in records),
        )
    return None
