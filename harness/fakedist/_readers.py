"""How the hooks read one call: its tensors, root or peer, group and async flag.

One reader per layout of :mod:`fakedist.ops`. A reader takes ``(args, kwargs, ranks, me,
peer_arg)``: the call's arguments, the global ranks of its group, this rank's group rank and,
for a functional op, the index of the argument that holds its root or peer. It returns
``(tensors, peer, opts)``: the tensors to record, the global rank of the root or peer (None
where there is none) and the options object (None where the call has none). A :class:`Site`
ties each patched entry point to its op and reader. Everything here runs on every recorded
call: keep it lean.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from torch import Tensor

from fakedist import ops
from fakedist.ops import Layout

Read = tuple[list[Any], Any, Any]
Reader = Callable[[tuple[Any, ...], dict[str, Any], tuple[int, ...], int, Any], Read]


def flat(x: Any, out: list[Any]) -> list[Any]:
    """Append every tensor of ``x`` (a tensor or nested lists/tuples of them) to ``out``."""
    if isinstance(x, (list, tuple)):
        for y in x:
            flat(y, out)
    elif isinstance(x, Tensor):
        out.append(x)
    return out


# --------------------------------------------------------------------- ProcessGroup methods
def tensors(args: tuple[Any, ...], kwargs: dict[str, Any], ranks: Any, me: int, at: Any) -> Read:
    """``(tensors, opts)``; also every functional op without a peer (its input first)."""
    first = args[0] if args else kwargs.get("tensors")
    if type(first) is list and len(first) == 1 and type(first[0]) is Tensor:
        found = first  # the common case: dist.all_reduce(t)
    else:
        found = flat(first, [])
    return found, None, args[1] if len(args) > 1 else None


def outputs_inputs(
    args: tuple[Any, ...], kwargs: dict[str, Any], ranks: Any, me: int, at: Any
) -> Read:
    """``(outputs, inputs, ..., opts)``: the inputs."""
    return flat(args[1], []), None, args[-1] if len(args) > 2 else None


def rooted(args: tuple[Any, ...], kwargs: dict[str, Any], ranks: Any, me: int, at: Any) -> Read:
    """``(tensors, opts)``, the root in ``opts.rootRank`` (broadcast, reduce)."""
    opts = args[1] if len(args) > 1 else kwargs.get("opts")
    root = getattr(opts, "rootRank", opts)  # or the rank itself: pg.broadcast(tensor, root)
    return flat(args[0], []), ranks[root], opts


def gather(args: tuple[Any, ...], kwargs: dict[str, Any], ranks: Any, me: int, at: Any) -> Read:
    """``(outputs, inputs, opts)``, the root in ``opts.rootRank``: the inputs."""
    opts = args[2] if len(args) > 2 else kwargs.get("opts")
    return flat(args[1], []), ranks[getattr(opts, "rootRank", opts)], opts


def scatter(args: tuple[Any, ...], kwargs: dict[str, Any], ranks: Any, me: int, at: Any) -> Read:
    """``(outputs, inputs, opts)``: the inputs on the root, the outputs elsewhere."""
    opts = args[2] if len(args) > 2 else kwargs.get("opts")
    root = getattr(opts, "rootRank", opts)
    return flat(args[1] if root == me else args[0], []), ranks[root], opts


def p2p(args: tuple[Any, ...], kwargs: dict[str, Any], ranks: Any, me: int, at: Any) -> Read:
    """``(tensors, peer, tag)``, the peer a group rank."""
    peer = args[1] if len(args) > 1 and not isinstance(args[1], str) else None
    return flat(args[0], []), None if peer is None else ranks[peer], None


def anysource(args: tuple[Any, ...], kwargs: dict[str, Any], ranks: Any, me: int, at: Any) -> Read:
    """``(tensors, tag)``: a receive from any rank."""
    return flat(args[0], []), None, None


def none(args: tuple[Any, ...], kwargs: dict[str, Any], ranks: Any, me: int, at: Any) -> Read:
    """``(opts)``: no tensors (barrier)."""
    return [], None, kwargs.get("opts", args[0] if args else None)


# --------------------------------------------------------------------------- functional ops
def functional_rooted(
    args: tuple[Any, ...], kwargs: dict[str, Any], ranks: Any, me: int, at: Any
) -> Read:
    """``(tensor, root, group, ...)``, the root a group rank at argument ``at``."""
    return flat(args[0], []), ranks[args[at]], None


def functional_p2p(
    args: tuple[Any, ...], kwargs: dict[str, Any], ranks: Any, me: int, at: Any
) -> Read:
    """``(tensor, peer, group, ...)``, the peer a global rank at argument ``at``."""
    peer = args[at] if len(args) > at and not isinstance(args[at], str) else None
    return flat(args[0], []), peer, None


def functional_group(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """How a functional op names its group: a group name, or (torch < 2.3, ``c10d_functional``
    ops, whose last arguments are tag, ranks, group_size) ``(tag, ranks, group_size)``."""
    group = kwargs["group_name"] if "group_name" in kwargs else args[-1]
    if type(group) is int:
        group = (args[-3], tuple(args[-2]), group)
    return group


PG_READERS: dict[Layout, Reader] = {
    "tensors": tensors,
    "outputs_inputs": outputs_inputs,
    "rooted": rooted,
    "gather": gather,
    "scatter": scatter,
    "p2p": p2p,
    "anysource": anysource,
    "none": none,
}
FUNCTIONAL_READERS: dict[Layout, Reader] = {
    "tensors": tensors,
    "rooted": functional_rooted,
    "p2p": functional_p2p,
}


def reader(layout: Layout, functional: bool) -> Reader:
    """The reader of ``layout``; ValueError for one the calls cannot have."""
    table = FUNCTIONAL_READERS if functional else PG_READERS
    try:
        return table[layout]
    except KeyError:
        kind = "functional op" if functional else "ProcessGroup method"
        raise ValueError(f"no reader for a {kind} of layout {layout!r}") from None


class Site(NamedTuple):
    """One entry point the hooks patch (a ProcessGroup method or a functional op), as its
    op's :class:`~fakedist.ops.OpSpec` says to read it."""

    name: str  # the method or functional op
    op: str  # canonical op
    read: Reader
    functional: bool
    peer_arg: int | None  # functional ops: the argument that holds the root or peer
    peer_is_src: bool  # the root or peer is recorded as src (else dst)
    payload: bool  # bytes are counted ...
    root_only: bool  # ... on the root (src) rank only
    reduces: bool  # the call carries a reduce op (see reduce_op)


