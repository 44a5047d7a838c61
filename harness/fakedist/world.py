"""``fake_world``: a simulated rank of a process group, always torn down.

The decorator form, ``with_fake_comms``, is in :mod:`fakedist.decorator` (it also runs bodies
on every rank, so it sits above the fidelities, which sit above this module).
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fakedist.backends import BACKENDS, init_kwargs, register_backends
from fakedist.comms import CommLog
from fakedist.faults import FaultSchedule, faults_from_env, spec_list

__all__ = [
    "World",
    "current_world",
    "fake_world",
    "group_name",
    "leftover",
    "rank_world",
    "reset",
    "use_thread_worlds",
    "validate",
]

_ACTIVE: list[World] = []  # worlds of the main thread (threaded ranks keep their own)
_LOCAL = threading.local()


def _active() -> list[World]:
    """This thread's stack of active worlds: a rank thread's own, else the process's."""
    worlds: list[World] | None = getattr(_LOCAL, "worlds", None)
    return _ACTIVE if worlds is None else worlds


def leftover() -> str | None:
    """The worlds of the main thread still active, in words; None when there are none."""
    if not _ACTIVE:
        return None
    return ", ".join(f"world_size={w.world_size} rank={w.rank} {w.backend}" for w in _ACTIVE)


def reset() -> None:
    """Forget the main thread's active worlds (after :func:`leftover` reported them)."""
    _ACTIVE.clear()


def use_thread_worlds() -> None:
    """Give the calling thread its own world stack (a rank thread at ``threaded`` fidelity)."""
    _LOCAL.worlds = []


@dataclass
class World:
    """The world a test runs in: this rank's view of a simulated process group."""

    world_size: int
    rank: int
    backend: str
    options: dict[str, Any] = field(default_factory=dict)
    group: Any = None  # the default ProcessGroup
    store: Any = None
    comms: CommLog = field(default_factory=CommLog)  # collectives this rank made
    faults: FaultSchedule = field(default_factory=FaultSchedule)  # injected failures
    fidelity: str = "fake"  # fake: one simulated rank; threaded/gloo: every rank runs

    @property
    def computes(self) -> bool:
        """True when collectives produce real results (every rank runs: threaded, gloo)."""
        return self.fidelity != "fake"

    @property
    def group_name(self) -> str:
        """The default group's name, as ``comms`` records it: see :func:`group_name`."""
        return group_name(self.group)

    def step(self) -> int:
        """Advance the step counter (for ``after_step`` faults; stamped on records)."""
        self.faults.step += 1
        return self.faults.step

    @property
    def pg(self) -> Any:
        """The backend object behind the default group (a PyProcessGroup for ``pypg``)."""
        import torch

        group = self.group
        if self.backend in ("pypg", "mock_process_group"):
            return group
        try:
            return group._get_backend(torch.device("cpu"))
        except (AttributeError, RuntimeError):
            return group


def group_name(group: Any) -> str:
    """The name of ``group`` (a ProcessGroup) on every torch, as CommLog records it.

    ``group.group_name`` where torch can read it; torch 2.1's ProcessGroup has no
    ``group_name`` and 2.2 raises "ProcessGroup name not set" for a Python ProcessGroup (the
    fake backend of 2.1-2.2): there it is the name torch.distributed registered for the group.
    """
    from fakedist import _hooks

    return _hooks._group_name(group)


def validate(world_size: Any, rank: Any, backend: Any) -> None:
    """Raise ValueError naming the first bad argument."""
    if isinstance(world_size, bool) or not isinstance(world_size, int):
        raise ValueError(f"world_size must be an int >= 1, got {world_size!r}")
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise ValueError(f"rank must be an int in [0, {world_size}), got {rank!r}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside [0, {world_size}) for world_size={world_size}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; fakedist offers: {', '.join(BACKENDS)}")


@contextmanager
def fake_world(
    world_size: int,
    rank: int = 0,
    backend: str = "fake",
    *,
    faults: Sequence[dict[str, Any]] | None = None,
    record: bool = True,
    **options: Any,
) -> Iterator[World]:
    """Initialise the default process group as ``rank`` of ``world_size`` on ``backend``.

    ``world.comms`` records every collective (``record=False`` turns that off); ``faults``
    (plus any in ``FAKEDIST_FAULTS``) is a fault schedule (see :mod:`fakedist.faults`).
    The group (and every subgroup created inside) is destroyed on exit, also when the body
    raises. Bad arguments raise ValueError naming the value before anything is initialised.
    """
    validate(world_size, rank, backend)
    schedule = FaultSchedule([*spec_list(faults), *faults_from_env()], world_size, rank)
    from fakedist.backends import fake

    register_backends()
    native = (
        backend == "fake"
        and schedule.native_every()
        and fake.features().error_on_collective
        and "error_on_collective" not in options
    )
    extra = {"error_on_collective": True} if native else {}
    kwargs = init_kwargs(backend, world_size, {**options, **extra})
    with rank_world(
        backend, rank, world_size, kwargs, schedule, record=record, native_faults=native
    ) as world:
        world.options = dict(options)
        yield world


