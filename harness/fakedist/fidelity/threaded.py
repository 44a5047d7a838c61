"""``threaded`` fidelity: every rank runs the body in its own thread over PyTorch's threaded
process group (``torch.testing._internal.distributed.multi_threaded_pg``), with real results.

That group implements the collectives PyTorch's ``MultiThreadedTestCase`` needs, not all:
an op it lacks (send/recv, reduce, ...) makes the test skip with the op named. A rank that
fails wakes the others out of their collectives (the group's own termination event); a rank
still running at the timeout is reported with the collective it waits in, then woken.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from fakedist import ops
from fakedist.fidelity.outcome import (
    FidelitySetupError,
    FidelityUnsupported,
    RankOutcome,
    describe_exception,
)
from fakedist.fidelity.where import from_thread
from fakedist.isolation import RANK_PREFIX

if TYPE_CHECKING:
    from fakedist.fidelity.plan import Plan

STOP_WAIT = 2.0  # seconds to wait for a woken thread


def _threaded_pg() -> Any:
    """The threaded-PG module whose creator is registered as the ``threaded`` backend.

    Importing the module registers it. When the module has since left ``sys.modules`` (pytest's
    pytester restores it after each in-process run) a fresh import would create a second
    ProcessLocalGroup class next to the registered one; use the registered module's globals.
    """
    import torch.distributed as dist

    plugin = getattr(dist.Backend, "_plugins", {}).get("THREADED")
    creator = getattr(plugin, "creator_fn", None)
    names = ("ProcessLocalGroup", "_install_threaded_pg", "_uninstall_threaded_pg")
    if creator is not None and all(n in creator.__globals__ for n in names):
        return SimpleNamespace(**{n: creator.__globals__[n] for n in names})
    from torch.testing._internal.distributed import multi_threaded_pg

    return multi_threaded_pg


def supported_methods(group_cls: type) -> frozenset[str]:
    """ProcessGroup methods the threaded group implements (read before hooks patch it)."""
    import torch.distributed as dist

    mro = group_cls.__mro__[: group_cls.__mro__.index(dist.ProcessGroup)]
    return frozenset(name for name in ops.pg_methods() if any(name in k.__dict__ for k in mro))


def _missing_methods(group_cls: type) -> list[str]:
    """Methods to refuse: those whose op no method of the group provides. An old name whose
    op has a new one (torch 2.13 renamed ``_allgather_base`` to ``all_gather_single``, ...)
    is left alone: C++ may still call it and forward to the new name."""
    import torch.distributed as dist

    methods = ops.pg_methods()
    supported = supported_methods(group_cls)
    provided = {methods[name].name for name in supported}
    return [
        name
        for name in sorted(set(methods) - supported)
        if name in dist.ProcessGroup.__dict__ and methods[name].name not in provided
    ]


def _own_fake_cuda_guard() -> None:
    """Let the main thread own the fake CUDA device guard before any rank thread can.

    Entering FakeTensorMode (DTensor's sharding propagation does) on a CUDA build without a
    GPU calls ``torch._C._ensureCUDADeviceGuardSet``, which in torch 2.11 stores a guard owned
    by the calling thread in the process-wide registry: once that rank thread ends, the next
    entry, in the next test, reads freed memory and the process dies (SIGSEGV). Set from the
    main thread, it outlives the ranks; their calls then find a guard with devices and keep it.
    """
    import torch

    ensure = getattr(torch._C, "_ensureCUDADeviceGuardSet", None)
    if ensure is not None:
        ensure()


def _give_world_comms(world: Any) -> Callable[[], None]:
    """Give the threaded group's world a per-thread, empty ``comms`` list; return the undo.

    ``destroy_process_group`` finalises ``_world.comms`` (torchcomms' communicators) from torch
    2.11, whose ``ThreadLocalWorld`` lacks it (torch 2.12 added it there): without it every
    rank's teardown raises AttributeError. Nothing to do where the world has it or torch no
    such list.
    """
    cls = type(world)
    if hasattr(world, "comms"):
        return lambda: None
    local = threading.local()

    def comms(self: Any) -> list[Any]:
        if not hasattr(local, "comms"):
            local.comms = []
        found: list[Any] = local.comms
        return found

    cls.comms = property(comms)
    return lambda: delattr(cls, "comms")


def _refuser(op: str) -> Callable[..., Any]:
    """Stands in for a method the threaded group lacks: the test skips, naming the op."""
    canonical = ops.canonical(op)

    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise FidelityUnsupported(
            f"torch's threaded process group has no {canonical} "
            f"(ProcessLocalGroup.{op}); run this test at fidelity 'gloo' or 'fake'"
        )

    refuse.__name__ = op
    return refuse


def run(plan: Plan, body: Callable[[Any], Any]) -> list[RankOutcome]:
    """Run ``body(world)`` on ``plan.world_size`` threads; every thread ended on return."""
    import torch
    import torch.distributed as dist

    # `from fakedist import _hooks` everywhere: the package attribute, one module object even
    # after pytester dropped it from sys.modules (an import by path would load a second one).
    from fakedist import _hooks
    from fakedist.fidelity.preload import import_present
    from fakedist.world import forget_dtensor_caches

    if dist.is_initialized():
        raise FidelitySetupError(
            "threaded fidelity: a default process group is already initialised "
            f"(backend {dist.get_backend()!r}); destroy it first"
        )
    import_present()  # torch's compiler stack cannot be first imported by two ranks at once
    _own_fake_cuda_guard()
    mtpg = _threaded_pg()
    group_cls = mtpg.ProcessLocalGroup
    # Without an override, such a call reaches C++ and fails with "No backend type
    # associated with device type cpu"; with one, it names the op and the test skips.
    missing = _missing_methods(group_cls)  # set before the hooks patch the class
    for name in missing:
        setattr(group_cls, name, _refuser(name))
    # Thread isolation of the C++ group registry that functional collectives resolve names
    # in (torch 2.4 has it; feature-detected): without it every thread would see one registry.
    isolation = getattr(torch._C._distributed_c10d, "_set_thread_isolation_mode", None)
    outcomes = [RankOutcome(rank) for rank in range(plan.world_size)]
    first_end = threading.Event()
    store = dist.HashStore()

    def wake(exc: BaseException) -> None:
        first_end.set()
        handle = getattr(group_cls, "exception_handle", None)  # torch 2.1+
        if handle is not None:
            handle(exc)

    router = _hooks.ThreadRouter()
    excepthook = sys.excepthook  # every init_process_group wraps it (torch 2.4+)
    _hooks.install(router)
    mtpg._install_threaded_pg()
    forget_world_comms = _give_world_comms(dist.distributed_c10d._world)
    if isolation is not None:
        isolation(True)
    threads = [
        threading.Thread(
            target=_rank_main,
            args=(rank, plan, store, body, outcomes[rank], wake),
            name=f"{RANK_PREFIX}{rank}",
            daemon=True,
        )
        for rank in range(plan.world_size)
    ]
    try:
        for thread in threads:
            thread.start()
        _wait(plan, threads, outcomes, first_end, wake)
    finally:
        _stop(threads, outcomes, wake)
        reset = getattr(group_cls, "reset", None)
        if reset is not None:
            reset()
        if isolation is not None:
            isolation(False)
        mtpg._uninstall_threaded_pg()
        forget_world_comms()
        _hooks.uninstall(router)  # restores the refusers first: remove them after
        for name in missing:
            delattr(group_cls, name)
        sys.excepthook = excepthook
        forget_dtensor_caches()
    return outcomes


def _rank_main(
    rank: int,
    plan: Plan,
    store: Any,
    body: Callable[[Any], Any],
    outcome: RankOutcome,
    wake: Callable[[BaseException], None],
) -> None:
    from fakedist.faults import FaultSchedule
    from fakedist.timeouts import RANK_SLACK
    from fakedist.world import rank_world, use_thread_worlds

    use_thread_worlds()
    try:
        schedule = FaultSchedule(
            plan.faults, plan.world_size, rank, timeout=plan.timeout, slack=RANK_SLACK
        )
        init = {"store": store, "timeout": timedelta(seconds=plan.timeout)}
        with rank_world(
            "threaded",
            rank,
            plan.world_size,
            init,
            schedule,
            record=plan.record,
            fidelity="threaded",
        ) as world:
            value = body(world)
        if outcome.status == "running":  # else the main thread already gave up on it
            outcome.value = value
            outcome.end("passed", at=time.monotonic())
    except BaseException as exc:  # every end of a rank is reported
        status, summary, detail = describe_exception(exc)
        if outcome.status == "running":
            outcome.end(status, summary, detail, time.monotonic())
        if status != "stopped":
            wake(exc)


def _wait(
    plan: Plan,
    threads: list[threading.Thread],
    outcomes: list[RankOutcome],
    first_end: threading.Event,
    wake: Callable[[BaseException], None],
) -> None:
    """Wait for every thread, up to the timeout (or the grace once a rank has failed)."""
    deadline = time.monotonic() + plan.timeout
    while any(t.is_alive() for t in threads):
        limit = deadline
        if first_end.is_set():
            ended = [o.order for o in outcomes if o.status not in ("running", "passed")]
            limit = min(deadline, min(ended, default=time.monotonic()) + plan.grace)
        now = time.monotonic()
        if now >= limit:
            break
        next(t for t in threads if t.is_alive()).join(min(0.05, limit - now))
    hung = not first_end.is_set()
    for thread, outcome in zip(threads, outcomes):
        if thread.is_alive() and thread.ident is not None:
            status = "hung" if hung else "stopped"
            where = from_thread(thread.ident)
            summary = where if hung else f"still running {where} after another rank ended"
            outcome.end(status, summary, at=time.monotonic())
    if any(t.is_alive() for t in threads):
        wake(TimeoutError("fakedist: threaded fidelity timed out"))


def _stop(
    threads: list[threading.Thread],
    outcomes: list[RankOutcome],
    wake: Callable[[BaseException], None],
) -> None:
    """End every thread: woken out of collectives, else SystemExit raised into it."""
    for thread in threads:
        if thread.is_alive():
            wake(TimeoutError("fakedist: stopping ranks"))
            thread.join(STOP_WAIT)
    for thread, outcome in zip(threads, outcomes):
        if thread.is_alive() and thread.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit)
            )
            thread.join(STOP_WAIT)
        if thread.is_alive():
            outcome.summary += " (its thread could not be stopped: blocked outside Python)"
