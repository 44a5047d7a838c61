"""The README's shell and YAML blocks say what is true: CI runs the README's test command,
every session it names exists, and the Action example uses only inputs the Action has."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)


def _commands(lang: str) -> list[str]:
    """Command lines of the README's ``lang`` blocks, comments dropped."""
    lines = [line for kind, body in BLOCKS if kind == lang for line in body.splitlines()]
    return [line.split("  #")[0].strip() for line in lines if line and not line.startswith("#")]


def _sessions() -> set[str]:
    """Session names the noxfile defines (``@nox.session(name=...)`` or the function name)."""
    names = set()
    for node in ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            if isinstance(deco, ast.Call) and ast.unparse(deco.func) == "nox.session":
                named = [k.value for k in deco.keywords if k.arg == "name"]
                names.add(ast.literal_eval(named[0]) if named else node.name)
            elif ast.unparse(deco) == "nox.session":
                names.add(node.name)
    return names


def test_ci_runs_the_readme_test_command() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [c for c in _commands("bash") if c in quick]
    assert len(commands) == 2
    main_job, tests = commands
    assert main_job.endswith("nox -s tests-cpu")
    assert tests.endswith("nox -s ci")
    assert main_job.removesuffix("tests-cpu") == tests.removesuffix("ci")  # one set-up
    assert "python3 -m venv .venv" in tests  # never pip into the system's Python (PEP 668)
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    run = [
        line for line in ci_lines if line and not line.startswith(("#", "set ", "cd ", "export "))
    ]
    assert run == [tests]


def test_every_session_the_readme_names_exists() -> None:
    table = README.split("## Sessions", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([\w-]+)` \|", table, flags=re.M))
    commands = set(re.findall(r"nox (?:-R )?-s ([\w-]+)", README))
    assert {"tests-cpu", "ci", "bench"} <= commands
    assert commands | listed <= _sessions()
    hidden = {"compat-cell", "compat-report"}  # described in the `compat` row
    hidden |= {"summary"}  # queued by unit, tests-cpu and cuda, never asked for by name
    assert _sessions() - hidden <= listed | commands


def test_the_action_example_uses_real_inputs() -> None:
    yaml = next(body for kind, body in BLOCKS if kind == "yaml")
    action = (ROOT / "action.yml").read_text(encoding="utf-8")
    inputs_text = action.split("\ninputs:\n", 1)[1].split("\noutputs:\n", 1)[0]
    inputs = set(re.findall(r"^  ([a-z-]+):$", inputs_text, flags=re.M))
    after_uses = yaml.split("uses: org/fakedist-action@v1", 1)[1]
    used = set(re.findall(r"^\s{10}([a-z-]+):", after_uses, flags=re.M))
    assert used
    assert used <= inputs


def test_the_install_line_names_the_published_repository() -> None:
    (install,) = [c for c in _commands("bash") if c.startswith("pip install")]
    url = re.search(r"git\+https://github\.com/([\w-]+/[\w-]+)@(v\d+)", install)
    assert url is not None
    assert f"uses: {url[1]}@{url[2]}" in (ROOT / "docs" / "action.md").read_text("utf-8")
    assert 'name = "fakedist"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
