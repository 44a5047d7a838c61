"""Every collective fakedist knows, as data: one :class:`OpSpec` per op in :data:`OPS`.

The hooks (:mod:`fakedist._hooks`: which ProcessGroup methods and functional ops are patched,
how their arguments are read), CommLog's op names (:func:`fakedist.comms.normalise_op`), fault
validation, pypg's methods and the threaded fidelity's refusers all read this table, through
the helpers below; none keeps a list of its own. The helpers index :data:`OPS` again whenever
it is replaced (a test may monkeypatch it), so an op added here reaches every consumer.

This module imports nothing from fakedist and no torch: it is data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

__all__ = [
    "BACKENDS",
    "FIDELITIES",
    "FUNCTIONAL_NAMESPACES",
    "LAYOUTS",
    "OPS",
    "Layout",
    "OpSpec",
    "aliases",
    "by_name",
    "canonical",
    "functional_ops",
    "names",
    "pg_methods",
]

Layout = Literal[
    "tensors",  # (tensors, opts): the tensors of the first argument
    "outputs_inputs",  # (outputs, inputs, ..., opts): the inputs
    "rooted",  # (tensors, opts): the tensors; the root is opts.rootRank
    "gather",  # (outputs, inputs, opts): the inputs; the root is opts.rootRank
    "scatter",  # (outputs, inputs, opts): the root's inputs, the others' outputs
    "p2p",  # (tensors, peer, tag): the tensors; the peer is the second argument
    "anysource",  # (tensors, tag): the tensors; no peer
    "none",  # (opts): no tensors
]
"""How a call's arguments are read: where its tensors, options and root or peer are."""
LAYOUTS: tuple[Layout, ...] = get_args(Layout)

Peer = Literal["src", "dst"]
"""Which end of the transfer the root or peer is: broadcast's root is ``src``, send's ``dst``."""

Bytes = Literal["tensors", "at_root", "zero"]
"""The payload recorded: every tensor read, those read on the root (``src``) rank only, none."""

Backend = Literal["fake", "mock_process_group", "pypg"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)

Fidelity = Literal["fake", "threaded", "gloo"]
FIDELITIES: tuple[Fidelity, ...] = get_args(Fidelity)

FUNCTIONAL_NAMESPACES = ("_c10d_functional", "c10d_functional")  # the latter: torch < 2.3

_FAKE_PYPG: tuple[Backend, ...] = ("fake", "pypg")  # mock_process_group runs no collective
_ALL: tuple[Fidelity, ...] = FIDELITIES
_NOT_THREADED: tuple[Fidelity, ...] = ("fake", "gloo")  # torch's threaded group lacks it


@dataclass(frozen=True)
class OpSpec:
    """One collective: its names, how its calls are read, and where it runs."""

    name: str  # the canonical name CommLog records
    pg_methods: tuple[str, ...] = ()  # ProcessGroup methods that make it (absent ones skipped)
    functional_ops: tuple[str, ...] = ()  # ops of FUNCTIONAL_NAMESPACES that make it
    aliases: tuple[str, ...] = ()  # other names: c10d ops (``allreduce_``), old Python API
    layout: Layout = "tensors"  # of its ProcessGroup methods
    method_layouts: tuple[tuple[str, Layout], ...] = ()  # a method read another way
    functional_layout: Layout = "tensors"  # of its functional ops
    peer: Peer | None = None  # rooted and point-to-point ops: where the root/peer is recorded
    functional_peer_arg: int | None = None  # functional ops: the argument holding it
    bytes: Bytes = "tensors"
    shapes_agree: bool = True  # every rank hands the op tensors of the same shapes
    reduces: bool = False  # takes a reduce op: ``opts.reduceOp``, or a functional op's 2nd arg
    backends: tuple[Backend, ...] = _FAKE_PYPG  # fakedist backends whose groups run it
    pypg_lacks: tuple[str, ...] = ()  # methods pypg leaves to the C++ base (which forwards)
    fidelities: tuple[Fidelity, ...] = _ALL  # the fidelities that run it

    def names(self) -> tuple[str, ...]:
        """Every name of the op, the canonical one first."""
        return tuple(
            dict.fromkeys((self.name, *self.pg_methods, *self.functional_ops, *self.aliases))
        )

    def method_layout(self, method: str) -> Layout:
        """The layout of ProcessGroup method ``method`` of this op."""
        return dict(self.method_layouts).get(method, self.layout)

    def runs_on(self, backend: str) -> tuple[str, ...]:
        """The ProcessGroup methods ``backend``'s group implements for this op."""
        if backend not in self.backends:
            return ()
        lacks = self.pypg_lacks if backend == "pypg" else ()
        return tuple(m for m in self.pg_methods if m not in lacks)


