"""fakedist's module graph: no import cycle, and the two halves meet only at the interface."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fakedist.tooling import modgraph

HARNESS = Path(modgraph.__file__).resolve().parents[2]


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "fakedist" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_fakedist_has_no_import_cycle() -> None:
    graph = modgraph.read_graph(HARNESS)
    assert "fakedist.world" in graph.edges
    assert "fakedist.tooling.matrix" in graph.edges
    assert modgraph.cycles(graph) == []


def test_the_halves_meet_only_at_the_interface() -> None:
    graph = modgraph.read_graph(HARNESS)
    assert modgraph.crossings(graph) == []
    runtime = [m for m in graph.edges if modgraph.part_of(m) == "runtime"]
    assert "fakedist.plugin" in runtime
    assert "fakedist.tooling.cli" not in runtime


def test_a_cycle_through_a_lazy_or_type_only_import_is_found(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from fakedist import b\n",
            "b.py": """\
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from fakedist.c import C
                """,
            "c.py": """\
                def f():
                    from . import a
                """,
            "d.py": "import fakedist.a\n",
        },
    )
    graph = modgraph.read_graph(root)
    assert graph.edges["fakedist.c"] == {"fakedist.a"}  # relative import resolved
    assert modgraph.cycles(graph) == [["fakedist.a", "fakedist.b", "fakedist.c"]]


def test_a_runtime_import_of_the_tooling_is_a_crossing(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "world.py": "from fakedist.tooling import matrix\n",
            "tooling/__init__.py": "",
            "tooling/matrix.py": "",
            "tooling/probe.py": "import fakedist.world\n",
        },
    )
    graph = modgraph.read_graph(root)
    assert modgraph.crossings(graph) == [("fakedist.world", "fakedist.tooling.matrix")]


def test_the_command_prints_the_graph_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fakedist.tooling.modgraph"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\ncycles: 0\n" in done.stdout
    assert "runtime:" in done.stdout
    assert "tooling:" in done.stdout


def test_the_command_reads_another_tree_and_fails_on_its_cycle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _package(
        tmp_path, {"__init__.py": "", "a.py": "import fakedist.b\n", "b.py": "import fakedist.a\n"}
    )
    assert modgraph.main([str(root)]) == 1
    out = capsys.readouterr().out
    assert "cycles: 1\n  fakedist.a <-> fakedist.b\n" in out
    assert out.endswith("runtime: 3 modules, 2 lines\n")


def test_the_command_refuses_a_folder_without_the_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert modgraph.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"modgraph: expected one folder holding fakedist/, got {str(tmp_path)!r}\n"
    )


@pytest.mark.parametrize("module", ["fakedist.world", "fakedist.plugin"])
def test_every_module_has_its_line_count(module: str) -> None:
    graph = modgraph.read_graph(HARNESS)
    text = (HARNESS / Path(*module.split("."))).with_suffix(".py").read_text(encoding="utf-8")
    assert graph.lines[module] == len(text.splitlines())
