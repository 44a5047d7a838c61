"""Timeouts beyond what the OS waits accept are refused up front, one line naming the source."""

from __future__ import annotations

import pytest

ARGS = ("-p", "no:randomly", "-p", "no:cacheprovider")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner run rooted at its own directory (see test_fidelity_plugin.run)."""
    return pytester.runpytest(*ARGS, f"--rootdir={pytester.path}", *args)


def test_env_timeout_beyond_a_day_stops_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKEDIST_TIMEOUT", "3000000")
    pytester.makepyfile("def test_it():\n    pass\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line] == [
        "ERROR: FAKEDIST_TIMEOUT: timeout must be at most 86400 s (a day), got '3000000'"
    ]


def test_option_timeout_beyond_a_day_stops_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it():\n    pass\n")
    result = run(pytester, "--fakedist-timeout=1e15")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line] == [
        "ERROR: --fakedist-timeout: timeout must be at most 86400 s (a day), got '1e15'"
    ]


@pytest.mark.parametrize("fidelity", ["fake", "threaded"])
def test_marker_timeout_beyond_a_day_errors_the_test(
    pytester: pytest.Pytester, fidelity: str
) -> None:
    pytester.makepyfile(
        test_marked=f"""
        import pytest

        @pytest.mark.fake_world(2, fidelity={fidelity!r}, timeout=1e15)
        def test_it(fake_world):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_marked.py::test_it: fake_world marker: timeout: timeout must be at most "
            "86400 s (a day), got 1000000000000000.0"
        ]
    )
