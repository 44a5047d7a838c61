"""with_fake_comms on what is not a plain function: coroutine functions, generator
functions, classes, and arguments in the wrong place, all decided when decorating."""

from __future__ import annotations

import asyncio
import unittest
from collections.abc import Iterator
from typing import Any

import pytest

dist = pytest.importorskip("torch.distributed")
import torch  # noqa: E402

import fakedist  # noqa: E402


def test_an_int_where_the_function_goes_is_a_type_error() -> None:
    with pytest.raises(TypeError) as info:
        fakedist.with_fake_comms(4)
    assert str(info.value) == (
        "with_fake_comms: got 4 where the function to decorate goes; "
        "settings are keywords: with_fake_comms(world_size=4, rank=1)"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, "timeout: timeout must be seconds > 0, got 0"),
        ({"faults": [{"op": "all_reduc"}]}, "all_reduc"),
        ({"faults": {"op": "all_reduce"}}, "faults must be a list of specs"),
        ({"record": "yes"}, "record must be True or False, got 'yes'"),
        ({"colour": "red"}, "fake backend: unknown option 'colour'"),
        ({"backend": "pypg", "colour": "red"}, "pypg backend: unknown option 'colour'"),
        ({"fidelity": "threaded", "timeout": "soon"}, "timeout must be seconds > 0, got 'soon'"),
    ],
)
def test_faults_options_and_timeout_are_checked_when_decorating(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fakedist.with_fake_comms(world_size=2, **kwargs)
    assert not dist.is_initialized()


def test_a_generator_function_is_refused() -> None:
    def test_steps() -> Iterator[int]:
        yield dist.get_world_size()

    with pytest.raises(TypeError, match=r"cannot decorate generator function .*test_steps: the"):
        fakedist.with_fake_comms(world_size=4)(test_steps)


def test_a_coroutine_runs_inside_the_world() -> None:
    @fakedist.with_fake_comms(world_size=4, rank=3)
    async def body(x: int) -> tuple[int, int, int]:
        await asyncio.sleep(0)
        return dist.get_rank(), dist.get_world_size(), x

    assert asyncio.run(body(7)) == (3, 4, 7)
    assert not dist.is_initialized()


async def _rank_sum() -> float:
    await asyncio.sleep(0)
    t = torch.ones(1) * (dist.get_rank() + 1)
    dist.all_reduce(t)
    return t.item()


threaded_sum = fakedist.with_fake_comms(world_size=2, fidelity="threaded")(_rank_sum)
gloo_sum = fakedist.with_fake_comms(world_size=2, fidelity="gloo")(_rank_sum)
gloo_sum.__qualname__ = gloo_sum.__name__ = "gloo_sum"  # pickled by name for the workers


@pytest.mark.parametrize("body", [threaded_sum, gloo_sum], ids=["threaded", "gloo"])
def test_a_coroutine_runs_on_every_rank(body: Any) -> None:
    assert asyncio.run(body()) == [3.0, 3.0]


class AsyncCase(unittest.IsolatedAsyncioTestCase):
    __test__ = False  # run by test_isolated_asyncio_test_case_runs_the_body: one fails

    @fakedist.with_fake_comms(world_size=4)
    async def test_in_world(self) -> None:
        await asyncio.sleep(0)
        self.assertEqual(dist.get_world_size(), 4)

    @fakedist.with_fake_comms(world_size=4)
    async def test_wrong_size(self) -> None:
        self.assertEqual(dist.get_world_size(), 999)


def test_isolated_asyncio_test_case_runs_the_body() -> None:
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(AsyncCase).run(result)
    assert result.testsRun == 2
    assert [case.id().rsplit(".", 1)[1] for case, _ in result.failures] == ["test_wrong_size"]
    assert "4 != 999" in result.failures[0][1]
    assert not result.errors
    assert not dist.is_initialized()


@fakedist.with_fake_comms(world_size=4, rank=1)
class DecoratedClass(unittest.TestCase):
    def setUp(self) -> None:
        self.outside = dist.is_initialized()  # setUp runs before the world

    def test_rank(self) -> None:
        self.assertEqual((dist.get_rank(), dist.get_world_size()), (1, 4))
        self.assertFalse(self.outside)

    @fakedist.with_fake_comms(world_size=8)
    def test_own_settings_win(self) -> None:
        self.assertEqual(dist.get_world_size(), 8)

    def helper(self) -> bool:
        return dist.is_initialized()


def test_a_class_gets_every_test_method_decorated() -> None:
    assert isinstance(DecoratedClass, type)
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(DecoratedClass).run(result)
    assert (result.testsRun, result.failures, result.errors) == (2, [], [])
    assert DecoratedClass("test_rank").helper() is False  # not a test: left as it was


def test_a_class_without_test_methods_is_refused() -> None:
    class Helpers:
        def setup(self) -> None: ...

    with pytest.raises(TypeError, match=r"class .*Helpers has no test\* methods"):
        fakedist.with_fake_comms(world_size=2)(Helpers)


def test_decorated_tests_run_under_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import unittest, torch.distributed as dist
        import fakedist

        @fakedist.with_fake_comms(world_size=4)
        class TestCase(unittest.TestCase):
            def test_right(self):
                assert dist.get_world_size() == 4

            def test_wrong(self):
                assert dist.get_world_size() == 999

        @fakedist.with_fake_comms(world_size=4)
        class TestPlain:
            def test_plain(self, tmp_path):
                assert dist.get_world_size() == 4 and tmp_path.is_dir()

        class TestAsync(unittest.IsolatedAsyncioTestCase):
            @fakedist.with_fake_comms(world_size=4)
            async def test_wrong(self):
                assert dist.get_world_size() == 999
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-q", "--tb=line")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random(
        ["*_run_under_pytest.py:10: assert 4 == 999", "*_run_under_pytest.py:20: assert 4 == 999"]
    )
