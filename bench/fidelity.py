"""Comparison 6: one test at each fidelity, world 2 and 4: what each tier costs.

The test: one FSDP2 training step on a small MLP (tests/conformance/test_fidelity.py's
``test_fsdp2_step_matches_single_process``): the same model on every rank from explicit
generators, ``fully_shard`` on each Linear and the root, one forward/backward/SGD step on a
per-rank batch; the body returns the loss. Timed: the whole call, world set-up and teardown
included.

- fake (one rank): ``fake_world(n, rank=0)`` around the body in this process, which is what
  the fake fidelity runs for a test (one simulated rank; collectives compute nothing).
- threaded: ``run_world(body, n, fidelity="threaded")``, every rank a thread here.
- gloo: ``run_world(body, n, fidelity="gloo")``, every rank a worker process forked from
  multiprocessing's fork server (torch preloaded there) over gloo on loopback.

The first call of each variant is timed apart (case "first call"): gloo's includes starting
the fork server, which imports torch once per process. Repetitions then alternate the
variants at each world size. The in-process variants run with one intra-op thread, as each
gloo worker does.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

FAKE, THREADED, GLOO = "fake (one rank)", "threaded", "gloo"
VARIANTS = (FAKE, THREADED, GLOO)
SIZES = (2, 4)
FIRST = "first call, world {n} (one-time costs)"
TIMEOUT_S = 120.0  # per run_world call; a hung rank fails the comparison instead of waiting
HIDDEN, LR = 16, 0.1


def _randn(*shape: int, seed: int) -> Any:
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def fsdp2_step(world: Any) -> float:
    """The test body (module level: the gloo fidelity pickles it by reference)."""
    import torch
    from torch import nn
    from torch.distributed.fsdp import fully_shard

    model = nn.Sequential(nn.Linear(10, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))
    with torch.no_grad():  # the same model on every rank, whatever the global RNG state
        for i, p in enumerate(model.parameters()):
            p.copy_(_randn(*p.shape, seed=i) * 0.3)
    for layer in (model[0], model[2]):
        fully_shard(layer)
    fully_shard(model)
    optim = torch.optim.SGD(model.parameters(), lr=LR)
    loss = model(_randn(4, 10, seed=100 + world.rank)).sum()
    loss.backward()
    optim.step()
    return float(loss.detach())


def timed_step(world: Any) -> tuple[float, float]:
    """What each variant runs: the body, and (loss, ms the body took on this rank)."""
    start = time.perf_counter()
    loss = fsdp2_step(world)
    return loss, (time.perf_counter() - start) * 1e3


def run_variant(variant: str, world_size: int) -> list[tuple[float, float]]:
    """Run the body once at ``variant``: (loss, body ms) per rank (fake: rank 0's only)."""
    if variant == FAKE:
        from fakedist import fake_world

        with fake_world(world_size, rank=0) as world:
            return [timed_step(world)]
    from fakedist.fidelity import run_world

    fidelity = {THREADED: "threaded", GLOO: "gloo"}[variant]
    return list(run_world(timed_step, world_size, fidelity=fidelity, timeout=TIMEOUT_S))


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    """(ms, result) of one call."""
    start = time.perf_counter()
    result = run()
    return (time.perf_counter() - start) * 1e3, result


def fork_server_running() -> bool:
    """True when this process's multiprocessing fork server is already up (then the first
    gloo call does not start it). Reads a private attribute; False when it is not there."""
    from multiprocessing import forkserver

    return getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None) is not None


def _agree(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-5) for x, y in zip(a, b))


