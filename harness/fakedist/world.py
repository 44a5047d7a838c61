"""``fake_world`` and ``with_fake_comms``: a simulated rank of a process group, always torn down."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fakedist.backends import BACKENDS, init_kwargs, register_backends
from fakedist.comms import CommLog
from fakedist.faults import FaultSchedule, faults_from_env

F = TypeVar("F", bound=Callable[..., Any])

_ACTIVE: list[World] = []


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
    schedule = FaultSchedule([*(faults or ()), *faults_from_env()], world_size)
    import torch.distributed as dist

    from fakedist import _hooks
    from fakedist.backends import fake

    register_backends()
    native = (
        backend == "fake"
        and schedule.native_every()
        and fake.features().error_on_collective
        and "error_on_collective" not in options
    )
    kwargs = init_kwargs(
        backend, world_size, {**options, **({"error_on_collective": True} if native else {})}
    )
    if dist.is_initialized():
        raise RuntimeError(
            "fake_world: a default process group is already initialised "
            f"(backend {dist.get_backend()!r}); destroy it first"
        )
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size, **kwargs)
    world = World(
        world_size,
        rank,
        backend,
        dict(options),
        dist.group.WORLD,
        kwargs["store"],
        CommLog(),
        schedule,
    )
    recorder = _hooks.Recorder(world.comms, schedule, record=record, native_faults=native)
    active = record or bool(schedule)
    _ACTIVE.append(world)
    try:
        if active:
            _hooks.install(recorder)
        yield world
    finally:
        # Not active any more: the plugin's leak check already tore it down, and the
        # process group now initialised (if any) belongs to someone else.
        owned = world in _ACTIVE
        if owned:
            _ACTIVE.remove(world)
        try:
            if owned and dist.is_initialized():
                dist.destroy_process_group()
        finally:
            if active:
                _hooks.uninstall(recorder)
            _forget_dtensor_caches()


def _forget_dtensor_caches() -> None:
    """Clear DTensor's sharding caches so the next world cannot reuse this world's groups.

    They are keyed on DeviceMesh, whose equality ignores group names, so a later world would
    resolve groups that no longer exist. The module is ``torch.distributed.tensor`` from
    torch 2.5 (``torch.distributed._tensor`` before); nothing to do if DTensor was never used.
    """
    for package in ("torch.distributed.tensor", "torch.distributed._tensor"):
        if package not in sys.modules:
            continue
        try:
            debug = importlib.import_module(f"{package}.debug")
        except ImportError:
            continue
        clear = getattr(debug, "_clear_sharding_prop_cache", None)
        if clear is not None:
            clear()
            return


def current_world() -> World | None:
    """The innermost active :func:`fake_world`, or None."""
    return _ACTIVE[-1] if _ACTIVE else None


def with_fake_comms(
    func: F | None = None,
    *,
    world_size: int = 2,
    rank: int = 0,
    backend: str = "fake",
    **options: Any,
) -> Any:
    """Decorator: run a function or a unittest ``TestCase`` method inside :func:`fake_world`.

    Arguments are checked when decorating, so a bad ``world_size`` fails at import time.
    """
    validate(world_size, rank, backend)
    if func is None:
        return functools.partial(
            with_fake_comms, world_size=world_size, rank=rank, backend=backend, **options
        )

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with fake_world(world_size, rank=rank, backend=backend, **options):
            return func(*args, **kwargs)

    return wrapper
