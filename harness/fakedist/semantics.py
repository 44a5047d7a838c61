"""What a fake world does with data, per op and torch release: the table and its probes.

torch's ``fake`` backend changed what it writes into collective outputs from release to
release. ``matrix/fake_semantics.toml`` records each *fact* (does all_gather write its outputs?
what does an uneven all_to_all_single produce? ...) with the release from which each value
holds. :func:`expected` reads the value for a torch version; :func:`probe` measures the same
facts on the running torch, through a fakedist world, so a test can compare the two: that is
how a torch release that changes behaviour shows up.

The table is what a *fakedist* world does. Where fakedist makes behaviour uniform (gathered
outputs never require grad; reduce_scatter writes this rank's chunk on releases whose fake
backend leaves it untouched), the table says so in the fact's ``note``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python < 3.11
    import tomli as tomllib

__all__ = [
    "FACTS",
    "Fact",
    "SemanticsError",
    "Table",
    "drift",
    "load",
    "probe",
    "release_of",
]

Value = Any  # bool, str or a list of floats: whatever the fact's probe returns

_RELEASE = re.compile(r"(\d+)\.(\d+)")


class SemanticsError(ValueError):
    """Bad table data; the message is one line naming the file, the key and the value."""


def release_of(version: str) -> tuple[int, int]:
    """``"2.13.0+cpu"`` -> ``(2, 13)``; ``"2.16.0.dev20261201"`` -> ``(2, 16)``."""
    match = _RELEASE.match(version)
    if match is None:
        raise SemanticsError(f"not a torch version: {version!r}")
    return int(match[1]), int(match[2])


@dataclass(frozen=True)
class Fact:
    """One fact: its history as (release, value) pairs, oldest first."""

    name: str
    history: tuple[tuple[tuple[int, int], Value], ...]
    note: str = ""

    def at(self, release: tuple[int, int]) -> Value:
        """The value that holds on ``release`` (the newest entry not after it)."""
        value: Value = None
        for since, v in self.history:
            if since <= release:
                value = v
        return value

    def since(self, release: tuple[int, int]) -> str:
        """The release from which the value at ``release`` holds, as ``"2.13"``."""
        found = self.history[0][0]
        for since, _ in self.history:
            if since <= release:
                found = since
        return f"{found[0]}.{found[1]}"


@dataclass(frozen=True)
class Table:
    """The loaded semantics table."""

    path: Path
    facts: Mapping[str, Fact]

    def values(self, version: str) -> dict[str, Value]:
        """Every fact's value on torch ``version``."""
        release = release_of(version)
        return {name: fact.at(release) for name, fact in self.facts.items()}


def load(path: str | Path) -> Table:
    """Read and validate the table; raise SemanticsError naming the bad key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SemanticsError(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SemanticsError(f"{path}: not a TOML file: {exc}") from None
    if raw.get("schema") != 1:
        raise SemanticsError(f"{path}: schema: expected 1, got {raw.get('schema')!r}")
    facts: dict[str, Fact] = {}
    for name, entry in raw.get("facts", {}).items():
        if name not in FACTS:
            raise SemanticsError(f"{path}: facts.{name}: no probe measures this fact")
        if not isinstance(entry, dict) or not isinstance(entry.get("history"), dict):
            raise SemanticsError(f"{path}: facts.{name}: expected a table with a history table")
        history: list[tuple[tuple[int, int], Value]] = []
        for since, value in entry["history"].items():
            if not _RELEASE.fullmatch(since):
                raise SemanticsError(f"{path}: facts.{name}.history: {since!r} is not a minor")
            history.append((release_of(since), value))
        if not history:
            raise SemanticsError(f"{path}: facts.{name}.history: empty")
        facts[name] = Fact(name, tuple(sorted(history)), str(entry.get("note", "")))
    missing = sorted(set(FACTS) - set(facts))
    if missing:
        raise SemanticsError(f"{path}: facts: no entry for {', '.join(missing)}")
    return Table(path, facts)


# ----------------------------------------------------------------------------- probes

PROBE_WORLD = 2
PROBE_RANK = 0
_SENTINEL = -7.0


def _written(outputs: list[Any]) -> bool:
    return not all(bool((o == _SENTINEL).all()) for o in outputs)


def _write_probe(run: Callable[[Any, Any], list[Any]]) -> Callable[[], Value]:
    """A probe that says whether an op writes its outputs: writes / untouched / unsupported."""

    def probe_fn() -> Value:
        import torch

        def full(*shape: int) -> Any:
            return torch.full(shape, _SENTINEL)

        try:
            outputs = run(torch, full)
        except (RuntimeError, ValueError, NotImplementedError):
            return "unsupported"  # a fake backend that cannot do the op at all
        return "writes" if _written(outputs) else "untouched"

    return probe_fn


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def _all_gather(torch: Any, full: Any) -> list[Any]:
    out = [full(2) for _ in range(PROBE_WORLD)]
    _dist().all_gather(out, torch.ones(2))
    return out


def _all_gather_into_tensor(torch: Any, full: Any) -> list[Any]:
    out = full(2 * PROBE_WORLD)
    _dist().all_gather_into_tensor(out, torch.ones(2))
    return [out]


def _gather(torch: Any, full: Any) -> list[Any]:
    out = [full(2) for _ in range(PROBE_WORLD)]
    _dist().gather(torch.ones(2), out, dst=PROBE_RANK)
    return out


def _scatter(torch: Any, full: Any) -> list[Any]:
    out = full(2)
    _dist().scatter(out, [torch.ones(2) for _ in range(PROBE_WORLD)], src=PROBE_RANK)
    return [out]


def _reduce_scatter(torch: Any, full: Any) -> list[Any]:
    out = full(2)
    _dist().reduce_scatter(out, [torch.ones(2) for _ in range(PROBE_WORLD)])
    return [out]


def _reduce_scatter_tensor(torch: Any, full: Any) -> list[Any]:
    out = full(2)
    _dist().reduce_scatter_tensor(out, torch.ones(2 * PROBE_WORLD))
    return [out]


def _all_to_all(torch: Any, full: Any) -> list[Any]:
    out = [full(2) for _ in range(PROBE_WORLD)]
    _dist().all_to_all(out, [torch.ones(2) for _ in range(PROBE_WORLD)])
    return out


def _all_to_all_single(torch: Any, full: Any) -> list[Any]:
    out = full(2 * PROBE_WORLD)
    _dist().all_to_all_single(out, torch.ones(2 * PROBE_WORLD))
    return [out]


def _functional_reduce_scatter_tensor() -> Value:
    """Whether funcol's reduce_scatter_tensor (DTensor/TP's path) writes this rank's chunk."""
    import torch

    try:
        import torch.distributed._functional_collectives as funcol

        out = funcol.reduce_scatter_tensor(torch.arange(4.0), "sum", 0, _dist().group.WORLD)
        out = funcol.wait_tensor(out) if hasattr(funcol, "wait_tensor") else out
    except (ImportError, RuntimeError, ValueError, TypeError, AttributeError):
        return "unsupported"
    chunk = [2.0 * PROBE_RANK, 2.0 * PROBE_RANK + 1]
    return "writes" if [float(x) for x in out.tolist()] == chunk else "untouched"