@contextmanager
def rank_world(
    backend: str,
    rank: int,
    world_size: int,
    init: dict[str, Any],
    schedule: FaultSchedule,
    *,
    record: bool = True,
    native_faults: bool = False,
    fidelity: str = "fake",
) -> Iterator[World]:
    """Initialise the default group on any backend, with the hooks: what every fidelity shares.

    ``init`` holds ``init_process_group`` keywords (``store`` at least).
    """
    import torch.distributed as dist

    from fakedist import _hooks, isolation

    isolation.mark_used()  # the plugin's leak check then covers this test
    if dist.is_initialized():
        raise RuntimeError(
            "fake_world: a default process group is already initialised "
            f"(backend {dist.get_backend()!r}); destroy it first"
        )
    excepthook = sys.excepthook  # init_process_group wraps it to prefix "[rankN]" (torch 2.4+)
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size, **init)
    world = World(
        world_size,
        rank,
        backend,
        {},
        dist.group.WORLD,
        init.get("store"),
        CommLog(world_size),
        schedule,
        fidelity,
    )
    uniform = backend == "fake"  # its data semantics, made the same on every torch
    recorder = _hooks.Recorder(
        world.comms, schedule, record=record, native_faults=native_faults, uniform=uniform
    )
    active = record or bool(schedule) or uniform
    stack = _active()
    stack.append(world)
    try:
        if active:
            _hooks.install(recorder)
        yield world
    finally:
        # Not active any more: the plugin's leak check already tore it down, and the
        # process group now initialised (if any) belongs to someone else.
        owned = world in stack
        if owned:
            stack.remove(world)
        try:
            if owned and dist.is_initialized():
                dist.destroy_process_group()
        finally:
            if sys.excepthook is not excepthook and fidelity != "threaded":
                sys.excepthook = excepthook  # threaded: the runner restores it once
            if active:
                _hooks.uninstall(recorder)
            if fidelity == "fake":  # the other fidelities clear them once all ranks are done
                forget_dtensor_caches()


def forget_dtensor_caches() -> None:
    """Clear DTensor's sharding caches so the next world cannot reuse this world's groups.

    They are keyed on DeviceMesh, whose equality ignores group names, so a later world would
    resolve groups that no longer exist. The module is ``torch.distributed.tensor`` from
    torch 2.5 (``torch.distributed._tensor`` before); nothing to do if DTensor was never used.
    The caches (of the calling thread: the Python one is thread-local) are cleared through
    ``debug._clear_sharding_prop_cache`` from torch 2.11; torch 2.10 has it in two halves,
    ``_clear_python_sharding_prop_cache`` and ``_clear_fast_path_sharding_prop_cache``, and up
    to torch 2.9 only the propagator's lru caches themselves can be cleared.
    """
    for package in ("torch.distributed.tensor", "torch.distributed._tensor"):
        if package not in sys.modules:
            continue
        try:
            debug = importlib.import_module(f"{package}.debug")
        except ImportError:
            continue
        names: tuple[str, ...] = ("_clear_sharding_prop_cache",)
        if not hasattr(debug, names[0]):
            names = ("_clear_python_sharding_prop_cache", "_clear_fast_path_sharding_prop_cache")
        clears = [clear for clear in (getattr(debug, name, None) for name in names) if clear]
        for clear in clears:
            clear()
        if not clears:
            _clear_sharding_propagator(package)
        return


def _clear_sharding_propagator(package: str) -> None:
    """Clear DTensor's sharding propagator lru caches directly (torch up to 2.9).

    ``propagate_op_sharding`` is a thread-local ``LocalLRUCache`` wrapping an lru cache (a
    plain lru cache in older torch); ``_propagate_tensor_meta`` is an lru-cached method.
    """
    api = sys.modules.get(f"{package}._api")
    dispatcher = getattr(getattr(api, "DTensor", None), "_op_dispatcher", None)
    propagator = getattr(dispatcher, "sharding_propagator", None)
    for name in ("propagate_op_sharding", "_propagate_tensor_meta"):
        cache = getattr(propagator, name, None)
        clear = getattr(cache, "cache_clear", None) or getattr(
            getattr(cache, "cache", None), "cache_clear", None
        )
        if clear is not None:
            clear()


def current_world() -> World | None:
    """The innermost active world of this rank (thread), or None."""
    stack = _active()
    return stack[-1] if stack else None
