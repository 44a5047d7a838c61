"""Where collectives are seen: patched ProcessGroup methods and functional-collective ops.

Why not a TorchDispatchMode over ``c10d.*``/``_c10d_functional.*``: a mode sees every aten op,
and even a mode that ignores all but the c10d ops cost ~65 us per ``dist.all_reduce`` on the
fake backend (boxing the ProcessGroup/Work script objects into Python), ~5x the bare call;
a Python kernel on the ops' Autograd key measured the same and would replace torch's own
autograd kernels of the functional ops. Instead, while a fake world is active:

* every collective method of ``ProcessGroup`` (the C++ class behind the fake backend and any
  other C++ backend) and of fakedist's ``PyProcessGroup`` is wrapped; every
  ``torch.distributed`` collective, sync or async, ends in one of these calls;
* the ``torch.ops._c10d_functional`` ops (``c10d_functional`` before torch 2.3) get a Python
  kernel on the BackendSelect dispatch key (torch 2.4+, see :func:`_functional_kernel`): it
  runs once per call on real tensors -- eager (DTensor/TP, ``_functional_collectives``), from
  a ``torch.compile`` graph (any backend, fullgraph or not), a ``make_fx`` graph or a
  ``torch.export`` program -- and never for tracing with fake tensors. The op packets are
  left alone, so dynamo traces them as usual. Before torch 2.4 (no keyset kernels) the
  packets are wrapped instead (:class:`_RecordedPacket`): eager calls and graphs that call
  the packet (dynamo's, run by the ``eager`` backend) are recorded; graphs that call the op
  overload (inductor, make_fx, export) are not, unless the op reaches a Python
  ProcessGroup's methods (2.1-2.2's fake backend), which record it;
* DistributedDataParallel's comm-hook entry points, so DDP trains on the ``fake`` backend
  (:mod:`fakedist.backends.fake_ddp`); its gradient all-reduce is then recorded.

Calls nested inside a recorded call (a functional op reaching PyProcessGroup through the C++
trampoline, torch 2.13's ``all_gather_single`` reaching ``_allgather_base``) are not counted
twice. Not seen: collectives issued from C++ through ``ProcessGroup`` (DDP's parameter
broadcast at construction on a C++ backend; its reducer under a built-in C++ comm hook).
Method names are feature-detected: those a torch lacks are skipped.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable
from typing import Any

from torch import Tensor

from fakedist.backends import fake, fake_ddp
from fakedist.comms import ALIASES, CommLog
from fakedist.faults import FaultSchedule, make_error

# ProcessGroup method -> extractor kind. 2.13 renamed _allgather_base/_reduce_scatter_base/
# alltoall_base to all_gather_single/reduce_scatter_single/all_to_all_single (old names kept).
PG_METHODS: dict[str, str] = {
    "allreduce": "first",
    "allreduce_coalesced": "first",
    "broadcast": "root_src",
    "reduce": "root_dst",
    "allgather": "second",
    "allgather_coalesced": "second",
    "_allgather_base": "second",
    "all_gather_single": "second",
    "allgather_into_tensor_coalesced": "second",
    "all_gather_single_coalesced": "second",
    "gather": "gather",
    "scatter": "scatter",
    "reduce_scatter": "second",
    "_reduce_scatter_base": "second",
    "reduce_scatter_single": "second",
    "reduce_scatter_tensor_coalesced": "second",
    "reduce_scatter_single_coalesced": "second",
    "alltoall": "second",
    "alltoall_base": "second",
    "all_to_all_single": "second",
    "send": "send",
    "recv": "recv",
    "recv_anysource": "recv",
    "barrier": "none",
}
# functional op -> (extractor kind, index of its peer argument or -1)
FUNCTIONAL_OPS: dict[str, tuple[str, int]] = {
    "all_reduce": ("first", -1),
    "all_reduce_": ("first", -1),
    "all_reduce_coalesced": ("first", -1),
    "all_reduce_coalesced_": ("first", -1),
    "all_gather_into_tensor": ("first", -1),
    "all_gather_into_tensor_out": ("first", -1),
    "all_gather_into_tensor_coalesced": ("first", -1),
    "reduce_scatter_tensor": ("first", -1),
    "reduce_scatter_tensor_coalesced": ("first", -1),
    "all_to_all_single": ("first", -1),
    "broadcast": ("root_src", 1),
    "broadcast_": ("root_src", 1),
    "isend": ("send", 1),
    "irecv": ("recv", 1),
}
FUNCTIONAL_NAMESPACES = ("_c10d_functional", "c10d_functional")  # the latter: torch < 2.3


def _flat(x: Any, out: list[Any]) -> list[Any]:
    if isinstance(x, (list, tuple)):
        for y in x:
            _flat(y, out)
    elif isinstance(x, Tensor):
        out.append(x)
    return out


def _group_name(pg: Any) -> str:
    """The group's name: ``pg.group_name``, else the name torch.distributed registered for
    it, else "" (a group torch does not know).

    torch 2.1's ProcessGroup has no ``group_name``; from 2.2 reading it raises
    RuntimeError("ProcessGroup name not set") where torch never set it on a Python
    ProcessGroup subclass (2.2's fake backend; pypg before torch 2.5).
    """
    try:
        return str(pg.group_name)
    except (AttributeError, RuntimeError):
        import torch.distributed.distributed_c10d as c10d

        return str(c10d._world.pg_names.get(pg, ""))


class Recorder:
    """The sink of the hooks while one world is active: its CommLog and FaultSchedule."""

    def __init__(
        self,
        log: CommLog,
        faults: FaultSchedule,
        *,
        record: bool,
        native_faults: bool,
        uniform: bool = False,
    ) -> None:
        self.log = log
        self.uniform = uniform  # the fake backend's data semantics made uniform (backends.fake)
        self.faults = faults
        self.record_calls = record
        self.native_faults = native_faults  # torch's error_on_collective does the failing
        self.depth = 0
        self.calls = 0
        self._groups: dict[Any, tuple[Any, str, tuple[int, ...], int]] = {}
        self._last: tuple[Any, str, tuple[int, ...], int] = (object(), "", (), 0)

    def group_info(self, group: Any) -> tuple[Any, str, tuple[int, ...], int]:
        """(group, name, global ranks, this rank's group rank); cached per group object.

        ``group`` is a ProcessGroup, a group name (``_c10d_functional`` ops) or the
        ``(tag, ranks, group_size)`` by which ``c10d_functional`` ops name it (torch < 2.3).
        """
        by_value = isinstance(group, (str, tuple))
        key: Any = group if by_value else id(group)
        info = self._groups.get(key)
        if info is not None and (by_value or info[0] is group):
            return info
        import torch.distributed as dist
        import torch.distributed.distributed_c10d as c10d

        if isinstance(group, tuple):  # ranks may list several groups: torch picks this rank's
            pg = c10d._find_or_create_pg_by_ranks_and_tag(group[0], list(group[1]), group[2])
        else:
            pg = c10d._resolve_process_group(group) if isinstance(group, str) else group
        name = group if isinstance(group, str) else _group_name(pg)
        ranks = tuple(dist.get_process_group_ranks(pg))
        info = (group, name, ranks, pg.rank())
        self._groups[key] = info
        return info

    def on_call(
        self,
        op: str,
        group: Any,
        kind: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        functional: bool,
        peer_index: int,
    ) -> None:
        """Record one call and raise the fault due for it, if any."""
        if group is self._last[0]:
            _, name, ranks, me = self._last
        else:
            self._last = info = self.group_info(group)
            _, name, ranks, me = info
        tensors: list[Any] = []
        src = dst = None
        opts: Any = None
        nbytes = 0
        if kind == "first":
            first = args[0] if args else kwargs.get("tensors")
            if type(first) is list and len(first) == 1 and type(first[0]) is Tensor:
                tensors = first  # the common case: dist.all_reduce(t)
            else:
                _flat(first, tensors)
            opts = args[1] if len(args) > 1 else None
        elif kind == "second":
            _flat(args[1], tensors)
            opts = args[-1] if len(args) > 2 else None
        elif kind in ("root_src", "root_dst", "gather", "scatter"):
            at = 2 if kind in ("gather", "scatter") else 1
            opts = args[at] if len(args) > at else kwargs.get("opts")
            root: int = args[peer_index] if functional else getattr(opts, "rootRank", opts)
            if kind == "root_src":
                src = ranks[root]
                _flat(args[0], tensors)
            elif kind == "scatter":
                src = ranks[root]
                _flat(args[1] if root == me else args[0], tensors)
            else:
                dst = ranks[root]
                _flat(args[0] if kind == "root_dst" else args[1], tensors)
        elif kind in ("send", "recv"):
            _flat(args[0], tensors)
            peer = args[1] if len(args) > 1 and not isinstance(args[1], str) else None
            if peer is not None and op != "recv_anysource":
                peer = peer if functional else ranks[peer]
                if kind == "send":
                    dst = peer
                else:
                    src = peer
            elif op == "recv_anysource":
                src = None
        else:  # barrier
            opts = kwargs.get("opts", args[0] if args else None)
        if kind != "recv" and not (kind in ("root_src", "scatter") and src != ranks[me]):
            nbytes = sum([t.nbytes for t in tensors])
        canonical = ALIASES[op]
        fault = None
        if self.faults.faults and not self.native_faults:
            fault = self.faults.check(canonical, name, ranks)
        elif self.native_faults:
            fault = "fake"
        self.calls += 1
        if self.record_calls:
            self.log._raw.append(
                (
                    canonical,
                    functional,
                    name,
                    ranks,
                    tuple([t.shape for t in tensors]),
                    tuple([t.dtype for t in tensors]),
                    nbytes,
                    src,
                    dst,
                    True if functional else _async_flag(opts),
                    self.faults.step,
                    fault,
                )
            )
        if fault is not None and not self.native_faults:
            raise make_error(fault, canonical, name, self.calls)


def _async_flag(opts: Any) -> Any:
    """The ``async_op`` argument of the ``torch.distributed`` function that called the
    ProcessGroup method; else the options object (its ``asyncOp`` is read later), or None.

    The caller's argument comes first: torch 2.4 has ``ReduceScatterOptions.asyncOp`` but
    leaves it at its default (True) for synchronous calls.
    """
    # _async_flag <- on_call [<- ThreadRouter.on_call] <- wrapper <- torch.distributed function
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


class ThreadRouter:
    """Sits on the recorder stack while ranks run as threads: each call goes to the recorder
    of the calling thread. A thread without one (the main thread) passes calls through."""

    uniform = False  # rank threads run a real (threaded) backend

    def __init__(self) -> None:
        self._local = threading.local()

    def bind(self, recorder: Recorder | None) -> None:
        self._local.recorder = recorder

    def bound(self) -> Recorder | None:
        recorder: Recorder | None = getattr(self._local, "recorder", None)
        return recorder

    @property
    def depth(self) -> int:
        recorder = self.bound()
        return 1 if recorder is None else recorder.depth  # 1: "nested", so not recorded

    @depth.setter
    def depth(self, value: int) -> None:
        recorder = self.bound()
        if recorder is not None:
            recorder.depth = value

    def on_call(self, *args: Any) -> None:
        recorder = self.bound()
        if recorder is not None:
            recorder.on_call(*args)


_ACTIVE: list[Recorder | ThreadRouter] = []
_PATCHED: list[tuple[Any, str, Any]] = []


def _pg_wrapper(name: str, kind: str, orig: Any) -> Callable[..., Any]:
    adjusts = name in fake.UNIFORM_METHODS

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _ACTIVE or _ACTIVE[-1].depth:
            return orig(self, *args, **kwargs)
        rec = _ACTIVE[-1]
        rec.on_call(name, self, kind, args, kwargs, False, -1)
        if adjusts and rec.uniform:  # the fake backend, the same on every torch
            args = fake.uniform_args(name, self, args)
        rec.depth += 1
        try:
            work = orig(self, *args, **kwargs)
        finally:
            rec.depth -= 1
        if fake_ddp.HOOK_CALLS[0]:  # in a DDP comm hook on the fake backend: a real future
            return fake_ddp.completed_work(args)
        return work

    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = getattr(orig, "__doc__", None)
    wrapper.__fakedist_hook__ = True  # type: ignore[attr-defined]  # for the leak check
    return wrapper


_KEY = "BackendSelect"


def _functional_kernel(name: str, overload: Any) -> Callable[..., Any]:
    """A kernel for functional op ``name`` on the BackendSelect dispatch key.

    BackendSelect sits below the Python key (FakeTensor, proxy and functional tensors, export,
    dynamo and make_fx tracing) and above the CPU/CUDA kernels, and is a fallthrough for every
    op without its own kernel: this one runs exactly once per call that executes on real
    tensors, whether eager, from a compiled graph (dynamo with any backend, inductor's
    generated code) or from a ``make_fx`` / ``torch.export`` graph. FakeTensorMode reaches it
    too, with FakeTensors, when it runs the op's meta kernel: those calls are not recorded.
    """
    import torch
    from torch._subclasses.fake_tensor import FakeTensor

    kind, peer = FUNCTIONAL_OPS[name]
    after = torch._C._dispatch_keyset_full_after(getattr(torch._C.DispatchKey, _KEY))

    def kernel(keyset: Any, *args: Any, **kwargs: Any) -> Any:
        first = _flat(args[0], [])
        if not _ACTIVE or _ACTIVE[-1].depth or (first and isinstance(first[0], FakeTensor)):
            return overload.redispatch(keyset & after, *args, **kwargs)
        rec = _ACTIVE[-1]
        group = kwargs["group_name"] if "group_name" in kwargs else args[-1]
        if type(group) is int:  # c10d_functional (torch < 2.3): ..., tag, ranks, group_size
            group = (args[-3], tuple(args[-2]), group)
        rec.on_call(name, group, kind, args, kwargs, True, peer)
        rec.depth += 1
        try:
            result = overload.redispatch(keyset & after, *args, **kwargs)
            if isinstance(rec, Recorder) and rec.uniform and name in fake.FUNCTIONAL_UNIFORM:
                again = functools.partial(overload.redispatch, keyset & after, **kwargs)
                rank = rec.group_info(group)[3]
                result = fake.uniform_functional(name, args, result, again, rank)
            return result
        finally:
            rec.depth -= 1

    return kernel


class _RecordedPacket:
    """Stands in for a functional op packet where torch cannot take a keyset kernel
    (``Library.impl`` takes ``with_keyset`` from torch 2.4): records calls on real tensors,
    delegates the rest. While dynamo traces it only calls the packet, so the op lands in the
    graph: a graph that calls the packet when it runs is recorded, one that calls the op
    overload (inductor, make_fx, export) is not."""

    def __init__(self, name: str, packet: Any) -> None:
        from torch._subclasses.fake_tensor import FakeTensor

        self._name = name
        self._packet = packet
        self._kind, self._peer = FUNCTIONAL_OPS[name]
        self._fake = FakeTensor

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._packet, attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _compiling() or not _ACTIVE or _ACTIVE[-1].depth:
            return self._packet(*args, **kwargs)
        first = _flat(args[0], []) if args else []
        if first and isinstance(first[0], self._fake):  # make_fx / export tracing
            return self._packet(*args, **kwargs)
        rec = _ACTIVE[-1]
        group = kwargs["group_name"] if "group_name" in kwargs else args[-1]
        if type(group) is int:  # c10d_functional (torch < 2.3): ..., tag, ranks, group_size
            group = (args[-3], tuple(args[-2]), group)
        rec.on_call(self._name, group, self._kind, args, kwargs, True, self._peer)
        rec.depth += 1
        try:
            result = self._packet(*args, **kwargs)
            if isinstance(rec, Recorder) and rec.uniform and self._name in fake.FUNCTIONAL_UNIFORM:
                again = functools.partial(self._packet, **kwargs)
                rank = rec.group_info(group)[3]
                result = fake.uniform_functional(self._name, args, result, again, rank)
            return result
        finally:
            rec.depth -= 1


def records_graph_calls() -> bool:
    """Whether every functional collective called from a compiled or traced graph is recorded:
    with keyset kernels (``Library.impl(with_keyset=...)``, torch 2.4+). Before, only those
    made through the op packet are (see :class:`_RecordedPacket`)."""
    import torch

    return "with_keyset" in inspect.signature(torch.library.Library.impl).parameters


def _never() -> bool:
    return False


# Read as a module global by _RecordedPacket: dynamo folds it to True only when it reaches the
# function through a global (torch 2.2 does not through an instance attribute).
_compiling: Callable[[], bool] = _never


def _find_is_compiling() -> Callable[[], bool]:
    """``torch.compiler.is_compiling`` (torch 2.3+), else ``torch._dynamo.is_compiling``."""
    import torch

    found = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if found is None:
        import torch._dynamo

        found = getattr(torch._dynamo, "is_compiling", None)
    return found if found is not None else _never


def install(recorder: Recorder | ThreadRouter) -> None:
    """Activate ``recorder`` (for the calling thread only while a ThreadRouter is active);
    patch the entry points on first use."""
    if isinstance(recorder, Recorder) and _ACTIVE and isinstance(_ACTIVE[-1], ThreadRouter):
        _ACTIVE[-1].bind(recorder)
        return
    _ACTIVE.append(recorder)
    if _PATCHED:
        return
    import torch
    import torch.distributed as dist

    import fakedist.backends.pypg  # noqa: F401  (its class must exist before the walk)

    base = dist.ProcessGroup
    subclasses = _subclasses(base)
    for name, kind in PG_METHODS.items():
        orig = base.__dict__.get(name)
        if orig is None:
            continue
        # A Python subclass that does not define `name` must keep seeing the C++ function:
        # pybind's trampoline treats any Python attribute as an override, and would call the
        # wrapper again from C++ forever. Shadow it with the original on those subclasses.
        for sub in subclasses:
            mro = sub.__mro__[: sub.__mro__.index(base)]
            if not any(name in k.__dict__ for k in mro):
                _PATCHED.append((sub, name, _MISSING))
                setattr(sub, name, orig)
        _PATCHED.append((base, name, orig))
        setattr(base, name, _pg_wrapper(name, kind, orig))
    for sub in subclasses:  # Python implementations (fakedist's pypg, users' own groups)
        for name, kind in PG_METHODS.items():
            own = sub.__dict__.get(name)
            if (
                own is not None
                and own is not base.__dict__.get(name)
                and callable(own)
                and not _is_cpp(own)
            ):
                _PATCHED.append((sub, name, own))
                setattr(sub, name, _pg_wrapper(name, kind, own))
    keyset_kernels = records_graph_calls()
    global _compiling
    _compiling = _find_is_compiling()
    for ns_name in FUNCTIONAL_NAMESPACES:
        ns = getattr(torch.ops, ns_name)
        lib: Any = None
        for name in FUNCTIONAL_OPS:
            try:
                packet = getattr(ns, name)
            except (AttributeError, RuntimeError):  # op absent on this torch
                continue
            if not keyset_kernels:  # torch < 2.4
                _PATCHED.append((ns, name, packet))
                setattr(ns, name, _RecordedPacket(name, packet))
                continue
            if lib is None:
                lib = torch.library.Library(ns_name, "IMPL")
                _PATCHED.append((lib, ns_name, _LIBRARY))
            lib.impl(name, _functional_kernel(name, packet.default), _KEY, with_keyset=True)
    _patch_ddp()


def _patch_ddp() -> None:
    """Wrap the DistributedDataParallel methods that make DDP train on the ``fake`` backend
    (see :mod:`fakedist.backends.fake_ddp`)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    from fakedist.backends import fake_ddp

    for name, wrap in fake_ddp.PATCHES.items():
        orig = DDP.__dict__.get(name)
        if orig is None:
            continue
        patched = functools.wraps(orig)(wrap(orig))
        patched.__fakedist_hook__ = True  # type: ignore[attr-defined]  # for the leak check
        _PATCHED.append((DDP, name, orig))
        setattr(DDP, name, patched)


def uninstall(recorder: Recorder | ThreadRouter) -> None:
    """Deactivate ``recorder``; restore the originals when no recorder is left."""
    if isinstance(recorder, Recorder):
        recorder._groups.clear()
        recorder._last = (object(), "", (), 0)
        router = _ACTIVE[-1] if _ACTIVE else None
        if isinstance(router, ThreadRouter) and router.bound() is recorder:
            router.bind(None)
            return
    if recorder in _ACTIVE:
        _ACTIVE.remove(recorder)
    if not _ACTIVE:
        _restore()


def reset() -> None:
    """Deactivate every recorder and restore every original (the plugin's leak check)."""
    _ACTIVE.clear()
    _restore()


def _restore() -> None:
    while _PATCHED:
        owner, name, orig = _PATCHED.pop()
        if orig is _LIBRARY:
            owner._destroy()
        elif orig is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, orig)


_MISSING = object()
_LIBRARY = object()  # marks a torch.library.Library of fakedist's kernels, destroyed on restore


def _subclasses(cls: type) -> list[type]:
    out: list[type] = []
    subs: list[type] = cls.__subclasses__()
    for sub in subs:
        out.append(sub)
        out.extend(_subclasses(sub))
    return list(dict.fromkeys(out))


def _is_cpp(obj: Any) -> bool:
    return type(obj).__name__ in ("instancemethod", "builtin_function_or_method")
