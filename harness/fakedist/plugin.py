"""pytest plugin: the ``fake_world`` marker and fixture, the ``accelerator`` marker, a header,
and the leak check after the tests that use fakedist (``--fakedist-isolation``).

Loaded automatically (``pytest11`` entry point) wherever fakedist is installed. torch is
imported lazily, so test runs that never touch a fake world pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import ExitStack
from typing import Any, NoReturn

import pytest

# Imported with the plugin (none imports torch): module objects the ranks pickle by reference
# (TestCall, Plan, the gloo worker) must stay the ones in sys.modules. Imported lazily inside
# a pytester run instead, pytester would drop them afterwards and the next import would make
# second copies ("Can't pickle ...: it's not the same object").
import fakedist.fidelity.bodies
import fakedist.fidelity.gloo
import fakedist.fidelity.threaded  # noqa: F401
from fakedist import isolation
from fakedist.fidelity.plan import RanksPlan
from fakedist.fidelity.where import at_test, is_at_test

__all__ = ["MARKERS", "describe_environment", "fake_world", "uses_fakedist"]

MARKERS = (
    "fake_world(world_size=2, rank=0, backend='fake', faults=None, record=True, fidelity='fake', "
    "timeout=None, **options): run the test as `rank` of a simulated `world_size` process "
    "group; the `fake_world` fixture exposes it (`fake_world.comms`: recorded collectives; "
    "`faults`: a fault schedule). fidelity='threaded'/'gloo' runs the body on every rank "
    "(threads / processes) with real results; a list (or 'all') runs the test once per fidelity; "
    "ranks='all'/'sample'/[ranks] runs it once per chosen rank, each in its own fake world, and "
    "fails when the ranks' collectives disagree (a hang on a cluster)",
    "accelerator(count=1): needs `count` accelerator devices; skipped with the reason otherwise",
)


TIMEOUT_OPTION = "--fakedist-timeout"
ISOLATION_OPTION = "--fakedist-isolation"
ISOLATION_INI = "fakedist_isolation"
ISOLATION = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fakedist")
    modes = "|".join(isolation.MODES)
    isolation_help = (
        "which tests fakedist checks for a leaked process group or fakedist state: "
        "fakedist (the tests that use it, the default), strict (every test), off (none)"
    )
    group.addoption(
        ISOLATION_OPTION, default=None, metavar=modes, help=f"{isolation_help}; wins over ini"
    )
    parser.addini(ISOLATION_INI, f"{isolation_help} ({modes})", default="")
    group.addoption(
        TIMEOUT_OPTION,
        default=None,
        metavar="SECONDS",
        help="seconds a threaded/gloo test may run before its ranks count as hung "
        "(default: FAKEDIST_TIMEOUT, else 60; a marker's timeout= wins)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    _check_timeout_settings(config)
    config.stash[ISOLATION] = _isolation_mode(config)


def _isolation_mode(config: pytest.Config) -> str:
    """``--fakedist-isolation`` > ini ``fakedist_isolation`` > ``fakedist``."""
    value, source = config.getoption(ISOLATION_OPTION), ISOLATION_OPTION
    if value is None:
        value = config.getini(ISOLATION_INI) or None
        where = config.inipath.name if config.inipath is not None else "ini"
        source = f"{ISOLATION_INI} in {where}"
    if value is None:
        return isolation.DEFAULT_MODE
    try:
        return isolation.parse_mode(value, source)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def _check_timeout_settings(config: pytest.Config) -> None:
    """A bad ``--fakedist-timeout`` or ``FAKEDIST_TIMEOUT`` stops the run before collection."""
    from fakedist.timeouts import env_timeout, parse_timeout

    try:
        option = config.getoption(TIMEOUT_OPTION)
        if option is not None:
            parse_timeout(option, TIMEOUT_OPTION)
        env_timeout()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    import os

    from fakedist.envvars import FAULTS as ENV_VAR

    lines = [f"fakedist: {describe_environment()}"]
    mode = config.stash.get(ISOLATION, isolation.DEFAULT_MODE)
    if mode != isolation.DEFAULT_MODE:
        lines.append(f"fakedist: isolation={mode}")
    if os.environ.get(ENV_VAR, "").strip():  # a chaos run: say what reproduces it
        lines.append(f"fakedist: {ENV_VAR}={os.environ[ENV_VAR]}")
    return lines


def describe_environment() -> str:
    """One line: torch version and build, devices, registered fake backends."""
    try:
        import torch
    except ImportError:
        return "torch not installed"
    from fakedist.accelerator import accelerator_info
    from fakedist.backends import register_backends

    devices = accelerator_info()
    build = f"cuda {torch.version.cuda}" if torch.version.cuda else "cpu"
    if torch.version.cuda and not devices.count:  # PyPI's Linux wheels are CUDA builds
        build += " build, running on CPU"
    else:
        build += " build"
    try:
        backends = ", ".join(register_backends())
    except Exception as exc:  # a broken torch.distributed must not hide the header
        backends = f"unavailable ({exc})"
    return (
        f"torch {torch.__version__} ({build}), devices: {devices.describe()}, backends: {backends}"
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``fidelity=[...]`` (or ``"all"``) on the marker: one test per fidelity, ids by name."""
    marker = metafunc.definition.get_closest_marker("fake_world")
    if marker is None:
        return
    value = marker.kwargs.get("fidelity")
    if not (value == "all" or (isinstance(value, (list, tuple)) and value)):
        return  # one fidelity (or an empty list, which the fixture reports)
    if "fake_world" not in metafunc.fixturenames:
        raise pytest.Collector.CollectError(  # reported as this one line, no traceback
            f"{metafunc.definition.nodeid}: fake_world marker: fidelity={value!r} needs the "
            "test to take the fake_world fixture"
        )
    from fakedist.fidelity import FIDELITIES

    names = FIDELITIES if value == "all" else value
    metafunc.parametrize("fake_world", list(names), indirect=True, ids=[str(n) for n in names])


