"""fakedist runs no input as code: no eval/exec, no shell, no expressions inside ``run:``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON_FILES = sorted(
    [
        *(ROOT / "harness" / "fakedist").rglob("*.py"),
        ROOT / "noxfile.py",
        *(ROOT / "tests" / "action").glob("*.py"),
    ]
)
YAML_FILES = [ROOT / "action.yml", *sorted((ROOT / ".github" / "workflows").glob("*.yml"))]
BUILTINS = {"eval", "exec", "compile", "__import__"}
MODULE_CALLS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput")}
MODULE_CALLS |= {("subprocess", "getstatusoutput"), ("pickle", "loads"), ("pickle", "load")}


# Reviewed exceptions, per file and call: what runs there is never input.
ALLOWED = {
    "harness/fakedist/fidelity/gloo.py": {
        # the rank body, pickled by the test process and sent over a private pipe to the
        # worker it started itself
        "pickle.loads()",
        # the user's test module, which pytest already imported in the test process, compiled
        # again in the worker with pytest's assertion rewriting (as pytest does)
        "compile()",
        "exec()",
    },
}


def code_execution(source: str) -> list[str]:
    """``eval``/``exec``-like calls, shell calls, and ``shell=`` anything but False."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in BUILTINS:
            found.append(f"line {node.lineno}: {func.id}()")
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and (func.value.id, func.attr) in MODULE_CALLS
        ):
            found.append(f"line {node.lineno}: {func.value.id}.{func.attr}()")
        for kw in node.keywords:
            if kw.arg == "shell" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                found.append(f"line {node.lineno}: shell={ast.unparse(kw.value)}")
    return found


def test_the_checker_sees_each_form() -> None:
    bad = "eval(x)\nexec(y)\nimport os\nos.system(c)\nsubprocess.run(c, shell=True)\n"
    assert code_execution(bad) == [
        "line 1: eval()",
        "line 2: exec()",
        "line 4: os.system()",
        "line 5: shell=True",
    ]
    assert code_execution("subprocess.run(['a', x], shell=False)\nre.compile('x')\n") == []


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_code_execution_in_python(path: Path) -> None:
    allowed = ALLOWED.get(path.relative_to(ROOT).as_posix(), set())
    found = code_execution(path.read_text(encoding="utf-8"))
    assert [f for f in found if f.split(": ", 1)[1] not in allowed] == []


def test_each_allowed_call_is_still_there() -> None:
    """An exception that no longer matches anything is removed, not kept open."""
    for name, calls in ALLOWED.items():
        found = {f.split(": ", 1)[1] for f in code_execution((ROOT / name).read_text("utf-8"))}
        assert calls == found


def run_blocks(text: str) -> list[str]:
    """The script of every ``run:`` key (inline or block scalar) in a workflow/action file."""
    blocks, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"(\s*)(?:- )?run:\s*(.*)", line)
        if match is None:
            continue
        indent, rest = len(match[1]), match[2]
        body = [] if rest in ("|", ">", "|-", ">-") else [rest]
        for nxt in lines[i + 1 :]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt)
        blocks.append("\n".join(body))
    return blocks


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_expressions_inside_run(path: Path) -> None:
    """Inputs reach scripts only through ``env:``; a ``${{ }}`` in ``run:`` is injectable."""
    blocks = run_blocks(path.read_text(encoding="utf-8"))
    assert blocks
    assert [b for b in blocks if "${{" in b] == []


def test_action_passes_inputs_through_env_only() -> None:
    text = (ROOT / "action.yml").read_text(encoding="utf-8")
    uses = [m.start() for m in re.finditer(r"\$\{\{\s*inputs\.", text)]
    for start in uses:
        line = text[text.rfind("\n", 0, start) + 1 : text.find("\n", start)].strip()
        # an env: mapping, a `with:` argument of a pinned action, or a step condition
        assert re.match(r"(FAKEDIST_INPUT_[A-Z_]+|[a-z-]+|if): ", line), line
