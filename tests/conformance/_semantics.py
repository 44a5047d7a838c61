"""What torch's fake backend writes into collective outputs, from the semantics table.

The fake backend's data semantics changed across releases: old releases leave most outputs
untouched, all_gather copies its input, the gather/scatter/all_to_all family followed in
torch 2.13. ``matrix/fake_semantics.toml`` records each fact and the release from which it
holds (fakedist makes some uniform: see ``fakedist.semantics``). The conformance tests assert
exactly what the table says for the installed torch; ``test_semantics_table.py`` probes the
running torch against the same table, so a release that changes behaviour fails there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from fakedist import semantics

SENTINEL = -7.0  # fills outputs, so "untouched" is distinguishable from "copied"


def sentinel(*shape: int) -> torch.Tensor:
    """A float tensor of ``shape`` filled with :data:`SENTINEL`."""
    return torch.full(shape, SENTINEL)


def untouched(t: torch.Tensor) -> bool:
    """True when every element of ``t`` still holds :data:`SENTINEL`."""
    return bool((t == SENTINEL).all())


WRITE_OPS = (
    "all_gather",
    "all_gather_into_tensor",
    "gather",
    "scatter",
    "reduce_scatter",
    "reduce_scatter_tensor",
    "all_to_all",
    "all_to_all_single",
)
TABLE_PATH = Path(__file__).resolve().parents[2] / "matrix" / "fake_semantics.toml"


@dataclass(frozen=True)
class FakeSemantics:
    """The fake backend's data semantics on this torch, as matrix/fake_semantics.toml says."""

    values: dict[str, Any]  # every fact of the table, at the installed torch

    @property
    def writes(self) -> frozenset[str]:
        """Ops (of WRITE_OPS) that write their outputs."""
        return frozenset(op for op in WRITE_OPS if self.values[f"{op}.writes"] == "writes")

    def copies(self, op: str) -> bool:
        """Whether ``op`` writes its output (copy semantics) on this torch."""
        return op in self.writes

    def sum_factor(self, world_size: int) -> int:
        """What a SUM reduction multiplies its data by in a world of ``world_size``."""
        return world_size if self.values["all_reduce.sum_factor"] == "world_size" else 1

    def fact(self, name: str) -> Any:
        """One fact's value on this torch."""
        return self.values[name]


def expected() -> FakeSemantics:
    """The table's values for the installed torch."""
    return FakeSemantics(semantics.load(TABLE_PATH).values(torch.__version__))


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
