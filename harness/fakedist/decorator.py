"""``with_fake_comms``: run a function or a unittest ``TestCase`` method in a fake world, or
on every rank at a higher fidelity."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from fakedist.backends import init_kwargs, register_backends
from fakedist.faults import FaultSchedule
from fakedist.world import current_world, fake_world, validate

__all__ = ["DECORATED", "with_fake_comms"]

F = TypeVar("F", bound=Callable[..., Any])


def with_fake_comms(
    func: F | None = None,
    *,
    world_size: int = 2,
    rank: int = 0,
    backend: str = "fake",
    fidelity: str = "fake",
    timeout: float | None = None,
    **options: Any,
) -> Any:
    """Decorator: run a function or a unittest ``TestCase`` method inside :func:`fake_world`.

    On an ``async def`` function the world lasts while the coroutine runs, whatever awaits it
    (``IsolatedAsyncioTestCase``, pytest-asyncio, ``asyncio.run``); on a class, every method
    whose name starts with ``test`` is decorated (one decorated on its own keeps its
    settings). A generator function is refused with TypeError: its body would run after
    the world ended. ``fidelity="threaded"`` or ``"gloo"`` runs it on every rank instead
    (``rank``, ``backend`` and backend options are the fake fidelity's) and returns each
    rank's return value (None for the running unittest test method itself); a rank's
    failure raises :class:`fakedist.fidelity.RankFailure`, an op the fidelity lacks
    ``unittest.SkipTest``. gloo workers get a copy of a ``TestCase`` instance: see
    :mod:`fakedist.fidelity.bodies`. Every argument (world, faults, options, timeout) is
    checked when decorating, so a bad one fails at import time.
    """
    if func is not None and not callable(func):  # with_fake_comms(4)
        raise TypeError(
            f"with_fake_comms: got {func!r} where the function to decorate goes; "
            "settings are keywords: with_fake_comms(world_size=4, rank=1)"
        )
    _check_settings(world_size, rank, backend, fidelity, timeout, options)
    again = functools.partial(
        with_fake_comms,
        world_size=world_size,
        rank=rank,
        backend=backend,
        fidelity=fidelity,
        timeout=timeout,
        **options,
    )
    if func is None:
        return again
    if inspect.isclass(func):
        return _decorate_class(func, again)
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise TypeError(
            f"with_fake_comms cannot decorate generator function {func.__qualname__}: "
            "the world would end before its body runs; decorate the function that consumes it"
        )

    def on_every_rank(call: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        return _on_every_rank(call, args, kwargs, world_size, fidelity, timeout, options)

    def in_rank() -> bool:  # a rank calling back in
        here = current_world()
        return here is not None and here.fidelity == fidelity

    def world() -> Any:
        return fake_world(world_size, rank=rank, backend=backend, **options)

    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(func):
        coroutine_function = func

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if fidelity == "fake":
                with world():
                    return await coroutine_function(*args, **kwargs)
            if in_rank():
                return await coroutine_function(*args, **kwargs)
            return on_every_rank(wrapper, args, kwargs)  # each rank runs it to completion

    else:

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if fidelity == "fake":
                with world():
                    return func(*args, **kwargs)
            if in_rank():
                return func(*args, **kwargs)
            return on_every_rank(wrapper, args, kwargs)

    setattr(wrapper, DECORATED, True)
    return wrapper


DECORATED = "__fakedist_world__"  # on a with_fake_comms wrapper (the plugin looks for it)


def _check_settings(
    world_size: Any, rank: Any, backend: Any, fidelity: Any, timeout: Any, options: dict[str, Any]
) -> None:
    """ValueError naming the first bad ``with_fake_comms`` argument."""
    from fakedist.fidelity import parse_fidelity
    from fakedist.timeouts import parse_timeout

    validate(world_size, rank, backend)
    parse_fidelity(fidelity)
    if timeout is not None:
        parse_timeout(timeout, "timeout")
    record = options.get("record", True)
    if not isinstance(record, bool):
        raise ValueError(f"record must be True or False, got {record!r}")
    faults = options.get("faults")
    FaultSchedule(() if faults is None else faults, world_size, rank)
    register_backends()
    init_kwargs(backend, world_size, {k: v for k, v in options.items() if k not in _WORLD_KEYS})


_WORLD_KEYS = ("faults", "record")  # fake_world's own keywords; the rest are backend options


def _decorate_class(cls: type, decorate: Callable[[Any], Any]) -> type:
    """``cls`` with every ``test*`` function decorated (unittest's and pytest's prefix)."""
    names = [n for n in dir(cls) if n.startswith("test")]
    methods = {n: inspect.getattr_static(cls, n) for n in names}
    methods = {n: m for n, m in methods.items() if inspect.isfunction(m)}
    if not methods:
        raise TypeError(f"with_fake_comms: class {cls.__qualname__} has no test* methods")
    for name, method in methods.items():
        if not getattr(method, DECORATED, False):  # decorated on its own: its settings win
            setattr(cls, name, decorate(method))
    return cls


def _on_every_rank(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    world_size: int,
    fidelity: str,
    timeout: float | None,
    options: dict[str, Any],
) -> Any:
    import unittest

    from fakedist.fidelity import FidelityUnsupported, run_world
    from fakedist.fidelity.bodies import FunctionCall, is_test_method
    from fakedist.fidelity.where import at_test

    try:
        results = run_world(
            FunctionCall(func, args, kwargs),
            world_size,
            fidelity=fidelity,
            faults=options.get("faults"),
            record=options.get("record", True),
            timeout=timeout,
            name=getattr(func, "__qualname__", None),
        )
    except FidelityUnsupported as exc:
        raise at_test(unittest.SkipTest(str(exc))) from None
    return None if is_test_method(func, args) else results