def _sum_factor() -> Value:
    """What all_reduce(SUM) multiplies by: 1, or "world_size" (simulated identical ranks)."""
    import torch

    t = torch.ones(2)
    _dist().all_reduce(t)
    return "world_size" if bool((t == PROBE_WORLD).all()) else 1


def _gathered_requires_grad() -> Value:
    """Whether all_gather's outputs require grad when its input does."""
    import torch

    out = [torch.full((2,), _SENTINEL) for _ in range(PROBE_WORLD)]
    _dist().all_gather(out, torch.ones(2).requires_grad_(True))
    return any(o.requires_grad for o in out)


def _uneven_all_to_all_single() -> Value:
    """The output of all_to_all_single(input=arange(4), splits [1, 3] both ways)."""
    import torch

    out = torch.full((4,), _SENTINEL)
    _dist().all_to_all_single(
        out, torch.arange(4.0), output_split_sizes=[1, 3], input_split_sizes=[1, 3]
    )
    return [float(x) for x in out.tolist()]


def _split_check() -> Value:
    """Whether all_to_all_single refuses split sizes that do not add up to the input."""
    import torch

    try:
        _dist().all_to_all_single(
            torch.empty(3), torch.empty(3), output_split_sizes=[1, 1], input_split_sizes=[1, 1]
        )
    except (RuntimeError, ValueError):
        return True
    return False


def _barrier_work() -> Value:
    """What ``barrier(async_op=True)`` returns: "work" or "none"."""
    work = _dist().barrier(async_op=True)
    return "none" if work is None else "work"


def _all_gather_object() -> Value:
    """What all_gather_object yields: "replicates" (this rank's object everywhere) or not."""
    objs: list[Any] = [None] * PROBE_WORLD
    try:
        _dist().all_gather_object(objs, {"probe": 1})
    except Exception:  # uninitialised sizes may fail in many ways
        return "fails"
    return "replicates" if objs == [{"probe": 1}] * PROBE_WORLD else "garbage"


FACTS: dict[str, Callable[[], Value]] = {
    "all_gather.writes": _write_probe(_all_gather),
    "all_gather_into_tensor.writes": _write_probe(_all_gather_into_tensor),
    "gather.writes": _write_probe(_gather),
    "scatter.writes": _write_probe(_scatter),
    "reduce_scatter.writes": _write_probe(_reduce_scatter),
    "reduce_scatter_tensor.writes": _write_probe(_reduce_scatter_tensor),
    "all_to_all.writes": _write_probe(_all_to_all),
    "all_to_all_single.writes": _write_probe(_all_to_all_single),
    "functional_reduce_scatter_tensor.writes": _functional_reduce_scatter_tensor,
    "all_reduce.sum_factor": _sum_factor,
    "all_gather.output_requires_grad": _gathered_requires_grad,
    "all_to_all_single.uneven_output": _uneven_all_to_all_single,
    "all_to_all_single.split_check": _split_check,
    "barrier.async_returns": _barrier_work,
    "all_gather_object.result": _all_gather_object,
}
"""Every fact and the probe that measures it, on a fake world of PROBE_WORLD ranks."""


def probe(names: list[str] | None = None) -> dict[str, Value]:
    """Measure facts on the running torch, each in a fresh fakedist fake world."""
    import warnings

    from fakedist.world import fake_world

    out: dict[str, Value] = {}
    for name in names or list(FACTS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation warnings of the *_tensor names
            with fake_world(PROBE_WORLD, rank=PROBE_RANK):
                out[name] = FACTS[name]()
    return out


def drift(table: Table, version: str, measured: Mapping[str, Value]) -> list[str]:
    """One line per fact where the running torch disagrees with the table."""
    release = release_of(version)
    lines = []
    for name, value in measured.items():
        fact = table.facts[name]
        want = fact.at(release)
        if value != want:
            lines.append(
                f"{name}: torch {version} gives {value!r}; {table.path.name} says {want!r}"
                f" (from {fact.since(release)})"
            )
    return lines
