"""The plan one test body runs under: fidelity, world size, faults, timeout; or, for
``ranks=``, the ranks to run one by one in fake worlds and compare."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fakedist.timeouts import DEFAULT_TIMEOUT

__all__ = ["Plan", "RanksPlan"]


@dataclass(frozen=True)
class Plan:
    """How to run one body: the fidelity and world, and what each rank gets."""

    fidelity: str
    world_size: int
    faults: tuple[dict[str, Any], ...] = ()
    record: bool = True
    timeout: float = DEFAULT_TIMEOUT
    grace: float = 3.0  # seconds the other ranks get to finish once one has failed
    name: str = "body"  # for messages: the test's id
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RanksPlan:
    """The marker's ``ranks=`` request: which ranks to run, and the world options each gets."""

    world_size: int
    ranks: str | tuple[int, ...]
    options: dict[str, Any]
