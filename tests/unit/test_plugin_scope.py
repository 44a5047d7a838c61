"""The plugin's scope: which tests its leak check covers (``--fakedist-isolation``), fixtures
that request ``fake_world`` at every fidelity, and where skips and failures point."""

from __future__ import annotations

import pytest

pytest.importorskip("torch.distributed")

GLOO = 'dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())'


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:randomly", *args)


@pytest.mark.parametrize("mode", [None, "strict"])
def test_a_users_session_scoped_group_is_left_alone(
    pytester: pytest.Pytester, mode: str | None
) -> None:
    pytester.makeconftest(
        f"""
        import pytest, torch.distributed as dist

        @pytest.fixture(scope="session")
        def gloo_group():
            {GLOO}
            yield dist.group.WORLD
            dist.destroy_process_group()
        """
    )
    pytester.makepyfile(
        """
        import pytest, torch, torch.distributed as dist

        def test_first(gloo_group):
            t = torch.ones(2)
            dist.all_reduce(t)
            assert t.tolist() == [1.0, 1.0] and dist.group.WORLD is gloo_group

        @pytest.mark.fake_world(2)
        def test_fakedist_refuses_to_replace_it(gloo_group, fake_world):
            pass

        def test_second(gloo_group):
            assert dist.get_backend() == "gloo" and dist.group.WORLD is gloo_group
            dist.barrier()
        """
    )
    result = run(pytester, *([f"--fakedist-isolation={mode}"] if mode else []))
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*a default process group is already initialised*"])
    result.stdout.no_fnmatch_line("*left a process group*")


def test_a_users_module_scoped_group_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a=f"""
        import pytest, torch, torch.distributed as dist

        @pytest.fixture(scope="module")
        def gloo_group():
            {GLOO}
            yield
            dist.destroy_process_group()

        def test_one(gloo_group):
            dist.all_reduce(torch.ones(1))

        def test_two(gloo_group):
            assert dist.get_backend() == "gloo"
        """,
        test_b="""
        import pytest, torch.distributed as dist

        @pytest.mark.fake_world(4)
        def test_after_the_module(fake_world):
            assert dist.get_world_size() == 4
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=3)


LEAKY = f"""
import os, pytest, torch.distributed as dist

@pytest.mark.fake_world  # the marker alone: a test that uses fakedist
def test_marked_leaks():
    {GLOO}

def test_then_cleans_up():
    if dist.is_initialized():
        dist.destroy_process_group()

def test_plain_leaks():
    {GLOO}

def test_last_cleans_up():
    if dist.is_initialized():
        dist.destroy_process_group()
"""


@pytest.mark.parametrize(
    ("args", "leakers"),
    [
        ((), ["test_marked_leaks"]),
        (("--fakedist-isolation=fakedist",), ["test_marked_leaks"]),
        (("--fakedist-isolation=strict",), ["test_marked_leaks", "test_plain_leaks"]),
        (("--fakedist-isolation=off",), []),
    ],
    ids=["default", "fakedist", "strict", "off"],
)
def test_isolation_modes(
    pytester: pytest.Pytester, args: tuple[str, ...], leakers: list[str]
) -> None:
    pytester.makepyfile(LEAKY)
    result = run(pytester, *args)
    result.assert_outcomes(passed=4, errors=len(leakers))
    for name in ("test_marked_leaks", "test_plain_leaks"):
        line = f"*{name} left a process group initialised (backend 'gloo')*"
        if name in leakers:
            result.stdout.fnmatch_lines([line])
        else:
            result.stdout.no_fnmatch_line(line)


def test_command_line_wins_over_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfakedist_isolation = off\n")
    pytester.makepyfile(LEAKY)
    result = run(pytester)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["fakedist: isolation=off"])
    result = run(pytester, "--fakedist-isolation=strict")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(["fakedist: isolation=strict"])


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        (None, ("--fakedist-isolation=loose",), "--fakedist-isolation: isolation must be"),
        ("fakedist_isolation = loose", (), "fakedist_isolation in tox.ini: isolation must be"),
    ],
    ids=["option", "ini"],
)
def test_bad_isolation_setting_names_where_it_came_from(
    pytester: pytest.Pytester, ini: str | None, args: tuple[str, ...], message: str
) -> None:
    if ini:
        pytester.makefile(".ini", tox=f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message} one of fakedist, strict, off; got 'loose'"])
    assert "Traceback" not in result.stderr.str()


def test_a_fixture_requesting_fake_world(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, torch.distributed as dist

        @pytest.fixture
        def where(fake_world):
            return fake_world.rank, dist.get_world_size()

        @pytest.mark.fake_world(4, rank=2, fidelity=["fake", "threaded"])
        def test_where(fake_world, where):
            assert where == (2, 4)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_where[[]threaded]: fixture 'where' requests fake_world, but at fidelity "
            "'threaded' each rank's World exists only in the test, and fixtures are set up "
            "once before the ranks start: have the fixture return a function, and call it in "
            "the test with fake_world"
        ]
    )


def test_skips_and_failures_point_at_the_test(pytester: pytest.Pytester) -> None:
    # its own rootdir: nox's TMPDIR lies inside this repository, whose pyproject.toml would
    # otherwise be the rootdir and make every location .nox/.../test_where.py
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        test_where="""
        import pytest, torch, torch.distributed as dist, unittest, fakedist

        @pytest.mark.accelerator(1000)
        def test_needs_devices():
            pass

        @pytest.mark.fake_world(2, fidelity="threaded")
        def test_p2p(fake_world):
            dist.send(torch.ones(1), dst=1 - dist.get_rank())

        @pytest.mark.fake_world(2, fidelity="threaded")
        def test_rank_one_fails(fake_world):
            assert dist.get_rank() == 0

        @pytest.mark.fake_world(world_size=0)
        def test_bad_marker(fake_world):
            pass

        class TestCase(unittest.TestCase):
            @fakedist.with_fake_comms(world_size=2, fidelity="threaded")
            def test_method_fails(self):
                assert dist.get_rank() == 0

        @fakedist.with_fake_comms(world_size=2, fidelity="threaded")
        def test_decorated_p2p():
            dist.recv(torch.ones(1), src=1 - dist.get_rank())
        """
    )
    result = run(pytester, "-rs", "--tb=line")
    result.assert_outcomes(skipped=3, failed=2, errors=1)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1] test_where.py:3: needs 1000 * devices, found *",
            "SKIPPED [[]1] test_where.py:7: threaded fidelity: *send*",
            "SKIPPED [[]1] test_where.py:24: threaded fidelity: *recv*",
            "*test_where.py:11: Failed: test_where.py::test_rank_one_fails: rank 1 of 2*",
            "*test_where.py:20: *RankFailure: TestCase.test_method_fails: rank 1 of 2*",
            "test_where.py::test_bad_marker: fake_world marker: world_size must be >= 1, got 0",
        ]
    )
    result.stdout.no_fnmatch_line("*plugin.py*")
