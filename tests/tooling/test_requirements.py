"""requirements/tooling.txt: the torch-free session's pins are the cells' pins, and no torch."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pins(name: str) -> dict[str, str]:
    """Requirement name -> the whole line, for each requirement line of requirements/<name>."""
    lines = (ROOT / "requirements" / name).read_text(encoding="utf-8").splitlines()
    found = (line.strip() for line in lines if line.strip() and not line.startswith("#"))
    return {re.split(r"[\[=<>!~ ]", line, maxsplit=1)[0].lower(): line for line in found}


def test_tooling_pins_are_the_cells_pins() -> None:
    tooling, cells = pins("tooling.txt"), pins("test.txt")
    assert tooling
    assert {name: cells.get(name) for name in tooling} == tooling


def test_tooling_requirements_bring_no_torch() -> None:
    assert "torch" not in pins("tooling.txt")