@pytest.fixture
def fake_world(request: pytest.FixtureRequest) -> Iterator[Any]:
    """This test's world (see the ``fake_world`` marker); torn down afterwards.

    At ``fake`` fidelity: the simulated rank's :class:`fakedist.World`. At ``threaded`` and
    ``gloo``: each rank's body gets its own World (see ``pytest_pyfunc_call``).
    """
    from fakedist.world import fake_world as _fake_world

    marker = request.node.get_closest_marker("fake_world")
    with ExitStack() as stack:
        try:  # bad marker arguments: one line naming the test, not a fixture traceback
            kwargs = _marker_args(marker) if marker is not None else {}
            fidelity = _fidelity(request, kwargs)
            timeout = kwargs.pop("timeout", None)
            world_size = kwargs.pop("world_size", 2)
            if "ranks" in kwargs:
                world = _ranks_plan(fidelity, world_size, kwargs)
            elif fidelity == "fake":
                seconds = _timeout(request, timeout)  # where fault delays end (None: env, 60 s)
                world = stack.enter_context(_fake_world(world_size, **kwargs))
                if seconds is not None:
                    world.faults.limit(seconds)
            else:
                world = _plan(request, fidelity, world_size, timeout, kwargs)
        except ValueError as exc:
            _fail(f"{request.node.nodeid}: fake_world marker: {exc}")
        yield world


def _ranks_plan(fidelity: str, world_size: Any, kwargs: dict[str, Any]) -> Any:
    """The plan for ``ranks=``: one fake world per chosen rank, compared afterwards."""
    from fakedist.ranks import parse_ranks
    from fakedist.world import validate

    if fidelity != "fake":
        raise ValueError(
            f"ranks= runs one fake world per rank; it cannot be combined with fidelity={fidelity!r}"
        )
    if "rank" in kwargs:
        raise ValueError(f"ranks= runs each chosen rank; drop rank={kwargs['rank']!r}")
    validate(world_size, 0, kwargs.get("backend", "fake"))
    ranks = parse_ranks(kwargs.pop("ranks"), world_size)
    return RanksPlan(world_size, ranks, kwargs)


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> None:
    """Refuse a fixture that requests ``fake_world`` where the test's ranks run elsewhere."""
    if fixturedef.argname == "fake_world" or "fake_world" not in fixturedef.argnames:
        return
    from fakedist.fidelity.plan import Plan

    plan = request.getfixturevalue("fake_world")
    if isinstance(plan, (Plan, RanksPlan)):
        where = f"at fidelity {plan.fidelity!r}" if isinstance(plan, Plan) else "with ranks="
        _fail(
            f"{request.node.nodeid}: fixture {fixturedef.argname!r} requests fake_world, "
            f"but {where} each rank's World exists only in the test, and "
            "fixtures are set up once before the ranks start: have the fixture return a "
            "function, and call it in the test with fake_world"
        )


def _fail(message: str) -> NoReturn:
    """Fail without a traceback; the report points at the test, not at this plugin."""
    raise at_test(pytest.fail.Exception(message, pytrace=False)) from None


