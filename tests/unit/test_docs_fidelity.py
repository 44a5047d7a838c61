"""The README's fidelity example runs as written: three fidelities, and a gloo-only test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = (
    README.read_text(encoding="utf-8")
    .split("## One test, three fidelities", 1)[1]
    .split("\n## ", 1)[0]
)
BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, flags=re.S)


def test_readme_fidelity_example_runs(pytester: pytest.Pytester) -> None:
    assert len(BLOCKS) == 1
    pytester.makepyfile(test_readme=BLOCKS[0])
    result = pytester.runpytest(
        "-v", "-p", "no:randomly", "-p", "no:cacheprovider", f"--rootdir={pytester.path}"
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*test_grad_sum[[]fake[]] PASSED*",
            "*test_grad_sum[[]threaded[]] PASSED*",
            "*test_grad_sum[[]gloo[]] PASSED*",
            "*test_p2p PASSED*",
        ]
    )


def test_the_suite_count_in_the_readme_is_true() -> None:
    suite = (README.parent / "tests" / "conformance" / "test_fidelity.py").read_text("utf-8")
    all_three = len(re.findall(r"fidelity=ALL", suite))
    assert f"runs {all_three} tests this way" in " ".join(SECTION.split())
    assert all_three >= 10