# 2.13 renamed _allgather_base/_reduce_scatter_base/alltoall_base (their ProcessGroup methods)
# to all_gather_single/reduce_scatter_single/all_to_all_single; the old names are kept.
OPS: tuple[OpSpec, ...] = (
    OpSpec(
        "all_reduce",
        reduces=True,
        pg_methods=("allreduce",),
        functional_ops=("all_reduce", "all_reduce_"),
        aliases=("allreduce_",),
    ),
    OpSpec(
        "all_reduce_coalesced",
        reduces=True,
        pg_methods=("allreduce_coalesced",),
        functional_ops=("all_reduce_coalesced", "all_reduce_coalesced_"),
        aliases=("allreduce_coalesced_",),
    ),
    OpSpec(
        "broadcast",
        pg_methods=("broadcast",),
        functional_ops=("broadcast", "broadcast_"),
        layout="rooted",
        functional_layout="rooted",
        peer="src",
        functional_peer_arg=1,
        bytes="at_root",
    ),
    OpSpec(
        "reduce",
        reduces=True,
        pg_methods=("reduce",),
        aliases=("reduce_",),
        layout="rooted",
        peer="dst",
        fidelities=_NOT_THREADED,
    ),
    OpSpec(
        "all_gather",
        pg_methods=("allgather",),
        aliases=("allgather_",),
        layout="outputs_inputs",
    ),
    OpSpec(
        "all_gather_coalesced",
        pg_methods=("allgather_coalesced",),
        aliases=("allgather_coalesced_",),
        layout="outputs_inputs",
        backends=("fake",),
        fidelities=_NOT_THREADED,
    ),
    OpSpec(
        "all_gather_into_tensor",
        pg_methods=("_allgather_base", "all_gather_single"),
        functional_ops=("all_gather_into_tensor", "all_gather_into_tensor_out"),
        aliases=("_allgather_base_", "_all_gather_base"),
        layout="outputs_inputs",
    ),
    OpSpec(
        "all_gather_into_tensor_coalesced",
        pg_methods=("allgather_into_tensor_coalesced", "all_gather_single_coalesced"),
        functional_ops=("all_gather_into_tensor_coalesced",),
        aliases=("allgather_into_tensor_coalesced_",),
        layout="outputs_inputs",
    ),
    OpSpec(
        "gather",
        pg_methods=("gather",),
        aliases=("gather_",),
        layout="gather",
        peer="dst",
    ),
    OpSpec(
        "scatter",
        pg_methods=("scatter",),
        aliases=("scatter_",),
        layout="scatter",
        peer="src",
        bytes="at_root",
        shapes_agree=False,  # the root's inputs, the others' outputs
    ),
    OpSpec(
        "reduce_scatter",
        reduces=True,
        pg_methods=("reduce_scatter",),
        aliases=("reduce_scatter_",),
        layout="outputs_inputs",
    ),
    OpSpec(
        "reduce_scatter_tensor",
        reduces=True,
        pg_methods=("_reduce_scatter_base", "reduce_scatter_single"),
        functional_ops=("reduce_scatter_tensor",),
        aliases=("_reduce_scatter_base_",),
        layout="outputs_inputs",
    ),
    OpSpec(
        "reduce_scatter_tensor_coalesced",
        reduces=True,
        pg_methods=("reduce_scatter_tensor_coalesced", "reduce_scatter_single_coalesced"),
        functional_ops=("reduce_scatter_tensor_coalesced",),
        aliases=("reduce_scatter_tensor_coalesced_",),
        layout="outputs_inputs",
    ),
    OpSpec(
        "all_to_all",
        pg_methods=("alltoall",),
        aliases=("alltoall_",),
        layout="outputs_inputs",
        shapes_agree=False,  # uneven splits
    ),
    OpSpec(
        "all_to_all_single",
        pg_methods=("alltoall_base", "all_to_all_single"),
        functional_ops=("all_to_all_single",),
        aliases=("alltoall_base_",),
        layout="outputs_inputs",
        shapes_agree=False,  # uneven splits
        pypg_lacks=("all_to_all_single",),
    ),
    OpSpec(
        "send",
        pg_methods=("send",),
        functional_ops=("isend",),
        layout="p2p",
        functional_layout="p2p",
        peer="dst",
        functional_peer_arg=1,
        fidelities=_NOT_THREADED,
    ),
    OpSpec(
        "recv",
        pg_methods=("recv", "recv_anysource"),
        functional_ops=("irecv",),
        aliases=("recv_", "recv_any_source_"),
        layout="p2p",
        method_layouts=(("recv_anysource", "anysource"),),
        functional_layout="p2p",
        peer="src",
        functional_peer_arg=1,
        bytes="zero",
        pypg_lacks=("recv_anysource",),
        fidelities=_NOT_THREADED,
    ),
    OpSpec("barrier", pg_methods=("barrier",), layout="none", bytes="zero"),
)


