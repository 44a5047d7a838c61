"""Hand fakedist's per-rank logs to torch's flight-recorder analyzer (``torchfrtrace``).

:func:`export` writes one dump per rank in the pickle format torch's flight recorder writes
(``TORCH_NCCL_DEBUG_INFO_TEMP_FILE``); :func:`analyze` runs the analyzer shipped with torch
on such a folder and returns what it found as an :class:`Analysis`.

Where the analyzer lives (read from torch's source history; only torch 2.13 was run):

* torch 2.5 to 2.9: ``tools/flight_recorder/fr_trace.py``, in the source repository only.
  Those wheels declare a ``torchfrtrace`` script for ``tools.flight_recorder``, a package
  they do not contain (pytorch#167782), so it does not run from an installed torch.
* torch 2.10 on (pytorch#167782 moved it in November 2025, before the 2.10 branch cut):
  ``torch.distributed.flight_recorder``, run as ``torchfrtrace DIR -p PREFIX`` or
  ``python -m torch.distributed.flight_recorder.fr_trace DIR -p PREFIX``.

The dump (``FlightRecorder.hpp``) is a dict with ``version`` ("2.4" at the end of 2024,
"2.10" from torch 2.13; the analyzer needs every rank's to be the same and falls back to
an older matcher for coalesced ops below "2.7"), ``comm_lib_version``, ``pg_config`` (group
name -> {name, desc, ranks: the string "[0, 1]"}), ``pg_status`` (str(pg_id) -> last
enqueued/started/completed sequence numbers) and ``entries``, one dict per collective:
record_id (per rank, from 0), pg_id, process_group (name, desc), collective_seq_id and
p2p_seq_id (per group, from 1; a point-to-point op bumps only the latter), op_id,
profiling_name ("nccl:all_reduce", "nccl:send 0->1" in group ranks), input/output sizes and
dtypes (c10 names: "Float"), state, time fields, frames [{name, filename, line}], is_p2p.
The loader takes the rank from the file name (``<prefix><rank>``), not from the dump;
:func:`export` adds a ``rank`` key for other readers, which the analyzer ignores.

What the analyzer does with fakedist's logs (torch 2.13; asserted by the unit tests):

* It matches a group's collectives across ranks by ``collective_seq_id``, starting from the
  lowest rank's entry (:func:`analyze` hands it the dumps in rank order; the command line
  takes them in directory order, so its choice of reference rank can differ). Ranks whose
  entry disagrees with the reference are the "culprits", even where the reference rank is
  the odd one out.
* A collective only some ranks issued, as their last op in that group, is reported as "Not
  all ranks joining collective" with the ranks that lack it (``missing_ranks``); the analyzer
  keeps such a collective with ``pass_check`` True, so :func:`analyze` counts
  ``missing_ranks`` as a mismatch too. When the other ranks go on with more collectives in
  that group, the extra op meets their next one at the same sequence number and is reported
  as a type mismatch blaming those ranks.
* After a group's first mismatch the analyzer no longer counts that group's later
  collectives as matched, but still reports those that disagree: one extra op shows as a
  cascade of findings (at most ``mismatch_cap`` per group); the first is the one to read.
* Point-to-point ops are matched like collectives, by ``collective_seq_id`` against every
  member of the group: a send/recv pair passes in a two-rank group; in a larger group the
  bystanders are reported missing. In a group that mixes the two, a send or recv whose
  ``p2p_seq_id`` equals the preceding collective's ``collective_seq_id`` is taken for part of
  a coalesced group and the analyzer fails on its own assertion ("can't get dst of non-p2p
  op"; :func:`analyze` raises RuntimeError). torch records both counters the same way, so
  real dumps of such programs meet the same failure.
* The format has no field for the reduce op, and a rooted collective's root is not in it, so
  a SUM/MAX or broadcast-root disagreement is invisible to the analyzer.
* fakedist records no output tensors: output sizes are derived from the input ones (a
  gathered tensor concatenated on dim 0, reduce-scatter split evenly, all-to-all receiving
  as much as it sends), so only input sizes can disagree for real.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import io
import logging
import pickle
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "DEFAULT_PREFIX",
    "DTYPES",
    "FORMAT_VERSION",
    "FR_OPS",
    "Analysis",
    "Finding",
    "analyze",
    "available",
    "dump",
    "export",
    "torch_version",
]

Sizes = Literal["same", "concat", "stack", "split", "unstack", "gather", "scatter", "barrier"]
"""How a record's output sizes follow from its recorded (input) tensors; see ``_SIZES``."""

