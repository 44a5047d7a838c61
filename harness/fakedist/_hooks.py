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
Which entry points there are, and how each call's arguments are read, come from the op
table (:mod:`fakedist.ops`, read by :mod:`fakedist._readers`); names this torch lacks are skipped.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable
from typing import Any

from fakedist import ops
from fakedist._readers import (
    Site,
    call_site,
    caller_async_op,
    flat,
    functional_group,
    functional_sites,
    pg_sites,
    reduce_op,
)
from fakedist.backends import fake, fake_ddp
from fakedist.comms import CommLog, RawRecord
from fakedist.faults import FaultSchedule, make_error

FUNCTIONAL_NAMESPACES = ops.FUNCTIONAL_NAMESPACES


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
        self, site: Site, group: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Record one call and raise the fault due for it, if any."""
        if group is self._last[0]:
            _, name, ranks, me = self._last
        else:
            self._last = info = self.group_info(group)
            _, name, ranks, me = info
        tensors, peer, opts = site.read(args, kwargs, ranks, me, site.peer_arg)
        nbytes = 0
        if site.payload and (not site.root_only or peer == ranks[me]):
            nbytes = sum([t.nbytes for t in tensors])
        canonical = site.op
        fault = None
        if self.faults.faults and not self.native_faults:
            fault = self.faults.check(canonical, name, ranks)
        elif self.native_faults:
            fault = "fake"
        self.calls += 1
        if self.record_calls:
            functional = site.functional
            is_src = site.peer_is_src
            self.log._raw.append(
                _raw_record(  # fields in RawRecord's order, without its __new__'s cost
                    (
                        canonical,
                        functional,
                        name,
                        ranks,
                        tuple([t.shape for t in tensors]),
                        tuple([t.dtype for t in tensors]),
                        nbytes,
                        peer if is_src else None,
                        None if is_src else peer,
                        True if functional else caller_async_op(opts),
                        self.faults.step,
                        fault,
                        call_site() if self.log.call_sites else None,
                        reduce_op(site, args, opts) if site.reduces else None,
                    )
                )
            )
        if fault is not None and not self.native_faults:
            raise make_error(fault, canonical, name, self.calls)


_raw_record: Callable[[tuple[Any, ...]], RawRecord] = functools.partial(tuple.__new__, RawRecord)


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


def _pg_wrapper(site: Site, orig: Any) -> Callable[..., Any]:
    name = site.name
    adjusts = name in fake.UNIFORM_METHODS

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _ACTIVE or _ACTIVE[-1].depth:
            return orig(self, *args, **kwargs)
        rec = _ACTIVE[-1]
        rec.on_call(site, self, args, kwargs)
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


def _call_functional(
    rec: Recorder | ThreadRouter,
    site: Site,
    call: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Record functional op ``site`` and make it with ``call``; on the fake backend, make its
    result uniform (:func:`fakedist.backends.fake.uniform_functional`)."""
    group = functional_group(args, kwargs)
    rec.on_call(site, group, args, kwargs)
    rec.depth += 1
    try:
        result = call(*args, **kwargs)
        if isinstance(rec, Recorder) and rec.uniform and site.name in fake.FUNCTIONAL_UNIFORM:
            again = functools.partial(call, **kwargs)
            rank = rec.group_info(group)[3]
            result = fake.uniform_functional(site.name, args, result, again, rank)
        return result
    finally:
        rec.depth -= 1


def _functional_kernel(site: Site, overload: Any) -> Callable[..., Any]:
    """A kernel for functional op ``site`` on the BackendSelect dispatch key.

    BackendSelect sits below the Python key (FakeTensor, proxy and functional tensors, export,
    dynamo and make_fx tracing) and above the CPU/CUDA kernels, and is a fallthrough for every
    op without its own kernel: this one runs exactly once per call that executes on real
    tensors, whether eager, from a compiled graph (dynamo with any backend, inductor's
    generated code) or from a ``make_fx`` / ``torch.export`` graph. FakeTensorMode reaches it
    too, with FakeTensors, when it runs the op's meta kernel: those calls are not recorded.
    """
    import torch
    from torch._subclasses.fake_tensor import FakeTensor

    after = torch._C._dispatch_keyset_full_after(getattr(torch._C.DispatchKey, _KEY))

    def kernel(keyset: Any, *args: Any, **kwargs: Any) -> Any:
        rest = keyset & after
        first = flat(args[0], [])
        if not _ACTIVE or _ACTIVE[-1].depth or (first and isinstance(first[0], FakeTensor)):
            return overload.redispatch(rest, *args, **kwargs)
        call = functools.partial(overload.redispatch, rest)
        return _call_functional(_ACTIVE[-1], site, call, args, kwargs)

    return kernel