def comparison(
    first: Mapping[str, float],
    samples: Mapping[int, Mapping[str, Sequence[float]]],
    *,
    first_size: int,
    server_was_running: bool = False,
    losses_agree: Mapping[int, bool] | None = None,
    body_ms: Mapping[int, Mapping[str, Sequence[float]]] | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """The comparison dict (see bench/report.py) from the measured ms; pure."""
    cases: list[dict[str, Any]] = []
    for n, by_variant in samples.items():
        cases.append(
            {
                "case": f"world {n}",
                "world_size": n,
                "samples": {v: list(by_variant.get(v, [])) for v in VARIANTS},
            }
        )
    cases.append(
        {
            "case": FIRST.format(n=first_size),
            "world_size": first_size,
            "samples": {v: [first[v]] for v in VARIANTS if v in first},
        }
    )
    reps = max((len(s) for c in cases[:-1] for s in c["samples"].values()), default=0)
    notes = [
        f"One FSDP2 step (MLP 10-{HIDDEN}-10, fully_shard on each Linear and the root, SGD) "
        "per call, timed from creating the world to its teardown; the model and each rank's "
        "batch come from explicit torch.Generator objects. "
        f"{reps} repetitions alternating the variants, after the first call of each.",
        f"{FAKE}: fake_world(n, rank=0) in this process, which is what the fake fidelity runs "
        "for one test; collectives compute nothing, so it costs about the same at any world "
        "size. threaded: run_world(..., fidelity='threaded'), every rank a thread here. "
        "gloo: run_world(..., fidelity='gloo'), every rank a process forked from the fork "
        "server, over gloo on loopback. The in-process variants use "
        f"{threads} intra-op thread(s), as each gloo worker does; the ranks share the cores.",
    ]
    if GLOO in first:
        warm = samples.get(first_size, {}).get(GLOO, [])
        if server_was_running:
            notes.append(
                "The fork server was already running when this comparison started: the first "
                "gloo call did not start it."
            )
        elif warm:
            start = first[GLOO] - statistics.median(warm)
            notes.append(
                f"One-time cost of the gloo fidelity: the first gloo call "
                f"({first[GLOO] / 1e3:.2f} s at world {first_size}) starts the fork server, "
                "which imports torch and the distributed modules once per process: "
                f"{start / 1e3:.2f} s more than a later gloo call at that world size (median)."
            )
    notes.append(
        f"First call: the first of each variant in this process, run in the order {FAKE}, "
        f"{THREADED}, {GLOO}; fake's and threaded's include what torch initialises lazily "
        "(FSDP, DTensor) unless an earlier comparison in the same process already did it."
    )
    if body_ms:
        parts = []
        for n, by_variant in sorted(body_ms.items()):
            inner = ", ".join(
                f"{v} {statistics.median(ms):.0f}" for v, ms in by_variant.items() if ms
            )
            parts.append(f"world {n}: {inner}")
        notes.append(
            "Of each call, the body itself (the slowest rank's, median ms): "
            + "; ".join(parts)
            + ". The rest is creating and tearing down the world (gloo: the worker "
            "processes too). A gloo worker is a fresh process, so its body pays what torch "
            "does on a first FSDP step (lazy imports) on every call."
        )
    if losses_agree:
        same = ", ".join(
            f"world {n}: {'yes' if ok else 'NO'}" for n, ok in sorted(losses_agree.items())
        )
        notes.append(f"Per-rank losses identical between threaded and gloo: {same}.")
    return {
        "id": "fidelity",
        "title": "6. One test at each fidelity: FSDP2 step",
        "unit": "ms",
        "baseline": FAKE,
        "variants": list(VARIANTS),
        "cases": cases,
        "notes": notes,
    }


def measure(reps: int, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """Time each fidelity's first call, then alternate the variants ``reps`` times per size."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    import torch.distributed.fsdp  # imported once, untimed, as by any test

    first_size = sizes[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like each gloo rank: one intra-op thread
    try:
        server_was_running = fork_server_running()
        first = {v: timed(functools.partial(run_variant, v, first_size))[0] for v in VARIANTS}
        samples: dict[int, dict[str, list[float]]] = {n: {v: [] for v in VARIANTS} for n in sizes}
        body: dict[int, dict[str, list[float]]] = {n: {v: [] for v in VARIANTS} for n in sizes}
        losses: dict[int, dict[str, list[float]]] = {n: {} for n in sizes}
        for _ in range(reps):
            for n in sizes:
                for variant in VARIANTS:
                    ms, ranks = timed(functools.partial(run_variant, variant, n))
                    samples[n][variant].append(ms)
                    body[n][variant].append(max(inner for _, inner in ranks))
                    losses[n][variant] = [loss for loss, _ in ranks]
    finally:
        torch.set_num_threads(threads)
    agree = {
        n: _agree(got[THREADED], got[GLOO])
        for n, got in losses.items()
        if THREADED in got and GLOO in got
    }
    return comparison(
        first,
        samples,
        first_size=first_size,
        server_was_running=server_was_running,
        losses_agree=agree,
        body_ms=body,
        threads=1,
    )
