"""``gloo`` fidelity: every rank runs the body in its own process over gloo on loopback.

Workers come from a fork server (multiprocessing's ``forkserver``, torch preloaded), not
from the test process: once a test process has run a backward pass, a CUDA build of torch
refuses autograd in forked children ("Unable to handle autograd's threading in combination
with fork-based multiprocessing"). So the body and its fixture values are pickled and sent
to the workers (the test function by reference: its module is imported there, with pytest's
assertion rewriting where pytest rewrote it), and return values come back pickled.

Each worker is a process-group leader, uses one intra-op thread, and reports its end over a
pipe; it keeps its group open until every rank has reported, so a rank that is done cannot
turn a hung peer into a "Connection reset". A worker that dies is reported with its signal;
one still running at the timeout has its stack dumped (faulthandler) to name the collective
it waits in; every worker, and anything it started, is killed before :func:`run` returns.

A test process that is itself killed (SIGTERM from a cancelled CI job, SIGKILL, the
``os._exit`` of pytest-timeout's thread method) runs none of that: on Linux the kernel ends
the fork server with it and every worker with the fork server (``PR_SET_PDEATHSIG``). The
fork server's socket and the workers' rendezvous files live in a directory short enough for
a socket path, whatever the length of TMPDIR.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from fakedist.fidelity.outcome import RankOutcome, describe_exception, signal_name
from fakedist.fidelity.preload import TORCH_MODULES
from fakedist.fidelity.where import from_faulthandler
from fakedist.isolation import RANK_PREFIX

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from fakedist.fidelity.plan import Plan

DUMP_WAIT = 0.5  # seconds for a worker to write its stack after SIGUSR1
EXIT_WAIT = 2.0  # seconds released workers get to exit before SIGKILL
LOOPBACK = "lo0" if sys.platform == "darwin" else "lo"
START_METHOD = "forkserver"
# Imported once by the fork server, so workers start with them loaded: the torch modules
# threaded ranks get too (torch._dynamo: DTensor and FSDP2 import it on first use, ~2 s per
# worker otherwise; the server skips any a torch lacks), pytest (test modules import it),
# fakedist's worker side.
PRELOAD = [*TORCH_MODULES, "pytest", "fakedist.world", "fakedist.fidelity.gloo"]
# The longest AF_UNIX socket path, in bytes (sun_path less its NUL): 107 on Linux, 103 on macOS.
SOCKET_PATH_MAX = 103 if sys.platform == "darwin" else 107
SOCKET_NAME = len("/listener-12345678")  # multiprocessing's name for the fork server's socket
SHORT_DIRS = ("/tmp", "/var/tmp")  # where a private directory goes when TMPDIR is too long
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def available() -> str | None:
    """None when gloo workers can run here, else why not."""
    if START_METHOD not in multiprocessing.get_all_start_methods():
        return f"the gloo fidelity needs multiprocessing's {START_METHOD!r} start method"
    import torch.distributed as dist

    if not dist.is_gloo_available():
        return "this torch build has no gloo backend"
    return None


def run(plan: Plan, body: Callable[[Any], Any]) -> list[RankOutcome]:
    """Run ``body(world)`` in ``plan.world_size`` forked workers; all reaped on return."""
    import torch.distributed as dist

    from fakedist.fidelity.outcome import FidelitySetupError, FidelityUnsupported

    why = available()
    if why is not None:
        raise FidelityUnsupported(f"gloo fidelity: {why}")
    if dist.is_initialized():
        raise FidelitySetupError(
            "gloo fidelity: a default process group is already initialised "
            f"(backend {dist.get_backend()!r}); destroy it first"
        )
    try:
        payload = pickle.dumps(body)
    except Exception as exc:  # closures, locks, open files... cannot reach another process
        culprit = getattr(body, "unpicklable", lambda: None)() or f"the body ({exc})"
        raise FidelitySetupError(
            f"gloo fidelity: cannot send {culprit} to the worker processes: "
            "what a gloo rank runs must be picklable"
        ) from None
    ctx: Any = multiprocessing.get_context(START_METHOD)  # typeshed: BaseContext, no Process
    ctx.set_forkserver_preload(PRELOAD)  # takes effect when the server starts
    rewrite = _rewritten_module(body)
    tmp = tempfile.mkdtemp(prefix="gloo-", dir=_socket_dir())  # FileStore, stack dumps
    outcomes = [RankOutcome(rank) for rank in range(plan.world_size)]
    procs: list[BaseProcess] = []
    conns: dict[Any, int] = {}
    # Workers hold their group open after reporting until this closes: a rank that is done
    # must not make a hung peer fail with "Connection reset" instead of hanging.
    hold, release = ctx.Pipe(duplex=False)
    try:
        for rank in range(plan.world_size):
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_worker,
                args=(rank, plan, payload, list(sys.path), rewrite, writer, hold, tmp),
                name=f"{RANK_PREFIX}{rank}",
                daemon=True,
            )
            proc.start()
            writer.close()
            procs.append(proc)
            conns[reader] = rank
        _wait(plan, procs, conns, outcomes, tmp)
    finally:
        release.close()
        _kill_all(procs)
        hold.close()
        for conn in conns:
            conn.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return outcomes


def _socket_dir() -> str:
    """multiprocessing's temporary directory, short enough to hold the fork server's socket.

    The fork server listens on an AF_UNIX socket in ``multiprocessing.util.get_temp_dir()``,
    made under TMPDIR, and the kernel refuses socket paths over :data:`SOCKET_PATH_MAX` bytes
    ("AF_UNIX path too long"): a CI job's TMPDIR can be longer. Then this process's
    multiprocessing directory is replaced by a private one under /tmp (removed at exit, as
    multiprocessing's own is); Python 3.14 makes that choice itself, and the check passes.
    """
    from multiprocessing import process, util

    from fakedist.fidelity.outcome import FidelitySetupError

    current = util.get_temp_dir()
    if _fits(current):
        return current
    for base in SHORT_DIRS:
        if not _fits(os.path.join(base, "pymp-12345678")):
            continue
        try:
            short = tempfile.mkdtemp(prefix="pymp-", dir=base)
        except OSError:  # missing or not writable
            continue
        util.Finalize(None, shutil.rmtree, args=(short,), exitpriority=-100)
        process.current_process()._config["tempdir"] = short  # type: ignore[attr-defined]
        return short
    raise FidelitySetupError(
        f"gloo fidelity: the temporary directory {current!r} is too long for the fork "
        f"server's socket (at most {SOCKET_PATH_MAX - SOCKET_NAME} bytes) and none of "
        f"{', '.join(SHORT_DIRS)} is writable; set TMPDIR to a shorter directory"
    )


def _fits(directory: str) -> bool:
    return len(os.fsencode(directory)) + SOCKET_NAME <= SOCKET_PATH_MAX


def _wait(
    plan: Plan,
    procs: list[BaseProcess],
    conns: dict[Any, int],
    outcomes: list[RankOutcome],
    tmp: str,
) -> None:
    """Collect each worker's report; on the first failure give the rest ``plan.grace``."""
    deadline = time.monotonic() + plan.timeout
    pending = dict(conns)
    sentinels = {p.sentinel: rank for rank, p in enumerate(procs)}
    first_failure: float | None = None
    while any(o.status == "running" for o in outcomes):
        limit = deadline if first_failure is None else min(deadline, first_failure + plan.grace)
        remaining = limit - time.monotonic()
        if remaining <= 0:
            break
        ready = wait([*pending, *sentinels], remaining)
        for item in ready:
            if item in pending:
                rank = pending.pop(item)
                _read_report(item, outcomes[rank])  # type: ignore[arg-type]
            elif item in sentinels:
                rank = sentinels.pop(item)
                procs[rank].join()
                conn = next((c for c, r in pending.items() if r == rank), None)
                if conn is not None and conn.poll():  # its report arrived with its exit
                    pending.pop(conn)
                    _read_report(conn, outcomes[rank])
                if outcomes[rank].status == "running":
                    code = procs[rank].exitcode or 0
                    summary = f"{signal_name(code)} (pid {procs[rank].pid})"
                    outcomes[rank].end("died", summary, at=time.monotonic())
        if first_failure is None and any(o.status not in ("running", "passed") for o in outcomes):
            first_failure = time.monotonic()
    hung = first_failure is None
    running = [r for r, o in enumerate(outcomes) if o.status == "running"]
    for rank in running:
        where = _dump_stack(procs[rank], os.path.join(tmp, f"stack{rank}"))
        if hung:
            outcomes[rank].end("hung", where, at=time.monotonic())
        else:
            outcomes[rank].end("stopped", f"killed while {where}", at=time.monotonic())


def _read_report(conn: Connection, outcome: RankOutcome) -> None:
    try:
        status, summary, detail, value = conn.recv()
    except (EOFError, OSError):
        return  # no report: the sentinel path reports the exit
    outcome.value = value
    outcome.end(status, summary, detail, time.monotonic())


def _dump_stack(proc: BaseProcess, path: str) -> str:
    """Where a running worker is: SIGUSR1 makes it dump its stack to ``path``."""
    if proc.pid is None or not proc.is_alive():
        return "unknown (exited)"
    try:
        os.kill(proc.pid, signal.SIGUSR1)
    except ProcessLookupError:
        return "unknown (exited)"
    end = time.monotonic() + DUMP_WAIT
    text = ""
    while time.monotonic() < end:
        time.sleep(0.05)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        if "File " in text:
            break
    return from_faulthandler(text) if text else "unknown (no stack dumped)"


def _kill_all(procs: list[BaseProcess]) -> None:
    """Let released workers exit, then SIGKILL every worker's process group (the worker and
    anything it started); reap them."""
    end = time.monotonic() + EXIT_WAIT
    for proc in procs:
        proc.join(max(0.0, end - time.monotonic()))
    for proc in procs:
        if proc.pid is None:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(proc.pid, signal.SIGKILL)
    for proc in procs:
        proc.join(5)


def _rewritten_module(body: Any) -> tuple[str, str] | None:
    """(module name, file) of the test module behind ``body`` if pytest rewrote its asserts,
    so the workers import it the same way and failures keep pytest's explanations."""
    function = getattr(body, "function", None)
    name = getattr(function, "__module__", None)
    module = sys.modules.get(name or "")
    loader = type(getattr(module, "__loader__", None)).__name__
    path = getattr(module, "__file__", None)
    if name and path and loader == "AssertionRewritingHook":
        return name, path
    return None


def _import_rewritten(name: str, path: str) -> None:
    """Import the test module ``name`` from ``path`` with pytest's assertion rewriting."""
    import ast
    import importlib.util

    try:
        from _pytest.assertion.rewrite import rewrite_asserts
    except ImportError:  # another pytest layout: plain import, plain assertion messages
        return
    with open(path, "rb") as f:
        source = f.read()
    tree = ast.parse(source, filename=path)
    rewrite_asserts(tree, source, path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(tree, path, "exec", dont_inherit=True), module.__dict__)


def _worker(
    rank: int,
    plan: Plan,
    payload: bytes,
    path: list[str],
    rewrite: tuple[str, str] | None,
    conn: Connection,
    hold: Connection,
    tmp: str,
) -> None:
    """A rank's process: own process group, gloo world, the body, one report, ``_exit``."""
    os.setpgid(0, 0)  # so killing the group ends what the body started; a kill of the
    # test process's group misses it: it dies with its parent, the fork server, instead
    die_with_parent()
    if hold.poll(0):  # at EOF: the test process, its only writer, ended before that line
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    stack = open(os.path.join(tmp, f"stack{rank}"), "w")  # noqa: SIM115 - lives until _exit

    faulthandler.register(signal.SIGUSR1, file=stack, all_threads=True)

    def finish(report: tuple[Any, ...]) -> None:
        try:
            conn.send(report)
        except Exception as exc:  # an unpicklable return value
            conn.send(("failed", f"cannot send the return value back: {exc}", "", None))
        if report[0] != "passed":
            return  # exit at once: peers waiting on this rank fail fast instead of hanging
        with contextlib.suppress(EOFError, OSError):
            hold.recv()  # EOFError once the parent releases every worker

    code = 0
    try:
        sys.path[:] = path  # the test process's: test modules import from where they were
        _run_rank(rank, plan, lambda: _load(payload, rewrite), tmp, finish)
    except BaseException:  # never let a worker unwind
        code = 70
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed stream: nothing to flush
                stream.flush()
        os._exit(code)


def _load(payload: bytes, rewrite: tuple[str, str] | None) -> Callable[[Any], Any]:
    if rewrite is not None and rewrite[0] not in sys.modules:
        _import_rewritten(*rewrite)
    body: Callable[[Any], Any] = pickle.loads(payload)
    return body


def _run_rank(
    rank: int,
    plan: Plan,
    load: Callable[[], Callable[[Any], Any]],
    tmp: str,
    finish: Callable[[tuple[Any, ...]], None],
) -> None:
    """Run the body in a gloo world; ``finish`` gets the report while the group is open."""
    import torch
    import torch.distributed as dist

    from fakedist.faults import FaultSchedule
    from fakedist.timeouts import RANK_SLACK
    from fakedist.world import rank_world

    torch.set_num_threads(1)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", LOOPBACK)
    finished = False
    try:
        body = load()
        schedule = FaultSchedule(
            plan.faults, plan.world_size, rank, timeout=plan.timeout, slack=RANK_SLACK
        )
        store = dist.FileStore(os.path.join(tmp, "store"), plan.world_size)
        init = {"store": store, "timeout": timedelta(seconds=plan.timeout)}
        with rank_world(
            "gloo", rank, plan.world_size, init, schedule, record=plan.record, fidelity="gloo"
        ) as world:
            try:
                report: tuple[Any, ...] = ("passed", "", "", body(world))
            except BaseException as exc:  # reported to the parent
                report = (*describe_exception(exc), None)
            finished = True
            finish(report)
    except BaseException as exc:  # setting up the world failed
        if not finished:
            finish((*describe_exception(exc), None))


def die_with_parent() -> bool:
    """Have the kernel SIGKILL this process when its parent dies (Linux ``PR_SET_PDEATHSIG``);
    False where that is not available.

    The parent is the thread that started this process: the fork server dies with the thread
    of the test process that started it (and so with the test process, however it ends:
    SIGTERM, SIGKILL, ``os._exit``; a run from a thread that then ends costs a new server
    for the next run), and every worker with the fork server.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # no libc prctl (another C library)
        return False


def _preloaded_by_fork_server() -> bool:
    """True while multiprocessing's fork server imports this module (see PRELOAD)."""
    main = getattr(sys.modules.get("multiprocessing.forkserver"), "main", None)
    code = getattr(main, "__code__", None)
    frame: Any = sys._getframe()
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


if _preloaded_by_fork_server():
    # A test process that died before this line cannot kill the server: multiprocessing ends
    # it once its "alive" pipe is closed everywhere, which the workers it forks see to (their
    # ``hold`` pipe is at EOF then: they exit at once, see _worker).
    die_with_parent()
