"""The pytest form of the cross-rank check: ``@pytest.mark.fake_world(n, ranks=...)``."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

ARGS = ("-p", "no:randomly", "-p", "no:cacheprovider")


def test_every_rank_runs_and_agreeing_ranks_pass(pytester: pytest.Pytester) -> None:
    seen = pytester.path / "seen.txt"
    pytester.makepyfile(
        f"""
        import pytest, torch, torch.distributed as dist

        @pytest.mark.fake_world(8, ranks="all")
        def test_step(fake_world):
            dist.all_reduce(torch.ones(2))
            assert fake_world.comms.count("all_reduce") == 1
            with open({str(seen)!r}, "a") as f:
                f.write(f"{{dist.get_rank()}}\\n")
        """
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(passed=1)
    assert sorted(int(r) for r in seen.read_text().split()) == list(range(8))


def test_a_divergence_fails_the_test_with_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_hang="""
        import pytest, torch, torch.distributed as dist

        @pytest.mark.fake_world(4, ranks="all")
        def test_step(fake_world):
            dist.all_reduce(torch.ones(2))
            if dist.get_rank() == 0:
                dist.barrier()
        """
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_hang.py::test_step: 4 of 4 ranks checked: 1 divergence(s)",
            "*ranks disagree in group [[]0-3[]] (name *, 4 ranks) at call #1 of that group: "
            "not every rank makes this call",
            "*rank 0     barrier  at test_hang.py:7",
            "*ranks 1-3  (nothing: calls on this group end at #0)",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_sample_of_a_large_world(pytester: pytest.Pytester) -> None:
    seen = pytester.path / "seen.txt"
    pytester.makepyfile(
        f"""
        import pytest, torch, torch.distributed as dist

        @pytest.mark.fake_world(65536, ranks="sample")
        def test_step(fake_world):
            first = 256 * (dist.get_rank() // 256)
            sub = dist.new_group(list(range(first, first + 256)))
            dist.all_reduce(torch.ones(2), group=sub)
            with open({str(seen)!r}, "a") as f:
                f.write(f"{{dist.get_rank()}}\\n")
        """
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(passed=1)
    assert sorted(int(r) for r in seen.read_text().split()) == [0, 255, 65280, 65535]


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            "4, ranks='most'",
            "ranks must be 'all', 'sample' or a non-empty list of ranks, got 'most'",
        ),
        ("4, ranks=[0, 4]", "ranks: 4 is not a rank of a world of 4 (ranks are ints in [0, 4))"),
        ("4, rank=1, ranks='all'", "ranks= runs each chosen rank; drop rank=1"),
        (
            "4, ranks='all', fidelity='threaded'",
            "ranks= runs one fake world per rank; it cannot be combined with fidelity='threaded'",
        ),
    ],
)
def test_bad_marker_arguments_are_one_line(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        @pytest.mark.fake_world({marker})
        def test_step(fake_world):
            pass
        """
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*test_bad.py::test_step: fake_world marker: {message}"])