# ------------------------------------------------------------------------------- lookups
@dataclass(frozen=True)
class _Index:
    """The lookups of one OPS tuple."""

    by_name: Mapping[str, OpSpec]
    aliases: Mapping[str, str]  # every name -> canonical name
    pg_methods: Mapping[str, OpSpec]
    functional_ops: Mapping[str, OpSpec]


_built: tuple[tuple[OpSpec, ...], _Index] | None = None


def _index() -> _Index:
    """The lookups of :data:`OPS`, built again when OPS was replaced."""
    global _built
    if _built is None or _built[0] is not OPS:
        _built = (OPS, _build(OPS))
    return _built[1]


def _claim(table: dict[str, OpSpec], name: str, spec: OpSpec, what: str) -> None:
    other = table.setdefault(name, spec)
    if other is not spec:
        raise ValueError(f"ops: {what} {name!r} belongs to both {other.name} and {spec.name}")


def _build(ops: tuple[OpSpec, ...]) -> _Index:
    """Index ``ops``; ValueError for a name claimed twice or a spec that cannot be read."""
    by_name: dict[str, OpSpec] = {}
    names: dict[str, OpSpec] = {}
    methods: dict[str, OpSpec] = {}
    functional: dict[str, OpSpec] = {}
    for spec in ops:
        _check(spec)
        _claim(by_name, spec.name, spec, "op")
        for name in spec.names():
            _claim(names, name, spec, "name")
        for name in spec.pg_methods:
            _claim(methods, name, spec, "ProcessGroup method")
        for name in spec.functional_ops:
            _claim(functional, name, spec, "functional op")
    return _Index(
        MappingProxyType(by_name),
        MappingProxyType({name: spec.name for name, spec in names.items()}),
        MappingProxyType(methods),
        MappingProxyType(functional),
    )


_NEEDS_PEER: tuple[Layout, ...] = ("rooted", "gather", "scatter", "p2p")


def _check(spec: OpSpec) -> None:
    """ValueError naming what of ``spec`` the hooks could not read."""
    layouts = [spec.layout, spec.functional_layout, *(lay for _, lay in spec.method_layouts)]
    bad = [lay for lay in layouts if lay not in LAYOUTS]
    if bad:
        raise ValueError(f"ops: {spec.name}: unknown layout {bad[0]!r}; layouts: {LAYOUTS}")
    if spec.peer is None and any(lay in _NEEDS_PEER for lay in layouts):
        raise ValueError(f"ops: {spec.name}: a rooted or point-to-point layout needs a peer")
    functional_peer = spec.functional_ops and spec.functional_layout in _NEEDS_PEER
    if functional_peer and spec.functional_peer_arg is None:
        raise ValueError(f"ops: {spec.name}: functional_peer_arg is needed for its layout")
    unknown = [m for m, _ in spec.method_layouts if m not in spec.pg_methods]
    unknown += [m for m in spec.pypg_lacks if m not in spec.pg_methods]
    if unknown:
        raise ValueError(f"ops: {spec.name}: {unknown[0]!r} is not one of its pg_methods")
    if not set(spec.backends) <= set(BACKENDS) or not set(spec.fidelities) <= set(FIDELITIES):
        raise ValueError(f"ops: {spec.name}: unknown backend or fidelity")


def by_name(name: str) -> OpSpec:
    """The op of canonical name ``name``; KeyError for another."""
    return _index().by_name[name]


def canonical(name: str) -> str:
    """The canonical name of any name of an op (``allreduce_`` -> ``all_reduce``); KeyError."""
    return _index().aliases[name]


def names() -> tuple[str, ...]:
    """Every canonical name, sorted."""
    return tuple(sorted(_index().by_name))


def aliases() -> dict[str, str]:
    """Every name of every op -> its canonical name."""
    return dict(_index().aliases)


def pg_methods(backend: str | None = None) -> dict[str, OpSpec]:
    """ProcessGroup method -> its op: every method, or those ``backend``'s group implements."""
    index = _index()
    if backend is None:
        return dict(index.pg_methods)
    return {m: spec for spec in index.by_name.values() for m in spec.runs_on(backend)}


def functional_ops() -> dict[str, OpSpec]:
    """Functional op name (in each of FUNCTIONAL_NAMESPACES) -> its op."""
    return dict(_index().functional_ops)
