"""The ``fidelity`` and ``timeout`` arguments of the fake_world marker, through pytest."""

from __future__ import annotations

import pytest

ARGS = ("-p", "no:randomly", "-p", "no:cacheprovider")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner run rooted at its own directory (nox puts TMPDIR under the checkout, whose
    pyproject.toml would otherwise become the rootdir and prefix every node id)."""
    return pytester.runpytest(*ARGS, f"--rootdir={pytester.path}", *args)


def test_fidelity_list_runs_the_test_once_per_fidelity(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, torch, torch.distributed as dist

        @pytest.mark.fake_world(4, fidelity="all")
        def test_sum(fake_world):
            t = torch.ones(2) * (dist.get_rank() + 1)
            dist.all_reduce(t)
            assert fake_world.comms.count("all_reduce") == 1
            if fake_world.computes:
                assert t.tolist() == [10.0, 10.0]
        """
    )
    result = run(pytester, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*test_sum[[]fake[]] PASSED*",
            "*test_sum[[]threaded[]] PASSED*",
            "*test_sum[[]gloo[]] PASSED*",
        ]
    )


def test_failing_rank_is_named_in_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ranks="""
        import pytest, torch.distributed as dist

        @pytest.mark.fake_world(2, fidelity=["threaded", "gloo"])
        def test_only_rank_zero(fake_world):
            assert dist.get_rank() == 0
        """
    )
    result = run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "test_ranks.py::test_only_rank_zero[[]threaded[]]: rank 1 of 2 (threaded) failed: "
            "AssertionError: assert 1 == 0",
            "rank 1 traceback:",
            "test_ranks.py:5: in test_only_rank_zero",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(
        ["*test_only_rank_zero[[]gloo[]]: rank 1 of 2 (gloo) failed: AssertionError*"]
    )
    assert "Traceback (most recent call last)" not in result.stdout.str()


@pytest.mark.parametrize(
    ("marker", "args", "env", "seconds"),
    [
        ("timeout=0.5", ("--fakedist-timeout=30",), "30", "0.5"),  # marker wins
        ("", ("--fakedist-timeout=0.5",), "30", "0.5"),  # then the option
        ("", (), "0.5", "0.5"),  # then FAKEDIST_TIMEOUT
    ],
    ids=["marker", "option", "env"],
)
def test_timeout_precedence(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    marker: str,
    args: tuple[str, ...],
    env: str,
    seconds: str,
) -> None:
    monkeypatch.setenv("FAKEDIST_TIMEOUT", env)
    comma = ", " if marker else ""
    pytester.makepyfile(
        test_hang=f"""
        import pytest, torch, torch.distributed as dist

        @pytest.mark.fake_world(2, fidelity="threaded"{comma}{marker})
        def test_hangs(fake_world):
            if dist.get_rank() == 1:
                dist.broadcast(torch.ones(1), src=1)
        """
    )
    result = run(pytester, *args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*rank 1 of 2 (threaded) hung: still running after the {seconds} s timeout",
            "  rank 0: passed",
            "  rank 1: hung in broadcast (test_hang.py:6)",
        ]
    )


def test_fixtures_reach_every_gloo_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, torch.distributed as dist

        @pytest.fixture
        def config():
            return {"lr": 0.5}

        @pytest.mark.fake_world(3, fidelity="gloo")
        def test_files(fake_world, tmp_path, config):
            (tmp_path / f"rank{dist.get_rank()}").write_text(str(config["lr"]))
            dist.barrier()
            assert sorted(p.name for p in tmp_path.iterdir()) == ["rank0", "rank1", "rank2"]
            assert {p.read_text() for p in tmp_path.iterdir()} == {"0.5"}
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_fidelity_list_needs_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_nofix="""
        import pytest

        @pytest.mark.fake_world(2, fidelity="all")
        def test_it():
            pass
        """
    )
    result = run(pytester)
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [
            "*test_nofix.py::test_it: fake_world marker: fidelity='all' needs the test to take "
            "the fake_world fixture*"
        ]
    )


def test_rank_threads_left_running_are_reported() -> None:
    import threading

    from fakedist import isolation

    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="fakedist-rank-7", daemon=True)
    thread.start()
    try:
        assert isolation._rank_threads() == "left 1 rank thread(s) running (fakedist-rank-7)"
    finally:
        release.set()
        thread.join()
    assert isolation._rank_threads() is None


def test_rank_processes_left_running_are_killed() -> None:
    import multiprocessing
    import time

    from fakedist import isolation

    proc = multiprocessing.get_context("fork").Process(
        target=time.sleep, args=(60,), name="fakedist-rank-3", daemon=True
    )
    proc.start()
    message = isolation._rank_processes()
    assert message == (
        f"left 1 rank process(es) running (fakedist-rank-3 (pid {proc.pid})); killed them"
    )
    assert not proc.is_alive()
    assert proc.exitcode == -9
