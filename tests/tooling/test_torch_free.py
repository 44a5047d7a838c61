"""The tooling half imports no torch: every fakedist.tooling module but the probe, and fakedist."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import fakedist.tooling

PROBE = "fakedist.tooling.probe"  # the interface to the runtime: reads torch, lazily


def tooling_modules() -> list[str]:
    found = pkgutil.walk_packages(fakedist.tooling.__path__, "fakedist.tooling.")
    return sorted(m.name for m in found if m.name != PROBE)


def test_the_walk_finds_the_tooling_modules() -> None:
    names = tooling_modules()
    assert {"fakedist.tooling.cli", "fakedist.tooling.action.run"} <= set(names)
    assert PROBE not in names


def test_importing_the_tooling_half_imports_no_torch() -> None:
    names = ["fakedist", "fakedist.tooling", *tooling_modules()]
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []
