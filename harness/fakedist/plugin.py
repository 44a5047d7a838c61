"""pytest plugin: the ``fake_world`` marker and fixture, the ``accelerator`` marker, a header.

Loaded automatically (``pytest11`` entry point) wherever fakedist is installed. torch is
imported lazily, so test runs that never touch a fake world pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

MARKERS = (
    "fake_world(world_size=2, rank=0, backend='fake', faults=None, record=True, **options): run "
    "the test as `rank` of a simulated `world_size` process group; the `fake_world` fixture "
    "exposes it (`fake_world.comms`: recorded collectives; `faults`: a fault schedule)",
    "accelerator(count=1): needs `count` accelerator devices; skipped with the reason otherwise",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)


def pytest_report_header(config: pytest.Config) -> list[str]:
    import os

    from fakedist.faults import ENV_VAR

    lines = [f"fakedist: {describe_environment()}"]
    if os.environ.get(ENV_VAR, "").strip():  # a chaos run: say what reproduces it
        lines.append(f"fakedist: {ENV_VAR}={os.environ[ENV_VAR]}")
    return lines


def describe_environment() -> str:
    """One line: torch version and build, devices, registered fake backends."""
    try:
        import torch
    except ImportError:
        return "torch not installed"
    from fakedist.backends import register_backends
    from fakedist.devices import accelerator_info

    build = f"cuda {torch.version.cuda}" if torch.version.cuda else "cpu"
    try:
        backends = ", ".join(register_backends())
    except Exception as exc:  # a broken torch.distributed must not hide the header
        backends = f"unavailable ({exc})"
    return (
        f"torch {torch.__version__} ({build} build), devices: {accelerator_info().describe()}, "
        f"backends: {backends}"
    )


def _marker_args(marker: pytest.Mark) -> dict[str, Any]:
    """Marker arguments as fake_world keywords (positional: world_size, rank, backend)."""
    names = ("world_size", "rank", "backend")
    if len(marker.args) > len(names):
        raise ValueError(f"too many positional arguments {marker.args!r}")
    kwargs = dict(zip(names, marker.args))
    for key, value in marker.kwargs.items():
        if key in kwargs:
            raise ValueError(f"{key!r} given twice")
        kwargs[key] = value
    return kwargs


@pytest.fixture
def fake_world(request: pytest.FixtureRequest) -> Iterator[Any]:
    """This test's simulated world (see the ``fake_world`` marker); torn down afterwards."""
    from fakedist.world import fake_world as _fake_world

    marker = request.node.get_closest_marker("fake_world")
    with ExitStack() as stack:
        try:  # bad marker arguments: one line naming the test, not a fixture traceback
            kwargs = _marker_args(marker) if marker is not None else {}
            world_size = kwargs.pop("world_size", 2)
            world = stack.enter_context(_fake_world(world_size, **kwargs))
        except ValueError as exc:
            message = f"{request.node.nodeid}: fake_world marker: {exc}"
            raise pytest.fail.Exception(message, pytrace=False) from None
        yield world


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("accelerator")
    if marker is None:
        return
    needed = _accelerator_count(marker)
    from fakedist.devices import accelerator_info

    info = accelerator_info()
    if info.count < needed:
        kind = (info.kind or "CUDA").upper()
        found = "none" if info.count == 0 else str(info.count)
        plural = "device" if needed == 1 else "devices"
        pytest.skip(f"needs {needed} {kind} {plural}, found {found}")


def _accelerator_count(marker: pytest.Mark) -> int:
    count = marker.kwargs.get("count", marker.args[0] if marker.args else 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise pytest.UsageError(f"accelerator marker: count must be an int >= 1, got {count!r}")
    return count


@pytest.fixture(autouse=True)
def _fakedist_no_leaked_group(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a process group or fakedist state behind; clean up after it."""
    from fakedist import isolation

    before = isolation.snapshot()
    yield
    found = isolation.leaks(before)
    if found:
        pytest.fail(f"{request.node.nodeid} " + "; it also ".join(found), pytrace=False)
