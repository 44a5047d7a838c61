"""What fakedist adds on top of bare torch: per-collective cost and the world-size curve.

Run: ``python bench/bench_overhead.py [--sizes 8,64,1024,8192,65536] [--reps 5] [--calls 2000]``

1. Per call: ``dist.all_reduce`` of 4 floats on torch's fake backend (bare), the same inside
   ``fake_world`` (CommLog recording + an empty fault schedule), on fakedist's pure-Python
   ``pypg`` backend, and (for reference) under a TorchDispatchMode that only looks at the
   c10d ops: the design fakedist rejected.
2. Scale: DeviceMesh init and one FSDP2+TP step of a tiny model on a (N/2, 2) mesh, bare torch
   vs fakedist (recording, empty schedule, the plugin's leak check), and the part of the
   fakedist run spent in fakedist's own code (profiled).

Repetitions alternate bare/fakedist; medians are printed with the ratio fakedist/bare.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

import fakedist
from fakedist import fake_world

warnings.filterwarnings("ignore")


@contextmanager
def bare_world(world_size: int, rank: int, backend: str = "fake") -> Iterator[None]:
    """torch alone: init_process_group on the fake backend, destroyed afterwards."""
    fakedist.register_backends()  # makes "fake" available on torch < 2.11; no hooks
    dist.init_process_group(backend, rank=rank, world_size=world_size, store=dist.HashStore())
    try:
        yield
    finally:
        dist.destroy_process_group()


@contextmanager
def fakedist_world(world_size: int, rank: int, backend: str = "fake") -> Iterator[None]:
    """fake_world with recording and an empty fault schedule, plus the plugin's leak check."""
    with fake_world(world_size, rank=rank, backend=backend, faults=[]):
        yield
    assert not dist.is_initialized()  # what plugin._fakedist_no_leaked_group does


class C10dOnlyMode(TorchDispatchMode):
    """The rejected design: a dispatch mode that records only c10d/_c10d_functional ops."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func.namespace in ("c10d", "_c10d_functional"):
            self.seen.append((func, args))
        return func(*args, **(kwargs or {}))


def time_calls(calls: int) -> float:
    t = torch.ones(4)
    start = time.perf_counter()
    for _ in range(calls):
        dist.all_reduce(t)
    return (time.perf_counter() - start) / calls * 1e6


def per_call(reps: int, calls: int) -> None:
    variants: dict[str, Callable[[], AbstractContextManager[Any]]] = {
        "bare fake": lambda: bare_world(8, 3),
        "fakedist (record+faults)": lambda: fakedist_world(8, 3),
        "fakedist pypg": lambda: fakedist_world(8, 3, "pypg"),
    }
    results: dict[str, list[float]] = {k: [] for k in [*variants, "dispatch mode (rejected)"]}
    for _ in range(reps):
        for name, make in variants.items():
            with make():
                time_calls(100)
                results[name].append(time_calls(calls))
        with bare_world(8, 3), C10dOnlyMode():
            results["dispatch mode (rejected)"].append(time_calls(calls))
    base = statistics.median(results["bare fake"])
    print(f"\nper-call dist.all_reduce(torch.ones(4)), {calls} calls x {reps} reps, median us")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"  {name:28s} {med:8.2f} us   x{med / base:5.2f}")


def fsdp_tp_step(world_size: int) -> tuple[float, float]:
    """Mesh init and one FSDP2+TP step on a (N/2, 2) mesh; returns both in ms."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    t0 = time.perf_counter()
    mesh = init_device_mesh("cpu", (world_size // 2, 2), mesh_dim_names=("dp", "tp"))
    t1 = time.perf_counter()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16))
    parallelize_module(model, mesh["tp"], {"0": ColwiseParallel(), "2": RowwiseParallel()})
    fully_shard(model, mesh=mesh["dp"])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 16)).sum().backward()
    opt.step()
    t2 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3


def ours_ms(world_size: int) -> tuple[float, float]:
    """Profile one fakedist run; (total ms, ms inside fakedist's own recording/fault code)."""
    prof = cProfile.Profile()
    prof.enable()
    with fakedist_world(world_size, world_size - 1):
        fsdp_tp_step(world_size)
    prof.disable()
    stats = pstats.Stats(prof)
    own = ("on_call", "install", "uninstall", "faults_from_env", "__init__")
    total = 0.0
    ours = 0.0
    for (path, _, func), (_, _, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "fakedist" in path and func in own and ("_hooks" in path or "faults" in path):
            ours += cum
    total = stats.total_tt  # type: ignore[attr-defined]
    return total * 1e3, ours * 1e3


def scale(sizes: list[int], reps: int) -> None:
    with bare_world(8, 7):
        fsdp_tp_step(8)  # warm-up: lazy imports, DTensor caches
    print(
        f"\nmesh init + one FSDP2+TP step, (N/2, 2) mesh, rank N-1, {reps} alternating reps, "
        "median ms"
    )
    print(
        f"  {'N':>6} {'mesh bare':>10} {'mesh fd':>9} {'step bare':>10} {'step fd':>9} "
        f"{'total x':>8} {'ours (profiled)':>16}"
    )
    for n in sizes:
        bare: list[tuple[float, float]] = []
        ours: list[tuple[float, float]] = []
        for _ in range(reps):
            with bare_world(n, n - 1):
                bare.append(fsdp_tp_step(n))
            with fakedist_world(n, n - 1):
                ours.append(fsdp_tp_step(n))
        mb, sb = (statistics.median(x) for x in zip(*bare))
        mo, so = (statistics.median(x) for x in zip(*ours))
        prof_total, prof_ours = ours_ms(n)
        print(
            f"  {n:>6} {mb:>10.1f} {mo:>9.1f} {sb:>10.1f} {so:>9.1f} "
            f"{(mo + so) / (mb + sb):>8.3f} {prof_ours:>7.2f} of {prof_total:>7.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,64,1024,8192,65536")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, fakedist {fakedist.__version__}")
    per_call(args.reps, args.calls)
    if not args.skip_scale:
        scale([int(s) for s in args.sizes.split(",")], args.reps)


if __name__ == "__main__":
    main()
