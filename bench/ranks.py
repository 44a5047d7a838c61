"""Comparison 7: what checking every rank costs: one FSDP2+TP step, run as 1, 64 or a sample.

:func:`fakedist.check_ranks` runs the step once per chosen rank, each in its own fake world,
one after another, then compares the ranks' collectives. Variants, per world size:

- one rank, cold: ``check_ranks(step, n, [0])`` in a fresh process (torch imported before the
  clock starts): what one fake test of the step costs on its own, lazy initialisation included.
- one rank, warm: the same in this process after a first call.
- all ranks / a sample: ``check_ranks(step, n, "all")`` at world 64,
  ``check_ranks(step, n, "sample")`` at 65,536.

The step: a (dp, tp) mesh, ColwiseParallel/RowwiseParallel on an MLP 10-32-10, fully_shard on
dp, one forward and backward (tests/conformance/test_rank_agreement.py's consistent case).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

COLD, WARM, ALL, SAMPLE = "one rank, cold process", "one rank, warm", "all ranks", "sample"
CASES = ((64, ALL), (65536, SAMPLE))
TP = 8


def step(world: Any) -> None:
    """One FSDP2+TP forward/backward on a (world/8, 8) mesh."""
    import torch
    from torch import nn
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    mesh = init_device_mesh("cpu", (world.world_size // TP, TP), mesh_dim_names=("dp", "tp"))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 4 * TP), nn.ReLU(), nn.Linear(4 * TP, 10))
    plan = {"0": ColwiseParallel(), "2": RowwiseParallel()}
    parallelize_module(model, mesh["tp"], plan, src_data_rank=None)
    fully_shard(model, mesh=mesh["dp"])
    model(torch.randn(2, 10)).sum().backward()


def timed_check(n: int, ranks: Any) -> tuple[float, int]:
    """(ms, ranks run) of one ``check_ranks(step, n, ranks)``; raises if the ranks disagree."""
    from fakedist import check_ranks

    start = time.perf_counter()
    report = check_ranks(step, n, ranks).check()
    return (time.perf_counter() - start) * 1e3, len(report.ranks)


_COLD = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import torch, torch.distributed.fsdp, torch.distributed.tensor.parallel
torch.set_num_threads(1)
from bench.ranks import timed_check
print(json.dumps(timed_check(int(sys.argv[1]), [0])))
"""


def cold(n: int) -> float:
    """ms of one rank's check in a fresh process (imports not counted)."""
    done = subprocess.run(
        [sys.executable, "-c", _COLD, str(n)], capture_output=True, text=True, check=True
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])[0])


def measure(reps: int) -> dict[str, Any]:
    """Alternate cold, warm and many-rank checks ``reps`` times per world size."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    timed_check(64, [0])  # this process's first step: lazy initialisation, untimed
    cases = []
    counts: dict[int, int] = {}
    for n, variant in CASES:
        samples: dict[str, list[float]] = {COLD: [], WARM: [], ALL: [], SAMPLE: []}
        for _ in range(reps):
            samples[COLD].append(cold(n))
            samples[WARM].append(timed_check(n, [0])[0])
            ms, counts[n] = timed_check(n, "all" if variant == ALL else "sample")
            samples[variant].append(ms)
        samples = {v: ms for v, ms in samples.items() if ms}
        cases.append({"case": f"world {n}", "world_size": n, "samples": samples})
    per_rank = {
        n: statistics.median(c["samples"][v]) / counts[n] for (n, v), c in zip(CASES, cases)
    }
    notes = [
        f"One FSDP2+TP forward/backward (MLP 10-{4 * TP}-10, tp={TP}) per rank; "
        f"{reps} repetitions alternating the variants; one intra-op thread.",
        f"world 64 checks all 64 ranks; world 65536 a sample of {counts[65536]} ranks (first "
        "and last rank, then the first and last member of every group a sampled rank used).",
        "Per checked rank (median): "
        + ", ".join(f"world {n}: {ms:.0f} ms" for n, ms in per_rank.items())
        + ". Each rank pays what one warm fake rank pays: torch's DTensor caches hold the "
        "mesh of the rank that filled them (its coordinate), so they are cleared between "
        "worlds and nothing of the step is shared across ranks.",
    ]
    return {
        "id": "ranks",
        "title": "7. Checking every rank: one FSDP2+TP step",
        "unit": "ms",
        "baseline": COLD,
        "variants": [COLD, WARM, ALL, SAMPLE],
        "cases": cases,
        "notes": notes,
    }