def _site(name: str, spec: ops.OpSpec, functional: bool) -> Site:
    layout = spec.functional_layout if functional else spec.method_layout(name)
    return Site(
        name,
        spec.name,
        reader(layout, functional),
        functional,
        spec.functional_peer_arg,
        spec.peer == "src",
        spec.bytes != "zero",
        spec.bytes == "at_root",
        spec.reduces,
    )


def pg_sites() -> dict[str, Site]:
    """Every ProcessGroup method the hooks patch (where this torch has it), from the table."""
    return {name: _site(name, spec, False) for name, spec in ops.pg_methods().items()}


def functional_sites() -> dict[str, Site]:
    """Every functional op the hooks record (where this torch has it), from the table."""
    return {name: _site(name, spec, True) for name, spec in ops.functional_ops().items()}


def reduce_op(site: Site, args: tuple[Any, ...], opts: Any) -> Any:
    """The reduce op of a reducing call, as handed over (a ``ReduceOp``, or a functional op's
    string such as ``"sum"``); :func:`fakedist.comms.reduce_name` names it later."""
    if site.functional:
        return args[1] if len(args) > 1 else None
    return getattr(opts, "reduceOp", None)


# ------------------------------------------------------------------------------- async flag
def caller_async_op(opts: Any) -> Any:
    """The call's async flag: ``async_op`` of the ``torch.distributed`` function
    (``distributed_c10d.py``) that called the patched ProcessGroup method, read from its
    frame's locals; else ``opts`` where it has ``asyncOp`` (read later, off the hot path);
    else None.

    The hooks' only read of a torch frame, because not every release tells the method: torch
    2.4 has ``ReduceScatterOptions.asyncOp`` but leaves it at its default (True) for
    synchronous calls; 2.13 sets ``opts.asyncOp`` for every collective that takes options
    (the fallback here). Read first on every release, the frame gives one rule everywhere.
    tests/unit/test_hooks_frame.py checks on the installed torch that it still finds the
    flag, directly and through a ThreadRouter.
    """
    # Called by Recorder.on_call only: this <- on_call [<- ThreadRouter.on_call] <- the
    # method's wrapper (fakedist._hooks) <- its caller. Frame 3 is the caller, or the
    # wrapper when a ThreadRouter sits between.
    frame: Any = sys._getframe(3)
    for _ in range(2):
        if frame is None:
            break
        if frame.f_code.co_filename.endswith("distributed_c10d.py"):
            value = frame.f_locals.get("async_op")
            if isinstance(value, bool):
                return value
            break
        frame = frame.f_back
    return opts if hasattr(opts, "asyncOp") else None


# Modules between the user's code and the hooks: fakedist, torch, and the wrappers torch
# puts around its functions (typing_extensions.deprecated on torch 2.13's deprecated ones).
_NOT_USER = ("fakedist", "torch", "typing_extensions", "warnings", "functools", "contextlib")


def call_site() -> str | None:
    """``file:line`` of the innermost frame outside fakedist, torch and their wrappers: where
    the user's code made the call being recorded (with ``CommLog.call_sites``: a stack walk)."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.split(".", 1)[0] not in _NOT_USER:
            return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return None
