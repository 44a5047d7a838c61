"""What a test may not leave behind: fakedist's process-wide state, checked and reset.

The plugin snapshots before each test and calls :func:`leaks` after it. Each leak is one
line; the state is reset so the next test starts clean. torch is never imported here:
nothing can have leaked into a torch.distributed that was never imported.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

FAULTS_ENV = "FAKEDIST_FAULTS"  # fakedist.faults.ENV_VAR (that module imports torch)
RANK_PREFIX = "fakedist-rank-"  # names of the fidelities' rank threads and worker processes

__all__ = ["Snapshot", "leaks", "snapshot"]


@dataclass(frozen=True)
class Snapshot:
    """The state a test started with (only what a test may legitimately have changed)."""

    faults_env: str | None


def snapshot() -> Snapshot:
    return Snapshot(os.environ.get(FAULTS_ENV))


def _loaded(name: str) -> Any:
    """fakedist's submodule ``name`` if imported: the package attribute, which is what
    ``from fakedist import name`` returns (pytester may drop it from sys.modules)."""
    package = sys.modules.get("fakedist")
    return getattr(package, name, None) or sys.modules.get(f"fakedist.{name}")


def _process_group() -> str | None:
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    backend = str(dist.get_backend())
    dist.destroy_process_group()
    return (
        f"left a process group initialised (backend {backend!r}); "
        "destroy it in the test or use fakedist.fake_world"
    )


def _worlds() -> str | None:
    world = _loaded("world")
    active: list[Any] = getattr(world, "_ACTIVE", [])
    if not active:
        return None
    names = ", ".join(f"world_size={w.world_size} rank={w.rank} {w.backend}" for w in active)
    active.clear()
    return f"left a fake_world active ({names}); exit the fake_world context in the test"


def _patched_methods() -> list[str]:
    """Names of ProcessGroup methods / functional ops still replaced by fakedist's hooks."""
    out: list[str] = []
    dist = sys.modules.get("torch.distributed")
    pg = getattr(dist, "ProcessGroup", None)
    if pg is not None:
        out += [n for n, v in vars(pg).items() if getattr(v, "__fakedist_hook__", False)]
    torch = sys.modules.get("torch")
    hooks = _loaded("_hooks")
    if torch is not None and hooks is not None:
        for ns_name in hooks.FUNCTIONAL_NAMESPACES:
            ns = getattr(torch.ops, ns_name, None)
            for name in hooks.FUNCTIONAL_OPS:
                if isinstance(getattr(ns, "__dict__", {}).get(name), hooks._RecordedPacket):
                    out.append(f"{ns_name}.{name}")
    return out


def _hooks() -> str | None:
    hooks = _loaded("_hooks")
    if hooks is None:
        return None
    recorders = len(hooks._ACTIVE)
    patched = _patched_methods()
    if not recorders and not hooks._PATCHED and not patched:
        return None
    hooks.reset()
    shown = ", ".join(patched[:3]) + (f" and {len(patched) - 3} more" if len(patched) > 3 else "")
    what = f"{recorders} active recorder(s), methods still patched: {shown or 'none'}"
    return f"left fakedist's collective hooks installed ({what}); use fakedist.fake_world"


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


def leaks(before: Snapshot) -> list[str]:
    """One line per kind of leaked state (worlds first), after resetting it."""
    checks = (
        _worlds(),
        _process_group(),
        _hooks(),
        _faults_env(before),
        _rank_threads(),
        _rank_processes(),
    )
    return [c for c in checks if c is not None]
