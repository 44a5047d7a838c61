"""What a test may not leave behind: fakedist's process-wide state, checked and reset.

The plugin snapshots before each test and calls :func:`leaks` after it. Each leak is one
line; the state is reset so the next test starts clean. A process group is reported only
when it was initialised during the test (one a session- or module-scoped fixture made
before is not the test's), and only for tests that use fakedist unless the mode is
``strict`` (see :data:`MODES`). torch is never imported here: nothing can have leaked into
a torch.distributed that was never imported.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

from fakedist import envvars

FAULTS_ENV = envvars.FAULTS  # also fakedist.faults.ENV_VAR (that module imports torch)

RANK_PREFIX = "fakedist-rank-"  # names of the fidelities' rank threads and worker processes

# fakedist: check the tests that use fakedist; strict: every test; off: none.
MODES = ("fakedist", "strict", "off")
DEFAULT_MODE = "fakedist"

__all__ = ["DEFAULT_MODE", "MODES", "Snapshot", "leaks", "mark_used", "parse_mode", "snapshot"]

_uses = 0  # worlds and rank runs started in this process (fake_world, run_world, ...)


def mark_used() -> None:
    """Count one use of fakedist (a world entered, a fidelity run): the test uses it."""
    global _uses
    _uses += 1


def parse_mode(value: Any, source: str) -> str:
    """An isolation mode, or ValueError naming the value and ``source``."""
    if value not in MODES:
        raise ValueError(f"{source}: isolation must be one of {', '.join(MODES)}; got {value!r}")
    return str(value)


@dataclass(frozen=True)
class Snapshot:
    """The state a test started with (only what a test may legitimately have changed)."""

    faults_env: str | None
    group: Any = None  # the default process group already initialised, if any: not a leak
    uses: int = 0

    def used_fakedist(self) -> bool:
        """True when a world or rank run was started since this snapshot."""
        return _uses > self.uses


def snapshot() -> Snapshot:
    return Snapshot(os.environ.get(FAULTS_ENV), _default_group(), _uses)


def _default_group() -> Any:
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist.group.WORLD


def _loaded(name: str) -> Any:
    """fakedist's submodule ``name`` if imported: the package attribute, which is what
    ``from fakedist import name`` returns (pytester may drop it from sys.modules)."""
    package = sys.modules.get("fakedist")
    return getattr(package, name, None) or sys.modules.get(f"fakedist.{name}")


def _process_group(before: Snapshot) -> str | None:
    """A default group initialised during the test: destroyed and reported."""
    group = _default_group()
    if group is None or group is before.group:
        return None
    dist = sys.modules["torch.distributed"]
    backend = str(dist.get_backend())
    dist.destroy_process_group()
    return (
        f"left a process group initialised (backend {backend!r}); "
        "destroy it in the test or use fakedist.fake_world"
    )


def _worlds() -> str | None:
    world = _loaded("world")
    left = world.leftover() if world is not None else None
    if left is None:
        return None
    world.reset()
    return f"left a fake_world active ({left}); exit the fake_world context in the test"


def _hooks() -> str | None:
    hooks = _loaded("_hooks")
    left = hooks.leftover() if hooks is not None else None
    if left is None:
        return None
    hooks.reset()
    return f"left fakedist's collective hooks installed ({left}); use fakedist.fake_world"


def _faults_env(before: Snapshot) -> str | None:
    now = os.environ.get(FAULTS_ENV)
    if now == before.faults_env:
        return None
    if before.faults_env is None:
        del os.environ[FAULTS_ENV]
    else:
        os.environ[FAULTS_ENV] = before.faults_env
    return (
        f"left a fault schedule in {FAULTS_ENV} ({now!r}, was {before.faults_env!r}); "
        "use monkeypatch.setenv"
    )


def _rank_threads() -> str | None:
    """Rank threads of the threaded fidelity still alive (they cannot be killed)."""
    alive = [t.name for t in threading.enumerate() if t.name.startswith(RANK_PREFIX)]
    if not alive:
        return None
    return f"left {len(alive)} rank thread(s) running ({', '.join(alive)})"


def _rank_processes() -> str | None:
    """Worker processes of the gloo fidelity still alive: killed here."""
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return None
    alive = [p for p in mp.active_children() if p.name.startswith(RANK_PREFIX)]
    if not alive:
        return None
    for proc in alive:
        proc.kill()
        proc.join(5)
    names = ", ".join(f"{p.name} (pid {p.pid})" for p in alive)
    return f"left {len(alive)} rank process(es) running ({names}); killed them"


def leaks(before: Snapshot, *, groups: bool = True) -> list[str]:
    """One line per kind of leaked state (worlds first), after resetting it; a process
    group only with ``groups`` (fakedist's own state is always checked)."""
    checks = (
        _worlds(),
        _process_group(before) if groups else None,
        _hooks(),
        _faults_env(before),
        _rank_threads(),
        _rank_processes(),
    )
    return [c for c in checks if c is not None]
