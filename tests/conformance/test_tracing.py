"""Tracing functional collectives on a fake world: ``make_fx`` graphs hold the collective and
its ``wait_tensor``, on CPU and (accelerator-marked) on CUDA."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch.testing import FileCheck

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")


def _funcol() -> Any:
    import torch.distributed._functional_collectives as funcol

    return funcol


def _trace(fn: Any, *args: torch.Tensor) -> str:
    from torch.fx.experimental.proxy_tensor import make_fx

    return str(make_fx(fn)(*args).graph)


def _targets(graph: str) -> list[str]:
    """The call_function targets of a printed FX graph, in order (short op names)."""
    return [
        line.split("target=")[1].split("]")[0].split(".")[-2]
        for line in graph.splitlines()
        if "call_function[target=" in line
    ]


def _default_group() -> Any:
    return dist.distributed_c10d._get_default_group()


@pytest.mark.fake_world(world_size=2, rank=0)
def test_make_fx_all_gather_tensor_cpu(fake_world) -> None:
    funcol, pg = _funcol(), _default_group()
    graph = _trace(lambda t: funcol.all_gather_tensor(t, 0, pg), torch.randn(2, 2))
    FileCheck().check("all_gather").check("wait_tensor").run(graph)
    assert _targets(graph) == ["all_gather_into_tensor", "wait_tensor"]


@pytest.mark.fake_world(world_size=4, rank=3)
def test_make_fx_all_reduce_and_reduce_scatter_cpu(fake_world) -> None:
    funcol, pg = _funcol(), _default_group()

    def fn(t: torch.Tensor) -> torch.Tensor:
        return funcol.reduce_scatter_tensor(funcol.all_reduce(t, "sum", pg), "sum", 0, pg)

    graph = _trace(fn, torch.randn(8, 2))
    FileCheck().check("all_reduce").check("wait_tensor").check("reduce_scatter").check(
        "wait_tensor"
    ).run(graph)


@pytest.mark.fake_world(world_size=4, rank=1)
def test_eager_all_gather_tensor_shape(fake_world) -> None:
    funcol, pg = _funcol(), _default_group()
    out = funcol.wait_tensor(funcol.all_gather_tensor(torch.ones(2, 3), 0, pg))
    assert out.shape == (8, 3)


@pytest.mark.accelerator
@pytest.mark.fake_world(world_size=2, rank=0)
def test_make_fx_all_gather_tensor_cuda(fake_world) -> None:
    funcol, pg = _funcol(), _default_group()
    graph = _trace(lambda t: funcol.all_gather_tensor(t, 0, pg), torch.randn(2, 2, device="cuda"))
    FileCheck().check("all_gather").check("wait_tensor").run(graph)
