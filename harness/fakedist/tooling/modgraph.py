"""fakedist's own module graph, read from the source: import edges, cycles and line counts.

``python -m fakedist.tooling.modgraph [FOLDER]`` prints one line per module (its lines and what it
imports), then the cycles (none, or the test fails) and the lines per part. Every ``import``
statement counts: at module level, inside functions, and under ``TYPE_CHECKING`` alike, since a
cycle through any of them still ties the modules together.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Graph", "crossings", "cycles", "part_of", "read_graph", "render"]

PACKAGE = "fakedist"
# The one tooling module that may import the runtime, and the runtime's `python -m fakedist`
# entry point, which only hands over to the tooling's CLI.
INTERFACE = (f"{PACKAGE}.tooling.probe", f"{PACKAGE}.__main__")


@dataclass(frozen=True)
class Graph:
    """Modules (dotted names) with their line counts and the fakedist modules each imports."""

    lines: dict[str, int]
    edges: dict[str, frozenset[str]]


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _targets(node: ast.AST, here: str, is_package: bool, known: set[str]) -> set[str]:
    """The fakedist modules one import statement names (a submodule, else its package)."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = here.split(".") if is_package else here.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            full = f"{base}.{alias.name}"
            names.append(full if full in known else base)
    return {n for n in names if n in known}


def read_graph(root: Path) -> Graph:
    """The graph of the package whose folder is ``root / "fakedist"``."""
    files = sorted((root / PACKAGE).rglob("*.py"))
    known = {_module_name(root, f) for f in files}
    lines: dict[str, int] = {}
    edges: dict[str, frozenset[str]] = {}
    for f in files:
        name = _module_name(root, f)
        text = f.read_text(encoding="utf-8")
        lines[name] = len(text.splitlines())
        found: set[str] = set()
        for node in ast.walk(ast.parse(text, str(f))):
            found |= _targets(node, name, f.name == "__init__.py", known)
        edges[name] = frozenset(found - {name})
    return Graph(lines, edges)


def cycles(graph: Graph) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph.edges):
        if v not in index:
            visit(v)
    return sorted(found)


def part_of(module: str) -> str:
    """``tooling`` for the harness half, ``runtime`` for the rest."""
    return "tooling" if module.startswith(f"{PACKAGE}.tooling") else "runtime"


def crossings(graph: Graph) -> list[tuple[str, str]]:
    """Imports from one half into the other, except through :data:`INTERFACE`."""
    return sorted(
        (a, b)
        for a, deps in graph.edges.items()
        for b in deps
        if part_of(a) != part_of(b) and a not in INTERFACE
    )


def render(graph: Graph) -> str:
    """The report ``python -m fakedist.tooling.modgraph`` prints."""
    out = []
    for name in sorted(graph.lines):
        deps = ", ".join(d.removeprefix(f"{PACKAGE}.") for d in sorted(graph.edges[name]))
        out.append(f"{name:40} {graph.lines[name]:4}  -> {deps or '-'}")
    found = cycles(graph)
    out.append(f"cycles: {len(found)}")
    out += ["  " + " <-> ".join(c) for c in found]
    crossed = crossings(graph)
    out.append(f"imports across the halves outside {', '.join(INTERFACE)}: {len(crossed)}")
    out += [f"  {a} -> {b}" for a, b in crossed]
    parts: dict[str, list[int]] = {}
    for name, n in graph.lines.items():
        parts.setdefault(part_of(name), []).append(n)
    for part, counts in sorted(parts.items()):
        out.append(f"{part}: {len(counts)} modules, {sum(counts)} lines")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Print the graph of the package this module belongs to, or of the ``fakedist`` under the
    one folder given (another checkout's ``harness/``, to compare); 1 on a cycle or a crossing,
    2 on a bad argument."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(__file__).resolve().parents[2]
    if len(args) > 1 or not (root / PACKAGE).is_dir():
        shown = " ".join(args)
        print(f"modgraph: expected one folder holding {PACKAGE}/, got {shown!r}", file=sys.stderr)
        return 2
    graph = read_graph(root)
    print(render(graph))
    return 1 if cycles(graph) or crossings(graph) else 0


if __name__ == "__main__":
    sys.exit(main())
