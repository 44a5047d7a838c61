"""run_world at the threaded and gloo fidelities: results, failures naming the rank, hangs
naming the collective, killed workers, and nothing left running afterwards."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from fakedist import with_fake_comms
from fakedist.fidelity import FidelityUnsupported, RankFailure, run_world
from fakedist.fidelity.where import describe, from_faulthandler

RANKED = ("threaded", "gloo")
HERE = Path(__file__).name


def _line(marker: str) -> int:
    """The line of this file holding ``marker`` (for "called at" assertions)."""
    lines = Path(__file__).read_text(encoding="utf-8").splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text and "_line(" not in text)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _gone(pids: list[int], within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


# Rank bodies live at module level: the gloo fidelity pickles them (by reference) to send
# them to its worker processes; functools.partial carries their arguments.


def _sum_body(world):
    t = torch.tensor([float(world.rank + 1)])
    dist.all_reduce(t)
    return world.rank, dist.get_world_size(), t.item(), world.comms.ops(), world.fidelity


def _disagree_body(world):
    dist.barrier()
    assert world.rank != 2, f"rank {world.rank} disagrees"  # failing-line


def _hang_body(world):
    if world.rank == 1:
        dist.all_reduce(torch.ones(2))  # hangs-here: rank 0 never joins


def _barrier_on_rank0(world):
    if world.rank == 0:
        dist.barrier()


def _killed_body(tmp_path: Path, world):
    (tmp_path / f"pid{world.rank}").write_text(str(os.getpid()))
    if world.rank == 1:
        time.sleep(60)  # killed here
    dist.all_reduce(torch.ones(2))


def _grandchild_body(tmp_path: Path, world):
    if world.rank == 0:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        (tmp_path / "grandchild").write_text(str(child.pid))
        dist.barrier()  # waits for rank 1, which never comes
    else:
        while not (tmp_path / "grandchild").exists():
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGKILL)


def _p2p_body(world):
    t = torch.ones(1)
    if world.rank == 0:
        dist.send(t, 1)
    else:
        dist.recv(t, 0)


def _skip_body(world):
    pytest.skip("not today")


def _all_reduce_body(world):
    dist.all_reduce(torch.ones(2))  # all-reduce-here


def _lock_body(world):
    return threading.Lock()


def _nothing_left() -> None:
    assert not [t.name for t in threading.enumerate() if t.name.startswith("fakedist-rank-")]
    assert not multiprocessing.active_children()
    assert not dist.is_initialized()


@pytest.mark.parametrize("fidelity", RANKED)
def test_every_rank_runs_with_its_own_world(fidelity: str) -> None:
    results = run_world(_sum_body, 3, fidelity=fidelity)
    assert results == [(r, 3, 6.0, ["all_reduce"], fidelity) for r in range(3)]
    _nothing_left()


@pytest.mark.parametrize("fidelity", RANKED)
def test_failure_names_the_rank_and_its_traceback(fidelity: str) -> None:
    with pytest.raises(RankFailure) as info:
        run_world(_disagree_body, 3, fidelity=fidelity, name="test_x")
    message = str(info.value)
    first = message.splitlines()[0]
    assert first == f"test_x: rank 2 of 3 ({fidelity}) failed: AssertionError: rank 2 disagrees"
    assert "  rank 0: passed" in message
    assert "  rank 1: passed" in message
    assert f"{HERE}:{_line('# failing-line')}: in _disagree_body" in message
    assert info.value.rank == 2
    _nothing_left()


@pytest.mark.parametrize("fidelity", RANKED)
def test_hung_rank_fails_at_the_timeout_naming_rank_and_collective(fidelity: str) -> None:
    with pytest.raises(RankFailure) as info:
        # 2 s: rank 0 must start, join and pass within it, also on a loaded machine
        run_world(_hang_body, 2, fidelity=fidelity, timeout=2, name="t")
    lines = str(info.value).splitlines()
    assert lines[0] == f"t: rank 1 of 2 ({fidelity}) hung: still running after the 2 s timeout"
    assert lines[1] == "  rank 0: passed"
    assert lines[2] == f"  rank 1: hung in all_reduce ({HERE}:{_line('# hangs-here')})"
    assert info.value.rank == 1
    _nothing_left()


def test_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKEDIST_TIMEOUT", "0.5")

    with pytest.raises(RankFailure, match=r"after the 0\.5 s timeout"):
        run_world(_barrier_on_rank0, 2)


def test_threaded_delay_past_the_timeout_ends_with_the_test() -> None:
    """A rank sleeping in a fault delay is reported hung in that collective and its thread
    ends with the run (it used to sleep on, blamed on the tests after it)."""
    faults = [{"op": "all_reduce", "rank": 1, "error": "none", "delay": 60}]
    start = time.monotonic()
    with pytest.raises(RankFailure) as info:
        run_world(_all_reduce_body, 2, fidelity="threaded", faults=faults, timeout=1, name="t")
    assert time.monotonic() - start < 30
    lines = str(info.value).splitlines()
    assert lines[0].startswith("t: rank")
    assert lines[0].endswith("of 2 (threaded) hung: still running after the 1 s timeout")
    assert lines[2] == f"  rank 1: hung in all_reduce ({HERE}:{_line('# all-reduce-here')})"
    _nothing_left()


@pytest.mark.parametrize(("timeout", "shown"), [(1e15, "1000000000000000.0"), (3000000, "3000000")])
def test_timeout_beyond_a_day_is_refused(timeout: float, shown: str) -> None:
    with pytest.raises(ValueError) as info:
        run_world(_sum_body, 2, fidelity="threaded", timeout=timeout)
    assert str(info.value) == f"timeout: timeout must be at most 86400 s (a day), got {shown}"


def test_gloo_worker_killed_mid_test_names_the_rank_and_leaves_nothing(tmp_path: Path) -> None:
    """A worker is SIGKILLed from outside while its peers wait in a collective."""

    def killer() -> None:
        pid_file = tmp_path / "pid1"
        end = time.monotonic() + 60
        while (not pid_file.exists() or not pid_file.read_text()) and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(0.2)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    thread = threading.Thread(target=killer)
    thread.start()
    with pytest.raises(RankFailure) as info:
        run_world(functools.partial(_killed_body, tmp_path), 3, fidelity="gloo", name="t")
    thread.join()
    pid1 = int((tmp_path / "pid1").read_text())
    first = str(info.value).splitlines()[0]
    assert first == f"t: rank 1 of 3 (gloo) died: killed by SIGKILL (pid {pid1})"
    assert info.value.rank == 1
    pids = [int((tmp_path / f"pid{r}").read_text()) for r in range(3)]
    assert _gone(pids)
    _nothing_left()


def test_gloo_worker_that_kills_itself_and_its_children_are_reaped(tmp_path: Path) -> None:
    with pytest.raises(RankFailure, match=r"rank 1 of 2 \(gloo\) died: killed by SIGKILL"):
        run_world(functools.partial(_grandchild_body, tmp_path), 2, fidelity="gloo")
    assert _gone([int((tmp_path / "grandchild").read_text())])
    _nothing_left()


def test_threaded_op_the_group_lacks_is_unsupported() -> None:
    with pytest.raises(FidelityUnsupported) as info:
        run_world(_p2p_body, 2, fidelity="threaded")
    assert str(info.value) == (
        "threaded fidelity: torch's threaded process group has no send (ProcessLocalGroup.send); "
        "run this test at fidelity 'gloo' or 'fake'"
    )
    _nothing_left()


@pytest.mark.parametrize("fidelity", RANKED)
def test_skip_inside_a_rank_skips(fidelity: str) -> None:
    with pytest.raises(FidelityUnsupported, match=r"^not today$"):
        run_world(_skip_body, 2, fidelity=fidelity)


@pytest.mark.parametrize("fidelity", RANKED)
def test_fault_on_one_rank_fails_that_rank(fidelity: str) -> None:
    faults = [{"op": "all_reduce", "rank": 1, "error": "timeout"}]
    with pytest.raises(RankFailure) as info:
        run_world(_all_reduce_body, 2, fidelity=fidelity, faults=faults, name="t")
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"t: rank 1 of 2 ({fidelity}) failed: CollectiveTimeout: all_reduce")
    assert info.value.rank == 1
    assert "  rank 0: " in str(info.value)  # rank 0 is stopped (threaded) or fails after it


def test_gloo_unpicklable_return_value_is_a_failure() -> None:
    with pytest.raises(RankFailure, match="cannot send the return value back"):
        run_world(_lock_body, 2, fidelity="gloo")


def test_gloo_body_that_cannot_be_pickled_is_named() -> None:
    from fakedist.fidelity import FidelitySetupError, TestCall

    with pytest.raises(FidelitySetupError) as info:
        run_world(lambda world: None, 2, fidelity="gloo")
    assert str(info.value).startswith("gloo fidelity: cannot send the body (Can't pickle")
    call = TestCall(_all_reduce_body, {"lock": threading.Lock(), "fake_world": None})
    with pytest.raises(FidelitySetupError) as info:
        run_world(call, 2, fidelity="gloo")
    assert str(info.value).startswith("gloo fidelity: cannot send fixture 'lock' (cannot pickle")
    _nothing_left()


def test_threaded_ranks_share_the_process() -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def body(world):
        with lock:
            seen.append(dist.get_rank())

    run_world(body, 4, fidelity="threaded")
    assert sorted(seen) == [0, 1, 2, 3]


# Each rank enters torch's compiler stack through a different module, all at once.
_FIRST_IMPORTS = """
import importlib, sys, threading
from fakedist.fidelity import run_world

