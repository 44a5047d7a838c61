"""The python examples of the README's CommLog and fault-schedule section run and hold."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from _readme import python_blocks

BLOCKS = python_blocks("Recorded collectives (CommLog) and fault schedules")

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def test_the_doc_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_example_runs(index: int, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    code = BLOCKS[index]
    path = tmp_path / f"example_{index}.py"
    path.write_text(code, encoding="utf-8")
    namespace = runpy.run_path(str(path))
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    for test in tests:  # pytest-style examples: run them inside the world their marker asks for
        from fakedist import fake_world

        marks = getattr(test, "pytestmark", [])
        kwargs = next((m.kwargs for m in marks if m.name == "fake_world"), {})
        with fake_world(**kwargs) as world:
            test(world)
