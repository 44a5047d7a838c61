"""Self-tests of the pytest plugin, run in isolated pytester sessions."""

from __future__ import annotations

import textwrap

import pytest

pytest.importorskip("torch.distributed")


def test_markers_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fake_world(world_size=2)
        def test_a(fake_world):
            assert fake_world.world_size == 2

        @pytest.mark.accelerator(2)
        def test_b():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:randomly")
    result.assert_outcomes(passed=1, skipped=1)


def test_marker_configures_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, torch, torch.distributed as dist

        @pytest.mark.fake_world(world_size=8, rank=3)
        def test_world(fake_world):
            assert (dist.get_rank(), dist.get_world_size()) == (3, 8)
            assert fake_world.backend == "fake" and dist.get_backend() == "fake"
            t = torch.ones(4)
            dist.all_reduce(t)
            assert t.shape == (4,)

        @pytest.mark.fake_world(4, 1, "pypg")
        def test_positional(fake_world):
            t = torch.ones(2)
            dist.all_reduce(t)
            assert t.tolist() == [4.0, 4.0]
            assert fake_world.pg.ops() == ["allreduce"]

        def test_default_world(fake_world):
            assert (fake_world.world_size, fake_world.rank) == (2, 0)
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_accelerator_skip_names_what_is_missing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.accelerator
        def test_one():
            pass

        @pytest.mark.accelerator(count=4)
        def test_four():
            pass
        """
    )
    result = pytester.runpytest("-rs", "-p", "no:randomly")
    from fakedist.accelerator import accelerator_info

    if accelerator_info().count == 0:
        result.assert_outcomes(skipped=2)
        result.stdout.fnmatch_lines(
            ["*needs 1 CUDA device, found none*", "*needs 4 CUDA devices, found none*"]
        )


def test_bad_accelerator_count_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.accelerator(count=0)
        def test_zero():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*accelerator marker: count must be an int >= 1, got 0*"])


def test_teardown_after_failing_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, torch.distributed as dist

        @pytest.mark.fake_world(world_size=4)
        def test_fails(fake_world):
            assert dist.is_initialized()
            raise RuntimeError("boom")

        def test_after():
            assert not dist.is_initialized()
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: boom*"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("world_size=0", "world_size must be >= 1, got 0"),
        ("world_size='8'", "world_size must be an int >= 1, got '8'"),
        ("world_size=4, rank=4", "rank 4 is outside [[]0, 4) for world_size=4"),
        ("backend='nccl'", "unknown backend 'nccl'; fakedist offers: fake, mock_process*, pypg"),
        ("backend='pypg', color='red'", "pypg backend: unknown option 'color'; options it has: *"),
        ("2, 0, 'fake', 'extra'", "too many positional arguments*"),
    ],
)
def test_bad_marker_arguments(pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.fake_world({marker})
        def test_bad(fake_world):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*test_bad: fake_world marker: {message}*"])
    assert "Traceback" not in result.stdout.str()
    assert "def fake_world" not in result.stdout.str()  # no fixture source either
    assert "During handling" not in result.stdout.str()


def test_leaked_group_fails_the_leaking_test_in_strict_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import torch.distributed as dist
        import fakedist

        def test_leaks():
            fakedist.register_backends()
            dist.init_process_group("fake", rank=0, world_size=2, store=dist.HashStore())

        def test_next():
            assert not dist.is_initialized()
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--fakedist-isolation=strict")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_leaks left a process group initialised (backend 'fake')*"])


LEAKS = {
    "world": (
        """
        global KEPT  # a reference keeps the context open after the test
        KEPT = fakedist.fake_world(2)
        KEPT.__enter__()
        """,
        "test_leaks left a fake_world active (world_size=2 rank=0 fake);"
        " exit the fake_world context in the test;"
        " it also left a process group initialised (backend 'fake')*"
        " it also left fakedist's collective hooks installed*",
    ),
    "hooks": (
        """
        from fakedist import _hooks, comms, faults
        _hooks.install(
            _hooks.Recorder(comms.CommLog(), faults.FaultSchedule(), record=True,
                            native_faults=False)
        )
        """,
        "test_leaks left fakedist's collective hooks installed (1 active recorder(s),"
        " methods still patched: * more); use fakedist.fake_world",
    ),
    "faults": (
        """
        import os
        os.environ["FAKEDIST_FAULTS"] = '{"op": "all_reduce"}'
        """,
        "test_leaks left a fault schedule in FAKEDIST_FAULTS"
        """ ('{"op": "all_reduce"}', was None); use monkeypatch.setenv""",
    ),
}


@pytest.mark.parametrize("kind", sorted(LEAKS))
def test_leaked_fakedist_state_fails_the_leaking_test(pytester: pytest.Pytester, kind: str) -> None:
    body, message = LEAKS[kind]
    indented = "\n".join("    " + line for line in textwrap.dedent(body).strip().splitlines())
    pytester.makepyfile(
        f"""
import os, torch, torch.distributed as dist
import fakedist
from fakedist import _hooks, world

def test_leaks():
{indented}

def test_next_starts_clean(fake_world):
    assert not _hooks._PATCHED or len(_hooks._ACTIVE) == 1
    assert len(world._ACTIVE) == 1 and "FAKEDIST_FAULTS" not in os.environ

def test_then_nothing_is_left():
    assert not (_hooks._ACTIVE or _hooks._PATCHED or world._ACTIVE or dist.is_initialized())
    assert not any(getattr(v, "__fakedist_hook__", False)
                   for v in vars(dist.ProcessGroup).values())
"""
    )
    result = pytester.runpytest("-p", "no:randomly", "-W", "error")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([f"*{message}"])


def test_report_header_names_torch_and_backends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest("-p", "no:randomly")
    import torch

    result.stdout.fnmatch_lines(
        [
            f"fakedist: torch {torch.__version__} (*build*), devices: *, "
            "backends: fake, mock_process_group, pypg"
        ]
    )


def test_works_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(
        """
        import pytest, torch, torch.distributed as dist

        @pytest.mark.parametrize("rank", range(6))
        @pytest.mark.fake_world(world_size=6)
        def test_each(rank):
            pass

        @pytest.mark.parametrize("rank", range(4))
        def test_rank(rank):
            from fakedist import fake_world
            with fake_world(4, rank=rank) as w:
                t = torch.ones(2)
                dist.all_reduce(t)
                assert dist.get_rank() == rank
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=10)


def test_isolation_names_the_faults_variable_without_importing_torch() -> None:
    from fakedist import faults, isolation

    assert isolation.FAULTS_ENV == faults.ENV_VAR
