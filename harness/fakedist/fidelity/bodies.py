"""Rank bodies: a pytest test with its fixture values (:class:`TestCall`), and a call of a
function decorated with ``with_fake_comms`` (:class:`FunctionCall`; a coroutine function
runs to completion in each rank, on an event loop of its own).

At the gloo fidelity they are pickled. A ``unittest.TestCase`` method's instance cannot be: it
holds the runner's result object (an open stream under ``unittest``, pytest's test item
under pytest). So the workers get a copy instead: a new instance of the same class for the
same test method, carrying the attributes the test set on its instance (what ``setUp``
made), without unittest's own. Cleanups the body adds on the copy run when it returns.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import pickle
import unittest
from collections.abc import Callable
from typing import Any


class TestCall:
    """A test function and its fixture values as a rank's body; picklable (by reference to
    the function) when its fixture values are, which the gloo fidelity needs."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    def __init__(self, function: Callable[..., Any], args: dict[str, Any]) -> None:
        self.function = function
        self.args = {k: v for k, v in args.items() if k != "fake_world"}

    def __call__(self, world: Any) -> Any:
        return self.function(**self.args, fake_world=world)

    def unpicklable(self) -> str | None:
        """What cannot be pickled: the function or the first such fixture, else None."""
        fixtures = [(f"fixture {name!r}", value) for name, value in self.args.items()]
        return first_unpicklable([("the test function", self.function), *fixtures])


class FunctionCall:
    """``func(*args, **kwargs)`` as a rank body (picklable when they are: gloo sends it)."""

    def __init__(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_copy: bool = False,
    ) -> None:
        self.func, self.args, self.kwargs = func, args, kwargs
        self.on_copy = on_copy  # args[0] is a worker's copy of the test case

    def __call__(self, world: Any) -> Any:
        try:
            result = self.func(*self.args, **self.kwargs)
            if inspect.iscoroutine(result):  # an async def body: this rank runs it to the end
                result = asyncio.run(result)
            return result
        finally:
            if self.on_copy:
                self.args[0].doCleanups()

    def __reduce__(self) -> tuple[Any, ...]:
        case = self.args[0] if self.args else None
        if isinstance(case, unittest.TestCase):
            test = (type(case), case._testMethodName, case_state(case))
            return (_on_copy, (*test, self.func, self.args[1:], self.kwargs))
        return (FunctionCall, (self.func, self.args, self.kwargs))

    def unpicklable(self) -> str | None:
        """What cannot be pickled: the function, a test-case attribute or an argument."""
        case = self.args[0] if self.args else None
        values: list[tuple[str, Any]] = [("the function", self.func)]
        if isinstance(case, unittest.TestCase):
            name = type(case).__qualname__
            values += [(f"attribute {k!r} of {name}", v) for k, v in case_state(case).items()]
            values += [(f"argument {i}", v) for i, v in enumerate(self.args[1:], 1)]
        else:
            values += [(f"argument {i}", v) for i, v in enumerate(self.args)]
        values += [(f"argument {k!r}", v) for k, v in self.kwargs.items()]
        return first_unpicklable(values)


def first_unpicklable(values: list[tuple[str, Any]]) -> str | None:
    """``"<what> (<why>)"`` for the first (what, value) pair pickle refuses, else None."""
    for what, value in values:
        try:
            pickle.dumps(value)
        except Exception as exc:  # each pickling failure names its own reason
            return f"{what} ({exc})"
    return None


def is_test_method(func: Callable[..., Any], args: tuple[Any, ...]) -> bool:
    """True when ``func`` is the running unittest test method itself: its return value is
    unittest's to discard (returning anything else from a test is deprecated since 3.11)."""
    case = args[0] if args else None
    return isinstance(case, unittest.TestCase) and func.__name__ == case._testMethodName


def case_state(case: unittest.TestCase) -> dict[str, Any]:
    """The attributes a test set on its instance: not unittest's, not its own bound methods
    (pytest stores the test method on the instance)."""
    own = _unittest_attributes()
    return {
        k: v
        for k, v in vars(case).items()
        if k not in own and not (inspect.ismethod(v) and v.__self__ is case)
    }


@functools.cache
def _unittest_attributes() -> frozenset[str]:
    return frozenset(vars(unittest.TestCase()))


def _on_copy(
    cls: type[unittest.TestCase],
    method: str,
    state: dict[str, Any],
    func: Callable[..., Any],
    rest: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> FunctionCall:
    """In the worker: a fresh ``cls`` instance for ``method`` with ``state``, as the call's self."""
    case = cls.__new__(cls)  # not cls(...): a subclass __init__ may take other arguments
    unittest.TestCase.__init__(case, method)
    vars(case).update(state)
    return FunctionCall(func, (case, *rest), kwargs, on_copy=True)
