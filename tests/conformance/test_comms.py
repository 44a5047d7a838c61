"""CommLog: every collective is recorded with exact op, group, shapes, dtypes, bytes and peers."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from _models import fully_shard_fn  # noqa: E402

from fakedist import fake_world  # noqa: E402
from fakedist.comms import CommRecord, normalise_op  # noqa: E402
from fakedist.world import group_name  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

WS, RANK = 4, 1
F32 = "torch.float32"


def _t(*shape: int) -> Any:
    return torch.ones(*shape)


# name -> (call, op, shapes, bytes, src, dst, async_op)
CASES: dict[str, tuple[Callable[[], Any], str, tuple[tuple[int, ...], ...], int, Any, Any, Any]] = {
    "all_reduce": (lambda: dist.all_reduce(_t(4)), "all_reduce", ((4,),), 16, None, None, False),
    "all_reduce_async": (
        lambda: dist.all_reduce(_t(4), async_op=True).wait(),
        "all_reduce",
        ((4,),),
        16,
        None,
        None,
        True,
    ),
    "broadcast_src_is_rank": (
        lambda: dist.broadcast(_t(3), src=RANK),
        "broadcast",
        ((3,),),
        12,
        RANK,
        None,
        False,
    ),
    "broadcast_src_not_rank": (
        lambda: dist.broadcast(_t(3), src=0),
        "broadcast",
        ((3,),),
        0,
        0,
        None,
        False,
    ),
    "reduce": (lambda: dist.reduce(_t(2, 2), dst=2), "reduce", ((2, 2),), 16, None, 2, False),
    "all_gather": (
        lambda: dist.all_gather([_t(2) for _ in range(WS)], _t(2)),
        "all_gather",
        ((2,),),
        8,
        None,
        None,
        False,
    ),
    "all_gather_into_tensor": (
        lambda: dist.all_gather_into_tensor(_t(2 * WS), _t(2)),
        "all_gather_into_tensor",
        ((2,),),
        8,
        None,
        None,
        False,
    ),
    "gather": (lambda: dist.gather(_t(5), dst=3), "gather", ((5,),), 20, None, 3, False),
    "scatter_src_is_rank": (
        lambda: dist.scatter(_t(2), [_t(2) for _ in range(WS)], src=RANK),
        "scatter",
        ((2,),) * WS,
        8 * WS,
        RANK,
        None,
        False,
    ),
    "scatter_src_not_rank": (
        lambda: dist.scatter(_t(2), None, src=0),
        "scatter",
        ((2,),),
        0,
        0,
        None,
        False,
    ),
    "reduce_scatter": (
        lambda: dist.reduce_scatter(_t(3), [_t(3) for _ in range(WS)]),
        "reduce_scatter",
        ((3,),) * WS,
        12 * WS,
        None,
        None,
        False,
    ),
    "reduce_scatter_tensor": (
        lambda: dist.reduce_scatter_tensor(_t(3), _t(3 * WS)),
        "reduce_scatter_tensor",
        ((3 * WS,),),
        12 * WS,
        None,
        None,
        False,
    ),
    "all_to_all": (
        lambda: dist.all_to_all([_t(2) for _ in range(WS)], [_t(2) for _ in range(WS)]),
        "all_to_all",
        ((2,),) * WS,
        8 * WS,
        None,
        None,
        False,
    ),
    "all_to_all_single": (
        lambda: dist.all_to_all_single(_t(WS, 3), _t(WS, 3)),
        "all_to_all_single",
        ((WS, 3),),
        12 * WS,
        None,
        None,
        False,
    ),
    "send": (lambda: dist.send(_t(6), dst=3), "send", ((6,),), 24, None, 3, None),
    "recv": (lambda: dist.recv(_t(6), src=2), "recv", ((6,),), 0, 2, None, None),
    "barrier": (lambda: dist.barrier(), "barrier", (), 0, None, None, False),
}


REDUCING = {"all_reduce", "reduce", "reduce_scatter", "reduce_scatter_tensor"}


@pytest.mark.parametrize("name", list(CASES))
def test_each_collective_is_recorded_exactly(name: str) -> None:
    call, op, shapes, nbytes, src, dst, async_op = CASES[name]
    with fake_world(WS, rank=RANK) as world:
        call()
        log = world.comms
        assert len(log) == 1
        expected = CommRecord(
            index=0,
            op=op,
            functional=False,
            group_name=world.group_name,
            group_ranks=tuple(range(WS)),
            shapes=shapes,
            dtypes=(F32,) * len(shapes),
            bytes=nbytes,
            src=src,
            dst=dst,
            async_op=log[0].async_op if async_op is None else async_op,
            step=0,
            fault=None,
            reduce_op="SUM" if op in REDUCING else None,
        )
        assert log[0] == expected
        assert log.count(op) == 1
        assert log.bytes(op) == nbytes
        assert log[0].group_size == WS


FUNCTIONAL = {
    "all_reduce": (lambda g: _funcol().all_reduce(_t(4), "sum", g), ((4,),), 16),
    "all_gather_into_tensor": (lambda g: _funcol().all_gather_tensor(_t(2), 0, g), ((2,),), 8),
    "reduce_scatter_tensor": (
        lambda g: _funcol().reduce_scatter_tensor(_t(8), "sum", 0, g),
        ((8,),),
        32,
    ),
    "all_to_all_single": (
        lambda g: _funcol().all_to_all_single(_t(WS, 2), None, None, g),
        ((WS, 2),),
        8 * WS,
    ),
}


def _funcol() -> Any:
    import torch.distributed._functional_collectives as funcol

    return funcol


@pytest.mark.parametrize("op", list(FUNCTIONAL))
def test_functional_collectives_count_as_the_same_op(op: str) -> None:
    if op == "all_to_all_single" and not hasattr(_funcol(), op):
        pytest.skip("needs torch.distributed._functional_collectives.all_to_all_single (2.2+)")
    call, shapes, nbytes = FUNCTIONAL[op]
    with fake_world(WS, rank=RANK) as world:
        out = call(dist.group.WORLD)
        out.wait() if hasattr(out, "wait") else _funcol().wait_tensor(out)
        (rec,) = world.comms.records
        assert (rec.op, rec.functional, rec.async_op, rec.shapes, rec.bytes) == (
            op,
            True,
            True,
            shapes,
            nbytes,
        )
        assert rec.group_ranks == tuple(range(WS))
        assert world.comms.count(op) == 1
        assert world.comms.filter(op, functional=False) == []


@pytest.mark.parametrize("legacy", [False, True], ids=["funcol", "c10d_functional"])
def test_functional_collectives_record_the_group_of_this_rank(legacy: bool) -> None:
    """The record holds the op's group, by ranks and torch's name, also for the
    ``c10d_functional`` ops that name it by (tag, ranks, group size): what funcol calls
    before torch 2.3 (later a shim over ``_c10d_functional``)."""
    lists = [[0, 1, 2, 3], [4, 5, 6, 7]]
    with fake_world(8, rank=5) as world:
        groups = [dist.new_group(ranks) for ranks in lists]
        if legacy:
            _funcol()  # defines the c10d_functional ops on torch < 2.3
            out = torch.ops.c10d_functional.all_reduce(_t(4), "sum", "", lists[1], 4)
        else:
            out = _funcol().all_reduce(_t(4), "sum", groups[1])
        out.wait() if hasattr(out, "wait") else _funcol().wait_tensor(out)
        (rec,) = world.comms.records
        assert (rec.op, rec.functional, rec.group_ranks) == ("all_reduce", True, (4, 5, 6, 7))
        assert rec.group_name == group_name(groups[1])


def test_group_names_are_torchs_on_every_release() -> None:
    """``World.group_name`` and ``group_name()`` give torch's names for the groups, also where
    the ProcessGroup cannot tell (2.1 has no ``group_name``; 2.2's raises for the fake one)."""
    with fake_world(4, rank=1) as world:
        sub = dist.new_group([0, 1])
        assert (world.group_name, group_name(sub)) == ("0", "1")
        dist.barrier(group=sub)
        dist.barrier()
        assert world.comms.groups() == {"1": (0, 1), "0": (0, 1, 2, 3)}


def test_fixture_example_from_the_design() -> None:
    with fake_world(8, rank=3) as world:
        dist.all_reduce(torch.ones(4))
        assert world.comms.count("all_reduce") == 1
        assert world.comms.bytes("all_reduce") == 16
        assert world.comms.count("allreduce_") == 1  # aliases name the same op


@pytest.mark.fake_world(world_size=8, rank=3)
def test_the_fixture_exposes_comms(fake_world: Any) -> None:
    dist.all_reduce(torch.ones(4))
    assert fake_world.comms.count("all_reduce") == 1
    assert fake_world.comms.bytes("all_reduce") == 16


def test_subgroups_are_recorded_with_their_global_ranks() -> None:
    with fake_world(8, rank=5) as world:
        sub = dist.new_group([1, 5, 7])
        dist.all_reduce(torch.ones(2), group=sub)
        dist.broadcast(torch.ones(2), src=7, group=sub)
        dist.send(torch.ones(1), dst=7, group=sub)
        log = world.comms
        assert [r.group_ranks for r in log] == [(1, 5, 7)] * 3
        assert log[1].src == 7
        assert log[1].bytes == 0
        assert log[2].dst == 7
        for spec in (sub, [1, 5, 7], (1, 5, 7), group_name(sub)):
            assert log.count(group=spec) == 3
        assert log.count(group=dist.group.WORLD) == 0
        assert log.groups() == {group_name(sub): (1, 5, 7)}


def test_table_json_dump_and_clear(tmp_path: Any) -> None:
    with fake_world(2, rank=0) as world:
        dist.all_reduce(torch.ones(4, dtype=torch.float16))
        dist.broadcast(torch.ones(3), src=0)
        text = str(world.comms)
        lines = text.splitlines()
        assert lines[0].split() == [
            "#",
            "op",
            "group(size)",
            "shapes",
            "dtype",
            "bytes",
            "peer",
            "flags",
        ]
        assert lines[1].split() == [
            "0",
            "all_reduce",
            f"{world.group_name}(2)",
            "4",
            "float16",
            "8",
        ]
        assert lines[2].split()[-2:] == ["12", "src=0"]
        data = json.loads(world.comms.to_json())
        assert data["groups"] == {world.group_name: [0, 1]}
        assert data["calls"][0] == {
            "index": 0,
            "op": "all_reduce",
            "functional": False,
            "group_name": world.group_name,
            "group_size": 2,
            "shapes": [[4]],
            "dtypes": ["torch.float16"],
            "bytes": 8,
            "src": None,
            "dst": None,
            "async_op": False,
            "step": 0,
            "fault": None,
            "reduce_op": "SUM",
        }
        path = tmp_path / "comms.json"
        world.comms.dump(str(path))
        assert json.loads(path.read_text()) == data
        world.comms.clear()
        assert len(world.comms) == 0
        assert str(world.comms).count("\n") == 0


def test_assertion_helpers_show_expected_and_recorded_side_by_side() -> None:
    with fake_world(2) as world:
        dist.all_reduce(torch.ones(1))
        dist.barrier()
        world.comms.assert_sequence(["allreduce", "barrier"])
        world.comms.assert_count("all_reduce", 1)
        with pytest.raises(AssertionError) as info:
            world.comms.assert_sequence(["all_reduce", "all_gather"])
        lines = str(info.value).splitlines()
        assert lines[0] == "collective sequence differs"
        assert lines[2].split() == ["0", "all_reduce", "all_reduce"]
        assert lines[3].split() == ["1", "all_gather", "barrier", "<--", "differs"]
        with pytest.raises(AssertionError, match=r"expected 2 call\(s\) of all_reduce, recorded 1"):
            world.comms.assert_count("all_reduce", 2)


def test_steps_are_stamped_on_records() -> None:
    with fake_world(2) as world:
        dist.barrier()
        assert world.step() == 1
        dist.barrier()
        assert [r.step for r in world.comms] == [0, 1]


def test_unknown_op_names_the_value() -> None:
    with pytest.raises(ValueError, match="unknown collective op 'all_reduse'"):
        normalise_op("all_reduse")
    assert normalise_op("c10d.allreduce_.default") == "all_reduce"
    assert normalise_op("_c10d_functional.all_gather_into_tensor") == "all_gather_into_tensor"


def test_pypg_records_through_the_same_log() -> None:
    with fake_world(4, rank=2, backend="pypg") as world:
        dist.all_reduce(torch.ones(4))
        dist.all_gather([torch.empty(2) for _ in range(4)], torch.ones(2))
        assert world.comms.ops() == ["all_reduce", "all_gather"]
        assert world.comms.bytes() == 16 + 8
        assert world.pg.ops()[0] == "allreduce"  # pypg's own call list agrees


def test_record_false_records_nothing() -> None:
    with fake_world(2, record=False) as world:
        dist.all_reduce(torch.ones(4))
        assert len(world.comms) == 0


def _ag_shard_numel(params: list[Any], ws: int) -> int:
    """FSDP2 pads dim 0 to a multiple of the world size: each rank holds ceil(d0/ws) rows."""
    return sum(math.ceil(p.shape[0] / ws) * math.prod(p.shape[1:]) for p in params)


def test_fsdp2_records_the_all_gathers_and_reduce_scatters_its_sharding_implies() -> None:
    fully_shard = fully_shard_fn()
    ws = 4
    with fake_world(ws, rank=1) as world:
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
        full = [p.detach().clone() for p in model.parameters()]
        fully_shard(model, reshard_after_forward=True)
        world.comms.clear()
        model(torch.randn(2, 8)).sum().backward()
        shard = _ag_shard_numel(full, ws)
        # One all-gather for forward, one again for backward (resharded), one reduce-scatter.
        # Up to torch 2.7 the root never reshards after forward (reshard_after_forward defaults
        # to True and FSDP2 drops it for the root): backward reuses the forward's all-gather.
        # From torch 2.8 it defaults to None ("auto") and only that is dropped for the root.
        root_reshards = (
            inspect.signature(fully_shard).parameters["reshard_after_forward"].default is None
        )
        gathers = 2 if root_reshards else 1
        world.comms.assert_sequence(
            ["all_gather_into_tensor"] * gathers + ["reduce_scatter_tensor"]
        )
        assert world.comms.bytes("all_gather_into_tensor") == gathers * shard * 4
        assert world.comms.bytes("reduce_scatter_tensor") == ws * shard * 4
        assert all(r.group_ranks == tuple(range(ws)) for r in world.comms)


def test_fsdp2_tp_attributes_each_op_to_its_sub_group() -> None:
    fully_shard = fully_shard_fn()
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    with fake_world(8, rank=5) as world:
        mesh = init_device_mesh("cpu", (4, 2), mesh_dim_names=("dp", "tp"))
        dp = tuple(dist.get_process_group_ranks(mesh.get_group("dp")))
        tp = tuple(dist.get_process_group_ranks(mesh.get_group("tp")))
        assert (dp, tp) == ((1, 3, 5, 7), (4, 5))
        model = torch.nn.Sequential(
            torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16)
        )
        parallelize_module(model, mesh["tp"], {"0": ColwiseParallel(), "2": RowwiseParallel()})
        fully_shard(model, mesh=mesh["dp"])
        world.comms.clear()
        model(torch.randn(4, 16)).sum().backward()
        log = world.comms
        # FSDP's all-gather/reduce-scatter run on dp; TP's output all-reduce on tp
        assert {r.group_ranks for r in log.filter("all_gather_into_tensor")} == {dp}
        assert {r.group_ranks for r in log.filter("reduce_scatter_tensor")} == {dp}
        assert log.filter("all_reduce")
        assert all(r.group_ranks == tp and r.functional for r in log.filter("all_reduce"))
        assert log.count(group=(mesh, "dp")) == 2
        assert log.count(group=mesh["tp"]) == log.count("all_reduce")
        # TP halves each matrix's dim 0 (colwise) or dim 1 (rowwise) before FSDP shards dim 0
        local = [(16, 16), (16,), (16, 16), (16,)]
        assert (
            log.filter("all_gather_into_tensor")[0].bytes
            == _ag_shard_numel([torch.empty(s) for s in local], 4) * 4
        )


def test_the_reduce_op_is_recorded_by_name() -> None:
    with fake_world(WS, rank=RANK) as world:
        dist.all_reduce(_t(2), op=dist.ReduceOp.MAX)
        dist.reduce(_t(2), dst=0, op=dist.ReduceOp.MIN)
        dist.broadcast(_t(2), src=0)
        ops = [(r.op, r.reduce_op) for r in world.comms]
    assert ops == [("all_reduce", "MAX"), ("reduce", "MIN"), ("broadcast", None)]


def test_a_functional_reduce_op_is_recorded_by_name() -> None:
    if not hasattr(_funcol(), "all_reduce"):
        pytest.skip("needs functional collectives")
    with fake_world(WS, rank=RANK) as world:
        out = _funcol().all_reduce(_t(4), "avg", dist.group.WORLD)
        out.wait() if hasattr(out, "wait") else _funcol().wait_tensor(out)
        assert [r.reduce_op for r in world.comms] == ["AVG"]