def _skip(reason: str) -> NoReturn:
    """Skip, reported at the test's file and line (``_use_item_location``: pytest 7.0+)."""
    try:
        exc = pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:  # a pytest without it: the report hook below moves it
        exc = pytest.skip.Exception(reason)
    raise at_test(exc) from None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Skips and failures fakedist raised (a rank's failure too, also from
    ``with_fake_comms``) point at the test's file and line, not at fakedist's code."""
    # Before and after: pytest replaces a unittest.SkipTest with its own skip, and sets
    # what a unittest.TestCase method raised only now.
    raised = [call.excinfo.value] if call.excinfo is not None else []
    outcome = yield
    raised += [call.excinfo.value] if call.excinfo is not None else []
    path, line = item.reportinfo()[:2]
    if line is None or not any(is_at_test(exc) for exc in raised):
        return
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple):  # (path, lineno, reason)
        report.longrepr = (str(path), line + 1, report.longrepr[2])
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:  # pytest's ReprFileLocation(path, lineno, message)
        report.longrepr.reprcrash = type(crash)(str(path), line + 1, crash.message)


def _fidelity(request: pytest.FixtureRequest, kwargs: dict[str, Any]) -> str:
    from fakedist.fidelity import parse_fidelities

    value = kwargs.pop("fidelity", "fake")
    names = parse_fidelities(value)  # validates a list even where it was parametrized
    if hasattr(request, "param"):
        return str(request.param)
    if len(names) > 1:  # unreachable through the marker: generate_tests parametrizes
        raise ValueError(f"fidelity={value!r}: a list needs pytest's parametrization")
    return names[0]


def _timeout(request: pytest.FixtureRequest, marker_value: Any) -> float | None:
    """Marker ``timeout=`` > ``--fakedist-timeout``; None: ``FAKEDIST_TIMEOUT``, else 60 s."""
    from fakedist.timeouts import parse_timeout

    if marker_value is not None:
        return parse_timeout(marker_value, "timeout")
    option = request.config.getoption(TIMEOUT_OPTION)
    return None if option is None else parse_timeout(option, TIMEOUT_OPTION)


def _plan(
    request: pytest.FixtureRequest,
    fidelity: str,
    world_size: Any,
    timeout: Any,
    kwargs: dict[str, Any],
) -> Any:
    """The plan for a threaded/gloo run. ``rank``, ``backend`` and backend options are the
    fake fidelity's (every rank runs here, over the fidelity's own group): ignored."""
    from fakedist.fidelity import make_plan

    return make_plan(
        fidelity,
        world_size,
        kwargs.get("faults"),
        kwargs.get("record", True),
        _timeout(request, timeout),
        request.node.nodeid,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """At threaded/gloo fidelity, run the test function on every rank."""
    from fakedist.fidelity import (
        FidelitySetupError,
        FidelityUnsupported,
        Plan,
        RankFailure,
        TestCall,
        run_plan,
    )

    plan = pyfuncitem.funcargs.get("fake_world")
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    if isinstance(plan, RanksPlan):
        from fakedist.ranks import check_ranks

        body = TestCall(pyfuncitem.obj, args)
        report = check_ranks(body, plan.world_size, plan.ranks, **plan.options)
        if not report.ok:
            _fail(f"{pyfuncitem.nodeid}: {report.render()}")
        return True
    if not isinstance(plan, Plan):
        return None
    try:
        run_plan(plan, TestCall(pyfuncitem.obj, args))
    except FidelityUnsupported as exc:
        _skip(str(exc))
    except (RankFailure, FidelitySetupError) as exc:
        _fail(str(exc))
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("accelerator")
    if marker is None:
        return
    needed = _accelerator_count(item, marker)
    from fakedist.accelerator import accelerator_info

    info = accelerator_info()
    if info.count < needed:
        kind = (info.kind or "CUDA").upper()
        found = "none" if info.count == 0 else str(info.count)
        plural = "device" if needed == 1 else "devices"
        _skip(f"needs {needed} {kind} {plural}, found {found}")


def _accelerator_count(item: pytest.Item, marker: pytest.Mark) -> int:
    count = marker.kwargs.get("count", marker.args[0] if marker.args else 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        _fail(  # the test errors with this one line, no traceback
            f"{item.nodeid}: accelerator marker: count must be an int >= 1, got {count!r}"
        )
    return count


@pytest.fixture(autouse=True)
def _fakedist_no_leaked_group(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a process group or fakedist state behind; clean up after it.

    ``--fakedist-isolation``: ``fakedist`` reports a process group only for tests that use
    fakedist, ``strict`` for every test, ``off`` checks nothing. A group that was already
    initialised when the test started (a session- or module-scoped fixture's) is left alone.
    """
    mode = request.config.stash.get(ISOLATION, isolation.DEFAULT_MODE)
    if mode == "off":
        yield
        return
    before = isolation.snapshot()
    yield
    groups = mode == "strict" or uses_fakedist(request.node) or before.used_fakedist()
    found = isolation.leaks(before, groups=groups)
    if found:
        pytest.fail(f"{request.node.nodeid} " + "; it also ".join(found), pytrace=False)


def uses_fakedist(item: pytest.Item) -> bool:
    """The test asks for fakedist: the marker, the fixture, or ``with_fake_comms``."""
    if item.get_closest_marker("fake_world") is not None:
        return True
    if "fake_world" in getattr(item, "fixturenames", ()):
        return True
    decorated = "__fakedist_world__"  # fakedist.decorator.DECORATED (that module imports torch)
    return bool(getattr(getattr(item, "obj", None), decorated, False))
