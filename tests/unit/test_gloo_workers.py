"""gloo workers in hostile surroundings: a TMPDIR too long for a socket path, and a test
process that is killed mid-test (the fork server and every worker must die with it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="AF_UNIX limits and PR_SET_PDEATHSIG: Linux"
)

# A script, not `python -c`: gloo workers import the body's module by name.
_SUM_SCRIPT = """
import multiprocessing.util, os, torch, torch.distributed as dist
from fakedist.fidelity import run_world

def body(world):
    t = torch.ones(1)
    dist.all_reduce(t)
    return t.item()

if __name__ == "__main__":
    print(run_world(body, 2, fidelity="gloo"))
    print(multiprocessing.util.get_temp_dir())
"""

# Both ranks hang (rank 0 sleeps, rank 1 waits for it in a barrier) once they have written
# their pid and their parent's (the fork server's). The fixture is the test process's own:
# with EXIT set it ends the process as pytest-timeout's thread method does, os._exit.
_HANG_TEST = """
import os, threading, time, pytest, torch.distributed as dist

OUT = os.environ["PIDS_DIR"]

@pytest.fixture
def exit_from_a_thread():
    def wait_then_exit():
        while len([n for n in os.listdir(OUT) if n.startswith("rank")]) < 2:
            time.sleep(0.05)
        os._exit(1)

    if os.environ.get("EXIT"):
        threading.Thread(target=wait_then_exit, daemon=True).start()

@pytest.mark.fake_world(2, fidelity="gloo", timeout=600)
def test_hangs(fake_world, exit_from_a_thread):
    rank = dist.get_rank()
    tmp = os.path.join(OUT, f"tmp{rank}")
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()} {os.getppid()}")
    os.replace(tmp, os.path.join(OUT, f"rank{rank}"))
    if rank == 1:
        dist.barrier()
    else:
        time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_gloo_runs_with_a_tmpdir_too_long_for_a_socket_path(tmp_path: Path) -> None:
    (tmp_path / "sum.py").write_text(_SUM_SCRIPT, encoding="utf-8")
    long = tmp_path / ("t" * max(20, 199 - len(str(tmp_path))))  # 200 characters or more
    long.mkdir()
    assert len(str(long)) >= 200
    done = subprocess.run(
        [sys.executable, "sum.py"],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(long)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result, temp_dir = done.stdout.strip().splitlines()[-2:]
    assert result == "[2.0, 2.0]"
    assert len(temp_dir) + len("/listener-12345678") <= 107  # the fork server's socket fits
    assert not os.path.exists(temp_dir)  # removed when the process exited


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL", "os._exit"])
def test_workers_and_fork_server_die_with_the_test_process(tmp_path: Path, how: str) -> None:
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    (tmp_path / "test_hang.py").write_text(_HANG_TEST, encoding="utf-8")
    env = {**os.environ, "PIDS_DIR": str(pids_dir), "EXIT": "1" if how == "os._exit" else ""}
    log = tmp_path / "log"
    args = ["-p", "no:randomly", "-p", "no:cacheprovider", f"--rootdir={tmp_path}"]
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args, "test_hang.py"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    pids: set[int] = set()
    try:
        end = time.monotonic() + 240
        ranks = [pids_dir / "rank0", pids_dir / "rank1"]
        while not all(p.exists() for p in ranks) and proc.poll() is None:
            assert time.monotonic() < end, log.read_text(encoding="utf-8")[-3000:]
            time.sleep(0.05)
        for path in ranks:
            pids.update(int(pid) for pid in path.read_text(encoding="utf-8").split())
        assert len(pids) == 3  # two workers and their fork server
        if how != "os._exit":
            proc.send_signal(getattr(signal, how))
        proc.wait(60)
        assert proc.returncode == (1 if how == "os._exit" else -getattr(signal, how))
        end = time.monotonic() + 5
        while any(_alive(pid) for pid in pids) and time.monotonic() < end:
            time.sleep(0.05)
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