# fakedist op -> (the analyzer's op name, the sizes rule). The names are those torch's
# ProcessGroupNCCL records and the analyzer's COLLECTIVES / P2P sets list; "stack" and
# "unstack" mirror how ProcessGroupNCCL flattens a list of equal tensors ([N, *shape]).
FR_OPS: Mapping[str, tuple[str, Sizes]] = MappingProxyType(
    {
        "all_reduce": ("all_reduce", "same"),
        "all_reduce_coalesced": ("allreduce_coalesced", "same"),
        "broadcast": ("broadcast", "same"),
        "reduce": ("reduce", "same"),
        "all_gather": ("all_gather", "stack"),
        "all_gather_into_tensor": ("_all_gather_base", "concat"),
        "all_gather_into_tensor_coalesced": ("all_gather_into_tensor_coalesced", "concat"),
        "gather": ("gather", "gather"),
        "scatter": ("scatter", "scatter"),
        "reduce_scatter": ("reduce_scatter", "unstack"),
        "reduce_scatter_tensor": ("_reduce_scatter_base", "split"),
        "reduce_scatter_tensor_coalesced": ("reduce_scatter_tensor_coalesced", "split"),
        "all_to_all": ("all_to_all", "same"),
        "all_to_all_single": ("all_to_all", "same"),
        "send": ("send", "same"),
        "recv": ("recv", "same"),
        "barrier": ("all_reduce_barrier", "barrier"),  # ProcessGroupNCCL: all_reduce of 1 float
    }
)
# Not in the table: all_gather_coalesced (ProcessGroupNCCL has no such op, so there is no
# name for it); export() refuses it.

DTYPES: Mapping[str, str] = MappingProxyType(
    {  # torch dtype -> the c10 ScalarType name the recorder writes
        "torch.float32": "Float",
        "torch.float64": "Double",
        "torch.float16": "Half",
        "torch.bfloat16": "BFloat16",
        "torch.complex32": "ComplexHalf",
        "torch.complex64": "ComplexFloat",
        "torch.complex128": "ComplexDouble",
        "torch.int64": "Long",
        "torch.int32": "Int",
        "torch.int16": "Short",
        "torch.int8": "Char",
        "torch.uint8": "Byte",
        "torch.uint16": "UInt16",
        "torch.uint32": "UInt32",
        "torch.uint64": "UInt64",
        "torch.bool": "Bool",
        "torch.float8_e4m3fn": "Float8_e4m3fn",
        "torch.float8_e5m2": "Float8_e5m2",
        "torch.float8_e4m3fnuz": "Float8_e4m3fnuz",
        "torch.float8_e5m2fnuz": "Float8_e5m2fnuz",
    }
)

FORMAT_VERSION = "2.10"  # what torch 2.13 writes; the analyzer wants every rank to agree
BACKEND = "nccl"  # profiling-name prefix; the analyzer accepts nccl, gloo, xccl and others
DEFAULT_PREFIX = "fakedist_fr_rank_"
DEFAULT_GROUP = ("0", "default_pg")  # name and desc torch gives the default group
OTHER_DESC = "undefined"  # desc of a group created without group_desc
TIMEOUT_MS = 600_000  # ProcessGroupNCCL's default timeout
MODULE = "torch.distributed.flight_recorder"
LOGGER = "Flight Recorder"  # the logger the analyzer reports through


# ------------------------------------------------------------------------------ export
Shape = tuple[int, ...]


def _concat(shapes: list[Shape], n: int) -> tuple[list[Shape], list[Shape]]:
    return shapes, [(s[0] * n, *s[1:]) if s else (n,) for s in shapes]


def _stack(shapes: list[Shape], n: int) -> tuple[list[Shape], list[Shape]]:
    return shapes, [(n, *s) for s in shapes]


