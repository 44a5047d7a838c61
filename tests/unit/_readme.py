"""One README section and its python examples, for the tests that check them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def section(heading: str) -> str:
    """The text of the README section ``## <heading>``, up to the next ``## ``."""
    return README.read_text(encoding="utf-8").split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def python_blocks(heading: str) -> list[str]:
    """The ```python blocks of that section, in order."""
    return re.findall(r"```python\n(.*?)```", section(heading), flags=re.S)
