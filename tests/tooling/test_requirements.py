"""requirements/tooling.txt: the torch-free session's pins are the cells' pins, and no torch."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What only the tooling tests need, besides the cells' test tools.
TOOLING_ONLY = {"-r": "-r tools.txt", "matplotlib": "matplotlib"}


def pins(name: str) -> dict[str, str]:
    """Requirement name -> the whole line, for each requirement line of requirements/<name>."""
    lines = (ROOT / "requirements" / name).read_text(encoding="utf-8").splitlines()
    found = (line.strip() for line in lines if line.strip() and not line.startswith("#"))
    return {re.split(r"[\[=<>!~ ]", line, maxsplit=1)[0].lower(): line for line in found}


def test_tooling_pins_are_the_cells_pins() -> None:
    tooling, cells = pins("tooling.txt"), pins("test.txt")
    shared = {name: line for name, line in tooling.items() if name not in TOOLING_ONLY}
    assert shared
    assert {name: cells.get(name) for name in shared} == shared
    assert {name: tooling.get(name) for name in TOOLING_ONLY} == TOOLING_ONLY


def test_tooling_requirements_bring_no_torch() -> None:
    for name in ("tooling.txt", "tools.txt"):
        assert "torch" not in pins(name)
