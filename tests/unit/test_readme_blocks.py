"""Every python block of README.md runs as written, as a test file under the plugin.

Module-level code (the ``with fake_world(...)`` examples) runs when pytest imports the file;
test functions and unittest methods run as tests. A block passes when nothing fails or errors
and every test it defines ran (passed, or skipped with a reason: the accelerator examples on a
machine without one). The fidelity section's block runs in test_docs_fidelity.py, which also
checks each fidelity's outcome.
"""

from __future__ import annotations

import ast
import re

import pytest
from _readme import README, python_blocks

OWN_TEST = {"One test, three fidelities"}  # sections whose blocks another test runs
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
OWNED = {block for heading in OWN_TEST for block in python_blocks(heading)}
RUN_HERE = [block for block in BLOCKS if block not in OWNED]

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def _test_names(code: str) -> list[str]:
    """The tests pytest collects from ``code``: module ``test*`` functions and the ``test*``
    methods of ``Test*`` or ``*TestCase`` classes."""
    names = []
    for node in ast.parse(code).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith(
            "test"
        ):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            if node.name.startswith("Test") or any(b.endswith("TestCase") for b in bases):
                names += [
                    f"{node.name}.{item.name}"
                    for item in node.body
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and item.name.startswith("test")
                ]
    return names


def test_every_block_is_run_by_a_test() -> None:
    assert len(BLOCKS) >= 8
    assert OWNED
    assert set(BLOCKS) >= OWNED
    names = [name for block in BLOCKS for name in _test_names(block)]
    assert len(names) == len(set(names)), f"two README examples share a test name: {names}"


@pytest.mark.parametrize("index", range(len(RUN_HERE)))
def test_readme_block_runs(index: int, pytester: pytest.Pytester) -> None:
    pytest.importorskip("torch")
    code = RUN_HERE[index]
    if "torch.distributed.device_mesh" in code:  # the README's examples on a 2D mesh
        pytest.importorskip("torch.distributed.device_mesh", reason="torch 2.2+ has DeviceMesh")
    pytester.makepyfile(**{f"test_readme_{index}": code})
    result = pytester.runpytest(
        "-rs", "-p", "no:randomly", "-p", "no:cacheprovider", f"--rootdir={pytester.path}"
    )
    expected = _test_names(code)
    outcomes = result.parseoutcomes()
    ran = outcomes.get("passed", 0) + outcomes.get("skipped", 0)
    assert outcomes.get("failed", 0) == outcomes.get("errors", 0) == 0, result.stdout.str()
    if expected:
        assert ran >= len(expected), result.stdout.str()
        assert result.ret == 0
    else:
        assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
    for line in result.stdout.lines:
        if line.startswith("SKIPPED"):
            assert "needs 1 CUDA device" in line or "needs 2 CUDA devices" in line, line
