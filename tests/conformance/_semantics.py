"""What torch's fake backend writes into collective outputs on the installed torch.

The fake backend's data semantics changed across releases: old releases leave every output
untouched, all_gather learnt to copy its input first, the gather/scatter/reduce_scatter/
all_to_all family followed (torch 2.13), and later work scales reductions as if every rank held
identical data. The conformance tests must hold on all of them, so each op is *probed* once per
session on a throwaway fake world: does it write its output at all, and does SUM scale by the
world size? The tests then check exactly *what* is written (or that nothing is) -- the probe
only answers "written or not", never the values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.distributed as dist

import fakedist

SENTINEL = -7.0  # fills outputs, so "untouched" is distinguishable from "copied"
PROBE_WORLD = 2
PROBE_RANK = 1


def sentinel(*shape: int) -> torch.Tensor:
    """A float tensor of ``shape`` filled with :data:`SENTINEL`."""
    return torch.full(shape, SENTINEL)


def untouched(t: torch.Tensor) -> bool:
    """True when every element of ``t`` still holds :data:`SENTINEL`."""
    return bool((t == SENTINEL).all())


def _probe_all_gather() -> bool:
    out = [sentinel(2) for _ in range(PROBE_WORLD)]
    dist.all_gather(out, torch.ones(2))
    return not untouched(out[0])


def _probe_all_gather_into_tensor() -> bool:
    out = sentinel(2 * PROBE_WORLD)
    dist.all_gather_into_tensor(out, torch.ones(2))
    return not untouched(out)


def _probe_gather() -> bool:
    out = [sentinel(2) for _ in range(PROBE_WORLD)]
    dist.gather(torch.ones(2), out, dst=PROBE_RANK)
    return not untouched(out[0])


def _probe_scatter() -> bool:
    out = sentinel(2)
    dist.scatter(out, [torch.ones(2) for _ in range(PROBE_WORLD)], src=PROBE_RANK)
    return not untouched(out)


def _probe_reduce_scatter() -> bool:
    out = sentinel(2)
    dist.reduce_scatter(out, [torch.ones(2) for _ in range(PROBE_WORLD)])
    return not untouched(out)


def _probe_reduce_scatter_tensor() -> bool:
    out = sentinel(2)
    dist.reduce_scatter_tensor(out, torch.ones(2 * PROBE_WORLD))
    return not untouched(out)


def _probe_all_to_all() -> bool:
    out = [sentinel(2) for _ in range(PROBE_WORLD)]
    dist.all_to_all(out, [torch.ones(2) for _ in range(PROBE_WORLD)])
    return not untouched(out[0])


def _probe_all_to_all_single() -> bool:
    out = sentinel(2 * PROBE_WORLD)
    dist.all_to_all_single(out, torch.ones(2 * PROBE_WORLD))
    return not untouched(out)


PROBES: dict[str, Callable[[], bool]] = {
    "all_gather": _probe_all_gather,
    "all_gather_into_tensor": _probe_all_gather_into_tensor,
    "gather": _probe_gather,
    "scatter": _probe_scatter,
    "reduce_scatter": _probe_reduce_scatter,
    "reduce_scatter_tensor": _probe_reduce_scatter_tensor,
    "all_to_all": _probe_all_to_all,
    "all_to_all_single": _probe_all_to_all_single,
}


@dataclass(frozen=True)
class FakeSemantics:
    """The fake backend's data semantics on this torch."""

    writes: frozenset[str]  # ops (keys of PROBES) that write their outputs
    sum_scales: bool  # all_reduce(SUM) multiplies by the world size ("identical ranks")

    def copies(self, op: str) -> bool:
        """Whether ``op`` writes its output (copy semantics) on this torch."""
        return op in self.writes

    def sum_factor(self, world_size: int) -> int:
        """What a SUM reduction multiplies its data by in a world of ``world_size``."""
        return world_size if self.sum_scales else 1


def probe() -> FakeSemantics:
    """Run every probe on a throwaway fake world (no other group may be initialised)."""
    import warnings

    if dist.is_initialized():
        raise RuntimeError("probe() needs no initialised process group")
    writes: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation warnings for the *_tensor names
        with fakedist.fake_world(PROBE_WORLD, rank=PROBE_RANK):
            for name, fn in PROBES.items():
                if fn():
                    writes.add(name)
            t = torch.ones(2)
            dist.all_reduce(t)
            sum_scales = bool((t == PROBE_WORLD).all())
    return FakeSemantics(frozenset(writes), sum_scales)


def assert_copied_or_untouched(
    sem: FakeSemantics, op: str, outputs: Sequence[torch.Tensor], expected: Sequence[Any]
) -> None:
    """Copy semantics: each output equals its expected value; otherwise all are untouched."""
    assert len(outputs) == len(expected)
    if sem.copies(op):
        for i, (out, exp) in enumerate(zip(outputs, expected)):
            exp_t = torch.as_tensor(exp, dtype=out.dtype).expand_as(out)
            assert torch.equal(out, exp_t), f"{op} output {i}: {out} != {exp_t}"
    else:
        for i, out in enumerate(outputs):
            assert untouched(out), f"{op} output {i} was written although {op} does not copy"


def on_ranks(world_size: int, *ranks: int, **options: Any) -> list[Any]:
    """``parametrize`` values: one ``fake_world`` marker per rank, the rank as the value."""
    return [
        pytest.param(
            r,
            marks=pytest.mark.fake_world(world_size=world_size, rank=r, **options),
            id=f"rank{r}of{world_size}",
        )
        for r in ranks
    ]