def _split(shapes: list[Shape], n: int) -> tuple[list[Shape], list[Shape]]:
    return shapes, [(s[0] // n, *s[1:]) if s else () for s in shapes]


def _unstack(shapes: list[Shape], n: int) -> tuple[list[Shape], list[Shape]]:
    return ([(len(shapes), *shapes[0])], [shapes[0]]) if shapes else ([], [])


_SIZES = {"concat": _concat, "stack": _stack, "split": _split, "unstack": _unstack}


def _sizes(rule: Sizes, record: Any, rank: int) -> tuple[list[Shape], list[Shape]]:
    """(input sizes, output sizes) of ``record`` as ``rank``'s recorder would write them."""
    shapes = [tuple(s) for s in record.shapes]
    n = len(record.group_ranks)
    if rule == "barrier":
        return [(1,)], [(1,)]
    if rule == "gather":  # the root receives every rank's tensor
        return shapes, shapes * n if rank == record.dst else []
    if rule == "scatter":  # recorded: the root's inputs, the others' outputs
        return (shapes, shapes[:1]) if rank == record.src else ([], shapes)
    if rule == "same":
        return shapes, shapes
    return _SIZES[rule](shapes, n)


def _dtypes(record: Any, count: int) -> list[str]:
    """``count`` c10 dtype names for ``record`` (a barrier's tensor is a float)."""
    names = [DTYPES.get(d, d.removeprefix("torch.")) for d in record.dtypes] or ["Float"]
    return [names[min(i, len(names) - 1)] for i in range(count)]


def _frames(record: Any) -> list[dict[str, Any]]:
    """One frame from the record's ``where`` ("file.py:12"), named after the op; [] if unset."""
    where = getattr(record, "where", None)
    if not where:
        return []
    filename, _, line = str(where).rpartition(":")
    if not filename or not line.isdigit():
        raise ValueError(f"flight recorder: call site must read 'file.py:12', got {where!r}")
    return [{"name": record.op, "filename": filename, "line": int(line)}]


def _groups(logs: Mapping[int, Sequence[Any]]) -> dict[str, tuple[int, ...]]:
    """Every group any rank used: name -> global ranks (in group-rank order)."""
    groups: dict[str, tuple[int, ...]] = {}
    for rank in sorted(logs):
        for record in logs[rank]:
            ranks = tuple(record.group_ranks)
            if groups.setdefault(record.group_name, ranks) != ranks:
                raise ValueError(
                    f"flight recorder: group {record.group_name!r} has ranks "
                    f"{groups[record.group_name]} and {ranks}"
                )
    return groups


def _sort_key(name: str) -> tuple[int, int, str]:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _desc(name: str) -> str:
    return DEFAULT_GROUP[1] if name == DEFAULT_GROUP[0] else OTHER_DESC


class _Counters:
    """One rank's recorder state: record ids and, per group, sequence numbers."""

    def __init__(self) -> None:
        self.record_id = -1
        self.collective: dict[str, int] = {}
        self.p2p: dict[str, int] = {}
        self.op_id: dict[str, int] = {}

    def bump(self, group: str, p2p: bool) -> tuple[int, int, int, int]:
        """(record_id, collective_seq_id, p2p_seq_id, op_id) of the next entry in ``group``."""
        self.record_id += 1
        bumped = self.p2p if p2p else self.collective
        bumped[group] = bumped.get(group, 0) + 1
        self.op_id[group] = self.op_id.get(group, 0) + 1
        return (
            self.record_id,
            self.collective.get(group, 0),
            self.p2p.get(group, 0),
            self.op_id[group],
        )


def _profiling_name(record: Any, name: str, rank: int) -> str:
    """``nccl:<name>``; point-to-point ops add ``me->peer`` / ``me<-peer`` in group ranks."""
    if record.op not in ("send", "recv"):
        return f"{BACKEND}:{name}"
    peer = record.dst if record.op == "send" else record.src
    if peer not in record.group_ranks:
        raise ValueError(f"flight recorder: {record.op} needs a peer in its group, got {peer!r}")
    me, other = record.group_ranks.index(rank), record.group_ranks.index(peer)
    arrow = "->" if record.op == "send" else "<-"
    return f"{BACKEND}:{name} {me}{arrow}{other}"


def _entry(
    record: Any, rank: int, counters: _Counters, pg_ids: Mapping[str, int]
) -> dict[str, Any]:
    """The recorder's entry for one of ``rank``'s records."""
    if record.op not in FR_OPS:
        raise ValueError(f"flight recorder: no analyzer name for op {record.op!r}")
    if rank not in record.group_ranks:
        raise ValueError(f"flight recorder: rank {rank} is not in group {record.group_name!r}")
    name, rule = FR_OPS[record.op]
    p2p = record.op in ("send", "recv")
    record_id, seq, p2p_seq, op_id = counters.bump(record.group_name, p2p)
    inputs, outputs = _sizes(rule, record, rank)
    created = (record_id + 1) * 1_000
    return {
        "record_id": record_id,
        "pg_id": pg_ids[record.group_name],
        "process_group": (record.group_name, _desc(record.group_name)),
        "thread_id": "0",
        "thread_name": "fakedist",
        "collective_seq_id": seq,
        "p2p_seq_id": p2p_seq,
        "op_id": op_id,
        "profiling_name": _profiling_name(record, name, rank),
        "time_created_ns": created,
        "input_sizes": [list(s) for s in inputs],
        "input_dtypes": _dtypes(record, len(inputs)),
        "output_sizes": [list(s) for s in outputs],
        "output_dtypes": _dtypes(record, len(outputs)),
        "state": "completed",  # every call of a fake world returned
        "time_discovered_started_ns": None,
        "time_discovered_completed_ns": created,
        "retired": True,
        "timeout_ms": TIMEOUT_MS,
        "is_p2p": p2p,
        "frames": _frames(record),
    }


def dump(
    rank: int, records: Sequence[Any], groups: Mapping[str, tuple[int, ...]]
) -> dict[str, Any]:
    """The flight-recorder dump of ``rank`` that issued ``records``; ``groups``: name -> ranks."""
    pg_ids = {name: i for i, name in enumerate(sorted(groups, key=_sort_key))}
    counters = _Counters()
    entries = [_entry(record, rank, counters, pg_ids) for record in records]
    mine = [name for name in pg_ids if rank in groups[name]]
    return {
        "version": FORMAT_VERSION,
        "comm_lib_version": "fakedist",
        "rank": rank,  # not read by the analyzer (it takes the rank from the file name)
        "pg_config": {
            name: {"name": name, "desc": _desc(name), "ranks": str(list(groups[name]))}
            for name in mine
        },
        "pg_status": {
            str(pg_ids[name]): {
                "last_enqueued_collective": counters.collective.get(name, -1),
                "last_started_collective": -1,  # timing disabled, as by default
                "last_completed_collective": counters.collective.get(name, -1),
            }
            for name in mine
        },
        "entries": entries,
    }


def export(
    logs: Mapping[int, Sequence[Any]],
    folder: Path,
    *,
    world_size: int,
    prefix: str = DEFAULT_PREFIX,
) -> list[Path]:
    """Write ``<folder>/<prefix><rank>`` for every rank of the world; returns the paths.

    ``logs`` maps a global rank to the records it issued (``world.comms`` or a list of
    records); a rank missing from it issued nothing. Use a folder of its own: the analyzer
    reads every file whose name contains ``prefix``.
    """
    if world_size < 1:
        raise ValueError(f"flight recorder: world_size must be at least 1, got {world_size!r}")
    outside = sorted(r for r in logs if not 0 <= r < world_size)
    if outside:
        raise ValueError(f"flight recorder: rank {outside[0]} is outside a world of {world_size}")
    groups = _groups(logs)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank in range(world_size):
        path = folder / f"{prefix}{rank}"
        path.write_bytes(pickle.dumps(dump(rank, list(logs.get(rank, ())), groups)))
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- analyze
@dataclass(frozen=True)
class Finding:
    """One collective the analyzer flagged."""

    kind: str  # "missing_ranks", or the MatchState name ("SIZE_OR_SYNTAX_MISMATCH", ...)
    collective: str  # its profiling name, e.g. "nccl:all_reduce_barrier"
    op: str | None  # the fakedist op of that name (None if none has it)
    group: str  # process-group name
    group_desc: str  # the analyzer's "name:desc" ("0:default_pg")
    seq: int  # collective_seq_id in that group
    expected_ranks: tuple[int, ...]  # the group's members
    missing_ranks: tuple[int, ...]  # members that did not issue it
    culprits: tuple[int, ...]  # members whose entry disagreed with the reference rank's
    errors: tuple[str, ...]  # the analyzer's message per culprit, in culprit order
    frames: tuple[str, ...]  # the reference entry's call site(s): "file.py:12"

    @property
    def ranks(self) -> tuple[int, ...]:
        """The ranks it blames: the culprits, else the missing ranks."""
        return self.culprits or self.missing_ranks

    @property
    def issued_by(self) -> tuple[int, ...]:
        """Members that did issue it (all but the missing ones)."""
        return tuple(r for r in self.expected_ranks if r not in self.missing_ranks)


@dataclass(frozen=True)
class Analysis:
    """What the analyzer printed and found."""

    output: str  # its report, as it logs it
    findings: tuple[Finding, ...]  # flagged collectives, in the analyzer's order
    collectives: int  # collectives it built (matched or not)
    torch_version: str

    @property
    def mismatch(self) -> bool:
        return bool(self.findings)

    @property
    def first(self) -> Finding | None:
        return self.findings[0] if self.findings else None


def torch_version() -> str | None:
    """The installed torch's version, None without torch."""
    try:
        import torch
    except ImportError:
        return None
    return str(torch.__version__)


def available() -> bool:
    """Whether the installed torch ships the analyzer (torch >= 2.10)."""
    try:
        return importlib.util.find_spec(MODULE) is not None
    except ImportError:  # no torch, or no torch.distributed
        return False


def _require() -> str:
    version = torch_version()
    if version is None:
        raise RuntimeError("flight recorder: torch is not installed")
    if not available():
        raise RuntimeError(
            f"flight recorder: torch {version} does not ship {MODULE} (torch >= 2.10 does)"
        )
    return version


@contextmanager
def _captured() -> Iterator[io.StringIO]:
    """The analyzer's log lines, captured instead of printed; gc left as it was found."""
    logger = logging.getLogger(LOGGER)
    saved = (logger.handlers[:], logger.level, logger.propagate, gc.isenabled())
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield stream
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
        if saved[3]:
            gc.enable()  # the loader disables it and leaves it so


def _components() -> dict[str, Any]:
    """The analyzer's functions (imported quietly: the builder warns when tabulate is absent)."""
    # The analyzer's logger gets its stderr handler on first use; let that happen outside the
    # capture, so that the capture's restore keeps it.
    importlib.import_module(f"{MODULE}.components.fr_logger").FlightRecorderLogger()
    with _captured():
        config = importlib.import_module(f"{MODULE}.components.config_manager")
        loader = importlib.import_module(f"{MODULE}.components.loader")
        builder = importlib.import_module(f"{MODULE}.components.builder")
    return {"config": config.JobConfig, "read_dir": loader.read_dir, "build_db": builder.build_db}


def _op_of(profiling_name: str) -> str | None:
    name = profiling_name.partition(":")[2].split(" ")[0]
    return next((op for op, (fr, _) in FR_OPS.items() if fr == name), None)


def _frame_text(frames: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(f"{f['filename']}:{f['line']}" for f in frames)


def _finding(collective: Any) -> Finding | None:
    """A Finding for a collective the analyzer did not match, else None."""
    missing = tuple(sorted(collective.missing_ranks or ()))
    others = dict(sorted((collective.mismatch_collectives or {}).items()))
    if collective.pass_check and not missing:
        return None
    infos = [c.type_of_mismatch for c in others.values()]
    kinds = sorted({i.state.name for i in infos if i is not None})
    return Finding(
        kind="missing_ranks" if missing else ",".join(kinds) or "unknown",
        collective=collective.collective_name,
        op=_op_of(collective.collective_name),
        group=str(collective.group_id),
        group_desc=str(collective.pg_desc),
        seq=int(collective.collective_seq_id),
        expected_ranks=tuple(sorted(collective.expected_ranks)),
        missing_ranks=missing,
        culprits=tuple(others),
        errors=tuple(str(i) for i in infos),
        frames=_frame_text(collective.collective_frames or ()),
    )


def analyze(folder: Path, prefix: str = DEFAULT_PREFIX, *, mismatch_cap: int = 10) -> Analysis:
    """Run torch's analyzer on the dumps in ``folder`` (see :func:`export`).

    It runs in this process through the functions ``fr_trace.main`` calls, the dumps handed
    over in rank order. RuntimeError where torch does not ship the analyzer, or where the
    analyzer rejects the dumps (a rank's dump missing, ranks disagreeing on a group).
    """
    version = _require()
    fr = _components()
    args = fr["config"]().parse_args(
        [str(folder), "--prefix", prefix, "--mismatch_cap", str(mismatch_cap)]
    )
    with _captured() as stream:
        try:
            details, fmt = fr["read_dir"](args)
            details = dict(sorted(details.items(), key=lambda item: int(item[1]["rank"])))
            db = fr["build_db"](details, args, fmt)
        except AssertionError as exc:
            raise RuntimeError(f"flight recorder: the analyzer rejected {folder}: {exc}") from None
    findings = [f for f in map(_finding, db.collectives) if f is not None]
    return Analysis(stream.getvalue(), tuple(findings), len(db.collectives), version)