class _RecordedPacket:
    """Stands in for a functional op packet where torch cannot take a keyset kernel
    (``Library.impl`` takes ``with_keyset`` from torch 2.4): records calls on real tensors,
    delegates the rest. While dynamo traces it only calls the packet, so the op lands in the
    graph: a graph that calls the packet when it runs is recorded, one that calls the op
    overload (inductor, make_fx, export) is not."""

    def __init__(self, site: Site, packet: Any) -> None:
        from torch._subclasses.fake_tensor import FakeTensor

        self._site = site
        self._packet = packet
        self._fake = FakeTensor

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._packet, attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _compiling() or not _ACTIVE or _ACTIVE[-1].depth:
            return self._packet(*args, **kwargs)
        first = flat(args[0], []) if args else []
        if first and isinstance(first[0], self._fake):  # make_fx / export tracing
            return self._packet(*args, **kwargs)
        return _call_functional(_ACTIVE[-1], self._site, self._packet, args, kwargs)


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

    _patch_pg_methods(dist.ProcessGroup)
    _patch_functional_ops(torch)
    _patch_ddp()


def _patch_pg_methods(base: type) -> None:
    """Wrap the collective methods of ProcessGroup and of its Python subclasses."""
    subclasses = _subclasses(base)
    sites = pg_sites()
    for name, site in sites.items():
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
        setattr(base, name, _pg_wrapper(site, orig))
    for sub in subclasses:  # Python implementations (fakedist's pypg, users' own groups)
        for name, site in sites.items():
            own = sub.__dict__.get(name)
            if (
                own is not None
                and own is not base.__dict__.get(name)
                and callable(own)
                and not _is_cpp(own)
            ):
                _PATCHED.append((sub, name, own))
                setattr(sub, name, _pg_wrapper(site, own))


def _patch_functional_ops(torch: Any) -> None:
    """Record the functional ops: a keyset kernel each (torch 2.4+), else a wrapped packet."""
    keyset_kernels = records_graph_calls()
    global _compiling
    _compiling = _find_is_compiling()
    sites = functional_sites()
    for ns_name in FUNCTIONAL_NAMESPACES:
        ns = getattr(torch.ops, ns_name)
        lib: Any = None
        for name, site in sites.items():
            try:
                packet = getattr(ns, name)
            except (AttributeError, RuntimeError):  # op absent on this torch
                continue
            if not keyset_kernels:  # torch < 2.4
                _PATCHED.append((ns, name, packet))
                setattr(ns, name, _RecordedPacket(site, packet))
                continue
            if lib is None:
                lib = torch.library.Library(ns_name, "IMPL")
                _PATCHED.append((lib, ns_name, _LIBRARY))
            lib.impl(name, _functional_kernel(site, packet.default), _KEY, with_keyset=True)


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


def leftover() -> str | None:
    """What of the hooks is still installed, in a few words (the plugin's leak check); None
    when nothing is: no active recorder, nothing patched."""
    patched = _patched_names()
    if not _ACTIVE and not _PATCHED and not patched:
        return None
    shown = ", ".join(patched[:3]) + (f" and {len(patched) - 3} more" if len(patched) > 3 else "")
    return f"{len(_ACTIVE)} active recorder(s), methods still patched: {shown or 'none'}"


def _patched_names() -> list[str]:
    """Names of ProcessGroup methods / functional ops still replaced by fakedist's hooks, as
    torch's objects show them."""
    out: list[str] = []
    dist = sys.modules.get("torch.distributed")
    pg = getattr(dist, "ProcessGroup", None)
    if pg is not None:
        out += [n for n, v in vars(pg).items() if getattr(v, "__fakedist_hook__", False)]
    torch = sys.modules.get("torch")
    if torch is not None:
        for ns_name in FUNCTIONAL_NAMESPACES:
            ns = getattr(torch.ops, ns_name, None)
            for name in ops.functional_ops():
                if isinstance(getattr(ns, "__dict__", {}).get(name), _RecordedPacket):
                    out.append(f"{ns_name}.{name}")
    return out


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
