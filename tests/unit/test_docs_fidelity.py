"""The README's fidelity example runs as written: three fidelities, and a gloo-only test."""

from __future__ import annotations

import re

import pytest
from _readme import README, python_blocks, section

HEADING = "One test, three fidelities"
SECTION = section(HEADING)
BLOCKS = python_blocks(HEADING)


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
