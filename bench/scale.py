"""Comparison 4: mesh init + one FSDP2+TP step at world sizes 8 to 65,536, bare torch vs fakedist.

Rank N-1 of a (N/2, 2) mesh; bare torch is ``init_process_group("fake")`` alone, fakedist is
``fake_world`` with recording, an idle fault schedule and the plugin's leak check. Timed: the
whole world, set-up and teardown included. DTensor's sharding caches are cleared before each
run (fake_world clears them on exit; without that the variant that runs second would inherit
warm caches). One extra fakedist run per size under cProfile says how much is fakedist's code.
"""

from __future__ import annotations

import cProfile
import functools
import pstats
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import fakedist
from bench.worlds import IDLE_FAULTS, bare_world, fakedist_world, fsdp_tp_step
from fakedist.world import forget_dtensor_caches

BARE, FAKEDIST = "bare torch", "fakedist"
SIZES = (8, 64, 1024, 8192, 65536)


# fakedist functions that only pass a call through to torch: their own time in cProfile
# includes the C++ collective they wrap; fake_world's callees are init/destroy, as in bare.
PASS_THROUGH = ("wrapper", "__call__")
TORCH_CALLERS = (*PASS_THROUGH, "fake_world")


def own_time_ms(world_size: int) -> tuple[float, float]:
    """Profile one fakedist run: (total ms, ms spent on fakedist's own work).

    Own work: the time inside fakedist's functions (pass-through wrappers left out) plus
    what they call outside fakedist (torch helpers the recorder uses, the cache clearing),
    except the wrapped collectives and the init/destroy that bare torch does too.
    """
    prof = cProfile.Profile()
    prof.enable()
    with fakedist_world(world_size, world_size - 1, faults=IDLE_FAULTS):
        fsdp_tp_step(world_size)
    prof.disable()
    stats: Any = pstats.Stats(prof)
    package = str(Path(fakedist.__file__).parent)
    ours = 0.0
    for (path, _, func), (_, _, own, _, callers) in stats.stats.items():
        if path.startswith(package):
            ours += 0.0 if func in PASS_THROUGH else own
            continue
        for (caller_path, _, caller), timing in callers.items():
            if caller_path.startswith(package) and caller not in TORCH_CALLERS:
                ours += timing[3]
    return stats.total_tt * 1e3, ours * 1e3


def measure(reps: int, sizes: tuple[int, ...] = SIZES, profile: bool = True) -> dict[str, Any]:
    """Alternate bare and fakedist ``reps`` times per size; ms for mesh init + step."""
    with bare_world(8, 7):
        fsdp_tp_step(8)  # warm-up: lazy imports, DTensor caches
    cases = []
    split = []
    for n in sizes:
        samples: dict[str, list[float]] = {BARE: [], FAKEDIST: []}
        parts: dict[str, list[tuple[float, float]]] = {BARE: [], FAKEDIST: []}
        worlds: list[tuple[str, Callable[[], AbstractContextManager[None]]]] = [
            (BARE, functools.partial(bare_world, n, n - 1)),
            (FAKEDIST, functools.partial(fakedist_world, n, n - 1, faults=IDLE_FAULTS)),
        ]
        for _ in range(reps):
            for variant, world in worlds:
                forget_dtensor_caches()  # both start cold, as every fake_world does
                start = time.perf_counter()
                with world():
                    mesh_ms, step_ms = fsdp_tp_step(n)
                samples[variant].append((time.perf_counter() - start) * 1e3)
                parts[variant].append((mesh_ms, step_ms))
        case: dict[str, Any] = {"case": f"{n:,}", "world_size": n, "samples": samples}
        case["mesh_ms"] = {v: statistics.median(m for m, _ in p) for v, p in parts.items()}
        case["step_ms"] = {v: statistics.median(s for _, s in p) for v, p in parts.items()}
        if profile:
            total, ours = own_time_ms(n)
            case["profile_ms"] = {"total": total, "fakedist": ours}
            split.append(f"{n:,}: {ours:.2f} of {total:.0f} ms")
        cases.append(case)
    notes = [
        "(N/2, 2) mesh, rank N-1, MLP 16-32-16, one SGD step; timed from creating the world "
        "to its teardown. Bare: init_process_group('fake') alone; fakedist: fake_world with "
        "recording, an idle fault schedule and the leak check. DTensor caches cleared before "
        "every run (both variants start cold)."
    ]
    if split:
        notes.append(
            "fakedist's own work (recording, fault checks, hooks, cache clearing; one cProfile "
            "run per size): " + "; ".join(split)
        )
    return {
        "id": "scale",
        "title": "4. Scale: mesh init + one FSDP2+TP step",
        "unit": "ms",
        "baseline": BARE,
        "variants": [BARE, FAKEDIST],
        "cases": cases,
        "notes": notes,
    }
