"""Comparison 2: a real test (FSDP2+TP, world 4, tp 2, 10 Adam steps), fakedist vs gloo spawn.

Each variant runs in a fresh interpreter, ``python -m bench.realtest fakedist|gloo``, which
prints one JSON line: the one-time torch import and the per-test cost, measured apart.

One-time imports: torch, torch.distributed's FSDP/TP/DeviceMesh and torch._dynamo (which
DTensor imports lazily on first use: ~1.6 s here), paid once per process.

- fakedist: one process; the test runs as rank 1 in ``fake_world(4)`` (first test: cold
  caches), then as ranks 0, 2, 3 (further tests).
- gloo: the way torch's MultiProcessTestCase runs it: each test spawns 4 processes, each
  imports torch, joins a gloo group on loopback and runs the test; cost = spawn to join.
  Every test starts from fresh processes, so a further test costs what the first one does:
  one spawn per repetition, reported in both rows.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

FAKEDIST = "fakedist, 1 process"
GLOO = "gloo, 4 spawned processes"
WORLD, TP, STEPS = 4, 2, 10
TIMEOUT_S = 300.0


def _child(rank: int, store: str, results: Any) -> None:
    """One spawned gloo rank (its own torch import included in the test's cost)."""
    try:
        import warnings

        warnings.filterwarnings("ignore")
        t0 = time.perf_counter()
        import_distributed_stack()

        t1 = time.perf_counter()
        from bench.worlds import fsdp_tp_train, gloo_world

        with gloo_world(WORLD, rank, store):
            losses = fsdp_tp_train(WORLD, TP, STEPS)
        results.put(("ok", rank, t1 - t0, time.perf_counter() - t1, len(losses)))
    except Exception:
        results.put(("error", rank, traceback.format_exc(), 0.0, 0))


ONE_TIME_IMPORTS = (
    "torch",
    "torch._dynamo",
    "torch.distributed.device_mesh",
    "torch.distributed.fsdp",
    "torch.distributed.tensor.parallel",
)


def import_distributed_stack() -> None:
    """What a distributed test imports once per process (see the module docstring)."""
    for name in ONE_TIME_IMPORTS:
        importlib.import_module(name)


def run_gloo_test() -> dict[str, float]:
    """Spawn 4 ranks, wait for all; always join, kill what is left."""
    ctx = mp.get_context("spawn")
    results: Any = ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="fakedist-bench-") as tmp:
        start = time.perf_counter()
        procs = [
            ctx.Process(target=_child, args=(r, os.path.join(tmp, "store"), results))
            for r in range(WORLD)
        ]
        for proc in procs:
            proc.start()
        got: list[tuple[Any, ...]] = []
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while len(got) < WORLD and time.monotonic() < deadline:
                try:
                    got.append(results.get(timeout=1.0))
                except queue.Empty:
                    if any(p.exitcode not in (None, 0) for p in procs):
                        raise RuntimeError("a gloo rank died") from None
            for proc in procs:
                proc.join(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=10)
        elapsed = time.perf_counter() - start
    errors = [g[2] for g in got if g[0] != "ok"]
    if errors or len(got) < WORLD:
        raise RuntimeError(errors[0] if errors else "gloo ranks gave no result in time")
    return {
        "elapsed_s": elapsed,
        "child_import_s": statistics.median(g[2] for g in got),
        "child_test_s": statistics.median(g[3] for g in got),
    }


def _fakedist_test(rank: int) -> float:
    from bench.worlds import fakedist_world, fsdp_tp_train

    t0 = time.perf_counter()
    with fakedist_world(WORLD, rank):
        assert len(fsdp_tp_train(WORLD, TP, STEPS)) == STEPS
    return time.perf_counter() - t0


def main(mode: str, launched: float) -> None:
    """Run in a fresh interpreter; ``launched``: the parent's time.time() at launch."""
    import warnings

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    import_distributed_stack()
    import fakedist  # noqa: F401

    out: dict[str, float] = {"import_s": time.perf_counter() - t0}
    if mode == "fakedist":
        out["first_s"] = _fakedist_test(1)
        out["one_test_s"] = time.time() - launched
        out["further_s"] = statistics.median(_fakedist_test(r) for r in (0, 2, 3))
    else:
        first = run_gloo_test()
        out["first_s"] = first["elapsed_s"]
        out["one_test_s"] = time.time() - launched
        out["further_s"] = first["elapsed_s"]  # fresh processes again: the same cost
        out["child_import_s"] = first["child_import_s"]
        out["child_test_s"] = first["child_test_s"]
    print(json.dumps(out))


def measure(reps: int) -> dict[str, Any]:
    """Alternate a fakedist process and a gloo process ``reps`` times."""
    keys = {
        "one test, whole process": "one_test_s",
        "one-time imports": "import_s",
        "first test": "first_s",
        "per test": "further_s",
    }
    samples: dict[str, dict[str, list[float]]] = {c: {FAKEDIST: [], GLOO: []} for c in keys}
    extra: dict[str, list[float]] = {"child_import_s": [], "child_test_s": []}
    warm = "from bench.realtest import import_distributed_stack as f; f(); import fakedist"
    subprocess.run([sys.executable, "-c", warm], capture_output=True, timeout=600, check=True)
    for _ in range(reps):
        for variant, mode in ((FAKEDIST, "fakedist"), (GLOO, "gloo")):
            proc = subprocess.run(
                [sys.executable, "-m", "bench.realtest", mode, repr(time.time())],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S + 60,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"bench.realtest {mode} failed:\n{proc.stderr[-2000:]}")
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            for case, key in keys.items():
                samples[case][variant].append(got[key])
            for key in extra:
                if key in got:
                    extra[key].append(got[key])
    med = {k: statistics.median(v) for k, v in extra.items() if v}
    notes = [
        f"FSDP2 + TP on a (2, 2) mesh, {STEPS} Adam steps, in a fresh interpreter per "
        "repetition (.pyc files written by one untimed import first). "
        "One test, whole process: launch to the end of the first test. "
        "One-time imports: torch + FSDP/TP/DeviceMesh + torch._dynamo (DTensor imports it "
        "lazily). First test: cold caches (DTensor sharding propagation, optimizer). "
        "Per test: each further test in the same process (fakedist: ranks 0, 2, 3; "
        "gloo: every test spawns fresh processes, so the same spawn is shown in both rows).",
        "gloo: every test spawns 4 processes; inside, each rank spends "
        f"{med['child_import_s']:.2f} s on the one-time imports and {med['child_test_s']:.2f} s "
        "in the test (4 ranks share the cores).",
    ]
    return {
        "id": "real_test",
        "title": "2. A real test: FSDP2+TP, world 4",
        "unit": "s",
        "baseline": FAKEDIST,
        "variants": [FAKEDIST, GLOO],
        "cases": [{"case": c, "samples": s} for c, s in samples.items()],
        "notes": notes,
    }


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else time.time())