assert "torch._dynamo" not in sys.modules, "the test needs a process without it"
ENTRIES = ["torch._dynamo", "torch.utils._runtime_estimation",
           "torch._inductor.test_operators", "torch._functorch.aot_autograd"]
barrier = threading.Barrier(len(ENTRIES))

def body(world):
    barrier.wait()
    try:
        importlib.import_module(ENTRIES[world.rank])
    except ModuleNotFoundError:  # an older torch
        return "absent"
    return "imported"

print(run_world(body, len(ENTRIES), fidelity="threaded"))
"""


def test_threaded_ranks_do_not_race_on_torch_first_imports() -> None:
    # Without the preload, plain threads doing this fail most runs ("partially initialized
    # module", _DeadlockError); it needs a fresh interpreter, where nothing imported them yet.
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_IMPORTS], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = done.stdout.strip().splitlines()[-1]
    assert results.startswith("['imported', "), results


def test_preload_skips_modules_this_torch_lacks() -> None:
    from fakedist.fidelity.preload import TORCH_MODULES, import_present

    assert "torch._dynamo" in TORCH_MODULES
    missing = import_present(["torch", "torch.no_such_module", "torch.distributed"])
    assert missing == ["torch.no_such_module"]


def test_with_fake_comms_runs_every_rank() -> None:
    seen: list[tuple[int, int]] = []

    @with_fake_comms(world_size=3, fidelity="threaded")
    def step() -> None:
        t = torch.ones(1)
        dist.all_reduce(t)
        seen.append((dist.get_rank(), int(t.item())))

    assert step() == [None, None, None]
    assert sorted(seen) == [(0, 3), (1, 3), (2, 3)]


def test_with_fake_comms_unsupported_op_is_a_unittest_skip() -> None:
    import unittest

    @with_fake_comms(world_size=2, fidelity="threaded")
    def p2p() -> None:
        if dist.get_rank() == 0:
            dist.send(torch.ones(1), 1)
        else:
            dist.recv(torch.ones(1), 0)

    with pytest.raises(unittest.SkipTest, match="has no send"):
        p2p()


def test_excepthook_is_restored() -> None:
    before = sys.excepthook
    run_world(lambda world: None, 2, fidelity="threaded")
    from fakedist import fake_world

    with fake_world(2):
        pass
    assert sys.excepthook is before


def test_describe_picks_outermost_collective_and_innermost_user_line() -> None:
    c10d = dist.distributed_c10d.__file__
    frames = [
        ("/proj/tests/test_a.py", 5, "test_a"),
        ("/proj/src/mylib.py", 9, "step"),
        (c10d, 100, "all_gather_object"),
        (c10d, 200, "all_gather"),
    ]
    assert describe(frames) == "in all_gather_object (mylib.py:9)"
    assert describe(frames[:2]) == "outside any collective (mylib.py:9)"


def test_from_faulthandler_reads_the_worker_block() -> None:
    c10d = dist.distributed_c10d.__file__
    text = (
        "Thread 0x01 (most recent call first):\n"
        '  File "/usr/lib/python3.11/threading.py", line 320 in wait\n'
        "\n"
        "Current thread 0x02 (most recent call first):\n"
        f'  File "{c10d}", line 2800 in barrier\n'
        '  File "/proj/tests/test_b.py", line 12 in body\n'
        '  File "/site/fakedist/fidelity/gloo.py", line 250 in _run_rank\n'
    )
    assert from_faulthandler(text) == "in barrier (test_b.py:12)"
