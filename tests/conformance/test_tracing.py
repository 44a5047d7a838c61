"""Tracing functional collectives on a fake world: ``make_fx`` graphs hold the collective and
its ``wait_tensor``, on CPU and (accelerator-marked) on CUDA; ``torch.compile`` (fullgraph or
not, eager and inductor), ``make_fx`` and ``torch.export`` work inside a recording world, and
the CommLog holds each collective once per call that executes on real tensors (tracing with
fake tensors records nothing). Before torch 2.4 only graphs that call the op packet (dynamo's
graph under the ``eager`` backend) are seen; calls from inductor's code, make_fx graphs and
export programs are asserted absent, never doubled (``fakedist._hooks.records_graph_calls``)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch.testing import FileCheck

from fakedist import _hooks

# torch's own compile path touches torch.jit.script_method (deprecated from torch 2.13).
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*is deprecated:FutureWarning",
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning",
)

WS, RANK = 4, 1


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


def _compilable_group() -> Any:
    """The default group as dynamo can trace it: the ProcessGroup, or its ranks where the fake
    backend is a Python class (torch 2.1-2.2), whose ProcessGroup object dynamo cannot trace
    through ``get_process_group_ranks``."""
    from fakedist.backends import fake

    return _default_group() if fake.features().cpp_class else list(range(WS))


def _two_collectives(pg: Any, graph_break: bool) -> Any:
    funcol = _funcol()

    def fn(t: torch.Tensor) -> torch.Tensor:
        reduced = funcol.all_reduce(t * 2, "sum", pg)
        if graph_break:
            torch._dynamo.graph_break()
        return funcol.all_gather_tensor(reduced + 1, 0, pg)

    return fn


def _recorded(world: Any) -> list[tuple[str, bool, int, tuple[Any, ...]]]:
    return [(r.op, r.functional, r.group_size, tuple(r.shapes)) for r in world.comms]


ONE_CALL = [
    ("all_reduce", True, WS, (torch.Size([2, 3]),)),
    ("all_gather_into_tensor", True, WS, (torch.Size([2, 3]),)),
]


def _graph_calls(n: int, *, calls_packet: bool = False) -> list[Any]:
    """What ``n`` calls from a compiled or traced graph record on this torch.

    From torch 2.4 each call, as a functional collective. Before, a graph that calls the op
    packet (dynamo's own graph, run by the ``eager`` backend) is seen as one; one that calls
    the op overload (inductor, make_fx, export) is not -- except where the fake backend is a
    Python class (torch 2.1-2.2): there the op reaches the group's Python methods, and each
    call is recorded once as the plain collective its Python kernel makes (``all_gather``
    for ``all_gather_into_tensor``).
    """
    from fakedist.backends import fake

    if _hooks.records_graph_calls() or calls_packet:
        return ONE_CALL * n
    if not fake.features().cpp_class:
        shape = (torch.Size([2, 3]),)
        return [("all_reduce", False, WS, shape), ("all_gather", False, WS, shape)] * n
    return []


@pytest.mark.parametrize("backend", ["eager", "inductor"])
@pytest.mark.parametrize("fullgraph", [True, False], ids=["fullgraph", "graph_break"])
@pytest.mark.fake_world(world_size=WS, rank=RANK)
def test_compile_records_each_collective_once_per_call(
    fake_world, fake_semantics: Any, backend: str, fullgraph: bool
) -> None:
    torch._dynamo.reset()
    try:
        fn = _two_collectives(_compilable_group(), graph_break=not fullgraph)
        compiled = torch.compile(fn, backend=backend, fullgraph=fullgraph)
        x = torch.ones(2, 3)
        packet = backend == "eager"
        first = compiled(x)
        # compiling records nothing of its own
        assert _recorded(fake_world) == _graph_calls(1, calls_packet=packet)
        second = compiled(x)
        assert _recorded(fake_world) == _graph_calls(2, calls_packet=packet)
    finally:
        torch._dynamo.reset()
    assert first.shape == second.shape == (2 * WS, 3)
    # this rank's block of the gather: the all-reduced (t * 2) + 1
    expected = torch.full((2, 3), 2.0 * fake_semantics.sum_factor(WS) + 1)
    if fake_semantics.copies("all_gather_into_tensor"):
        assert torch.equal(second[:2], expected)


@pytest.mark.fake_world(world_size=WS, rank=RANK)
def test_make_fx_records_the_traced_call_and_each_graph_call(fake_world) -> None:
    fn = _two_collectives(_compilable_group(), graph_break=False)
    from torch.fx.experimental.proxy_tensor import make_fx

    gm = make_fx(fn)(torch.ones(2, 3))  # real tracing runs the collectives once
    assert _recorded(fake_world) == ONE_CALL
    assert _targets(str(gm.graph)) == [
        "mul",
        "all_reduce",
        "wait_tensor",
        "add",
        "all_gather_into_tensor",
        "wait_tensor",
    ]
    gm(torch.ones(2, 3))
    gm(torch.ones(2, 3))
    assert _recorded(fake_world) == ONE_CALL + _graph_calls(2)


@pytest.mark.fake_world(world_size=WS, rank=RANK)
def test_make_fx_fake_tracing_records_nothing(fake_world) -> None:
    fn = _two_collectives(_compilable_group(), graph_break=False)
    from torch.fx.experimental.proxy_tensor import make_fx

    gm = make_fx(fn, tracing_mode="fake")(torch.ones(2, 3))
    assert "all_gather_into_tensor" in _targets(str(gm.graph))
    assert _recorded(fake_world) == []
    gm(torch.ones(2, 3))
    assert _recorded(fake_world) == _graph_calls(1)


@pytest.mark.fake_world(world_size=WS, rank=RANK)
def test_export_records_only_the_exported_programs_calls(fake_world) -> None:
    fn = _two_collectives(_compilable_group(), graph_break=False)

    class Module(torch.nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return fn(t)

    program = torch.export.export(Module(), (torch.ones(2, 3),))
    assert "all_reduce" in _targets(str(program.graph))
    assert _recorded(fake_world) == []  # export traces with fake tensors
    program.module()(torch.ones(2, 3))
    assert _recorded(fake_world) == _graph_calls(1)


def _dynamo_remaps_all_reduce() -> bool:
    """Does dynamo put ``dist.all_reduce`` into the graph as a functional collective? torch
    2.2 remaps only all_gather_into_tensor and reduce_scatter_tensor."""
    remaps = getattr(_funcol(), "traceable_collective_remaps", {})
    return dist.all_reduce in remaps


@pytest.mark.skipif(
    not _dynamo_remaps_all_reduce(),
    reason="this torch's dynamo cannot trace dist.all_reduce (torch 2.3+)",
)
@pytest.mark.fake_world(world_size=WS, rank=RANK)
def test_compile_fullgraph_over_c10d_all_reduce(fake_world) -> None:
    def fn(t: torch.Tensor) -> torch.Tensor:
        t = t * 2
        dist.all_reduce(t)  # dynamo puts the functional all_reduce in the graph
        return t + 1

    torch._dynamo.reset()
    try:
        compiled = torch.compile(fn, backend="eager", fullgraph=True)
        compiled(torch.ones(3))
        compiled(torch.ones(3))
    finally:
        torch._dynamo.reset()
    recorded = [(r.op, r.functional, r.shapes) for r in fake_world.comms]
    assert recorded == [("all_reduce", True, (torch.Size([3]),))] * 2
