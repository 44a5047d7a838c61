"""Cross-rank consistency: every rank's program, run one after another, compared.

Consistent FSDP2, FSDP2+TP and DDP (on ``pypg``) steps pass at 8 and 64 ranks (all ranks)
and 65,536 (a sample); each classic hang (a barrier only rank 0 reaches, an extra all_gather
on the last rank, a shape or dtype mismatch, a disagreeing broadcast root, a send nobody
receives, a subgroup in another order) is caught with the right group, position and ranks.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
import torch.distributed as dist
from _models import MLP, fully_shard_fn, init_device_mesh_fn, parallelize

import fakedist
from fakedist.ranks import RankMismatch, check_ranks

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*is deprecated:FutureWarning", "ignore:FSDP2-wrapped module .* returned a view"
)


def _first(report: Any) -> Any:
    assert not report.ok
    assert report.divergences, report.render()
    return report.divergences[0]


def _variants(divergence: Any) -> dict[tuple[int, ...], str | None]:
    return {ranks: (call.op if call is not None else None) for ranks, call in divergence.variants}


# ------------------------------------------------------------------ consistent programs
def _fsdp2_step(world: Any) -> None:
    fully_shard = fully_shard_fn()
    init_device_mesh = init_device_mesh_fn()
    mesh = init_device_mesh("cpu", (world.world_size,))
    torch.manual_seed(0)
    model = fully_shard(MLP(hidden=min(world.world_size, 64)), mesh=mesh)
    model(torch.randn(2, 10)).sum().backward()


def _fsdp2_tp_step(world: Any) -> None:
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

    fully_shard = fully_shard_fn()
    init_device_mesh = init_device_mesh_fn()
    tp = 2 if world.world_size <= 8 else 8
    mesh = init_device_mesh("cpu", (world.world_size // tp, tp), mesh_dim_names=("dp", "tp"))
    torch.manual_seed(0)
    plan = {"net1": ColwiseParallel(), "net2": RowwiseParallel()}
    # net1's dim 0 is split tp x dp ways: even, since torch before 2.8 refuses uneven FSDP2+TP
    model = parallelize(MLP(hidden=world.world_size), mesh["tp"], plan)
    fully_shard(model, mesh=mesh["dp"])
    model(torch.randn(2, 10)).sum().backward()


def _ddp_step(world: Any) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.manual_seed(0)
    ddp = DDP(torch.nn.Linear(4, 2))
    ddp(torch.rand(3, 4)).sum().backward()


@pytest.mark.parametrize("world_size", [8, 64])
@pytest.mark.parametrize(
    ("name", "body", "backend"),
    [
        ("fsdp2", _fsdp2_step, "fake"),
        ("fsdp2_tp", _fsdp2_tp_step, "fake"),
        ("ddp", _ddp_step, "pypg"),
    ],
)
def test_consistent_steps_pass_on_every_rank(
    name: str, body: Any, backend: str, world_size: int
) -> None:
    report = check_ranks(body, world_size, "all", backend=backend)
    assert report.ok, report.render()
    assert report.ranks == tuple(range(world_size))
    assert all(len(log) > 0 for log in report.logs.values())
    assert re.fullmatch(
        rf"{world_size} of {world_size} ranks agree \(\d+ collective calls compared\)",
        report.render(),
    )


@pytest.mark.parametrize(("name", "body"), [("fsdp2", _fsdp2_step), ("fsdp2_tp", _fsdp2_tp_step)])
def test_consistent_steps_pass_on_a_sample_of_65536(name: str, body: Any) -> None:
    report = check_ranks(body, 65536, "sample")
    assert report.ok, report.render()
    assert {0, 65535} <= set(report.ranks)
    assert len(report.ranks) < 64
    if name == "fsdp2_tp":  # the last rank of rank 0's tp group, and the first of the last's
        assert {7, 65528} <= set(report.ranks)


# --------------------------------------------------------------------- the classic hangs
def test_a_barrier_only_rank_0_reaches() -> None:
    def body(world: Any) -> None:
        t = torch.ones(4)
        dist.all_reduce(t)
        if dist.get_rank() == 0:
            dist.barrier()
        dist.all_reduce(t)

    d = _first(check_ranks(body, 8))
    assert d.group_ranks == tuple(range(8))
    assert d.position == 1
    assert _variants(d) == {(0,): "barrier", (1, 2, 3, 4, 5, 6, 7): "all_reduce"}
    assert d.what == "op"


def test_an_extra_all_gather_on_the_last_rank() -> None:
    def body(world: Any) -> None:
        t = torch.ones(2)
        dist.all_reduce(t)
        if dist.get_rank() == dist.get_world_size() - 1:
            out = torch.empty(2 * dist.get_world_size())
            dist.all_gather_into_tensor(out, t)

    report = check_ranks(body, 8)
    d = _first(report)
    assert (d.group_ranks, d.position) == (tuple(range(8)), 1)
    assert _variants(d) == {(0, 1, 2, 3, 4, 5, 6): None, (7,): "all_gather_into_tensor"}
    text = report.render()
    assert "ranks 0-6  (nothing: calls on this group end at #0)" in text
    assert re.search(
        r"rank 7 +all_gather_into_tensor \[2\] float32  at test_rank_agreement\.py:\d+", text
    )


def test_a_shape_mismatch_inside_one_tp_group() -> None:
    init_device_mesh = init_device_mesh_fn()

    def body(world: Any) -> None:
        mesh = init_device_mesh("cpu", (2, 4), mesh_dim_names=("dp", "tp"))
        n = 3 if dist.get_rank() == 5 else 4
        dist.all_reduce(torch.ones(n), group=mesh.get_group("tp"))

    report = check_ranks(body, 8)
    d = _first(report)
    assert d.group_ranks == (4, 5, 6, 7)
    assert (d.position, d.what) == (0, "shapes")
    assert [ranks for ranks, _ in d.variants] == [(4, 6, 7), (5,)]
    assert [c.shapes for _, c in d.variants] == [((4,),), ((3,),)]
    assert len(report.divergences) == 1  # the other tp group, [0-3], agrees


def test_a_dtype_mismatch() -> None:
    def body(world: Any) -> None:
        dtype = torch.float16 if dist.get_rank() == 2 else torch.float32
        dist.all_reduce(torch.ones(4, dtype=dtype))

    d = _first(check_ranks(body, 4))
    assert d.what == "dtypes"
    assert [(ranks, c.dtypes) for ranks, c in d.variants] == [
        ((0, 1, 3), ("torch.float32",)),
        ((2,), ("torch.float16",)),
    ]


def test_a_broadcast_whose_ranks_disagree_on_src() -> None:
    def body(world: Any) -> None:
        dist.broadcast(torch.ones(4), src=0 if dist.get_rank() < 4 else 1)

    report = check_ranks(body, 8)
    d = _first(report)
    assert d.what == "root (src)"
    assert [(ranks, c.root) for ranks, c in d.variants] == [((0, 1, 2, 3), 0), ((4, 5, 6, 7), 1)]
    assert "broadcast [4] float32 src=1" in report.render()


def test_a_send_without_a_matching_recv() -> None:
    def body(world: Any) -> None:
        if dist.get_rank() == 0:
            dist.send(torch.ones(3), dst=1)

    report = check_ranks(body, 2)
    d = _first(report)
    assert (d.kind, d.group_ranks, d.position, d.what) == ("p2p", (0, 1), 0, "missing")
    assert "rank 0's send #0 to rank 1 has no matching recv on rank 1" in report.render()


def test_matched_sends_and_recvs_pass() -> None:
    def body(world: Any) -> None:
        t = torch.ones(3)
        if dist.get_rank() == 0:
            dist.send(t, dst=1)
        else:
            dist.recv(t, src=0)

    assert check_ranks(body, 2).ok


def test_a_subgroup_in_another_order() -> None:
    def body(world: Any) -> None:
        sub = dist.new_group([2, 3])
        if dist.get_rank() not in (2, 3):
            return
        t = torch.ones(2)
        if dist.get_rank() == 2:
            dist.all_reduce(t, group=sub)
            dist.broadcast(t, src=2, group=sub)
        else:
            dist.broadcast(t, src=2, group=sub)
            dist.all_reduce(t, group=sub)

    report = check_ranks(body, 4)
    d = _first(report)
    assert (d.group_ranks, d.position, d.what) == ((2, 3), 0, "op")
    assert _variants(d) == {(2,): "all_reduce", (3,): "broadcast"}
    assert "group [2, 3]" in report.render()


def test_a_rank_that_raises_is_reported_as_its_failure() -> None:
    def body(world: Any) -> None:
        dist.all_reduce(torch.ones(1))
        if dist.get_rank() == 3:
            raise ValueError("bad shard")

    report = check_ranks(body, 4)
    assert not report.ok
    assert [(e.rank, e.error) for e in report.errors] == [(3, "ValueError: bad shard")]
    assert re.search(
        r"rank 3 raised ValueError: bad shard  at test_rank_agreement\.py:\d+", report.render()
    )
    assert report.divergences == []  # the others agree; the failed rank is left out
    with pytest.raises(RankMismatch, match="1 rank\\(s\\) raised"):
        report.check()


def test_ranks_that_raise_the_same_error_share_one_line() -> None:
    def body(world: Any) -> None:
        if dist.get_rank() != 2:
            raise NotImplementedError("uneven sharding")
        dist.barrier()

    lines = check_ranks(body, 6).render().splitlines()
    assert lines[0] == "6 of 6 ranks checked: 5 rank(s) raised"
    assert re.fullmatch(
        r"  ranks 0, 1, 3-5 raised NotImplementedError: uneven sharding"
        r"  at test_rank_agreement\.py:\d+",
        lines[1],
    )
    assert len(lines) == 2


def test_an_explicit_list_of_ranks() -> None:
    def body(world: Any) -> None:
        if dist.get_rank() == 5:
            dist.barrier()

    assert check_ranks(body, 8, [0, 1]).ok  # rank 5 not run: nothing to compare
    d = _first(check_ranks(body, 8, [0, 5]))
    assert _variants(d) == {(0,): None, (5,): "barrier"}


@pytest.mark.parametrize(
    ("ranks", "message"),
    [
        ("some", "ranks must be 'all', 'sample' or a non-empty list of ranks, got 'some'"),
        ([0, 8], "ranks: 8 is not a rank of a world of 8 (ranks are ints in [0, 8))"),
        ([1, 1], "ranks: [1, 1] repeats a rank"),
        ([], "ranks must be 'all', 'sample' or a non-empty list of ranks, got []"),
    ],
)
def test_bad_ranks_are_refused(ranks: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_ranks(lambda world: None, 8, ranks)
    assert str(info.value) == message


def test_fakedist_exports_check_ranks() -> None:
    assert fakedist.check_ranks is check_ranks


# ------------------------------------------------------------- torch's flight recorder
def _analyzer() -> Any:
    from fakedist import flight_recorder

    if not flight_recorder.available():
        pytest.skip(
            f"torch {torch.__version__} does not ship torch.distributed.flight_recorder "
            "(torch 2.10+)"
        )
    return flight_recorder


def test_the_analyzer_finds_no_mismatch_in_a_consistent_step(tmp_path: Any) -> None:
    analyzer = _analyzer()
    report = check_ranks(_fsdp2_tp_step, 8)
    assert report.ok, report.render()
    paths = report.export_flight_recorder(tmp_path)
    assert [p.name for p in paths] == [f"fakedist_fr_rank_{r}" for r in range(8)]
    analysis = analyzer.analyze(tmp_path)
    assert analysis.collectives > 0
    assert not analysis.mismatch, analysis.output


def test_the_analyzer_reports_the_mismatch_fakedist_reports(tmp_path: Any) -> None:
    analyzer = _analyzer()

    def body(world: Any) -> None:
        dist.all_reduce(torch.ones(4))
        if dist.get_rank() == 0:
            dist.barrier()

    report = check_ranks(body, 4)
    ours = _first(report)
    assert (ours.group_ranks, ours.position) == ((0, 1, 2, 3), 1)
    assert _variants(ours) == {(0,): "barrier", (1, 2, 3): None}
    report.export_flight_recorder(tmp_path)
    theirs = analyzer.analyze(tmp_path).first
    assert theirs is not None
    assert (theirs.op, theirs.seq - 1) == ("barrier", ours.position)  # its sequence is 1-based
    assert theirs.expected_ranks == ours.group_ranks
    assert theirs.issued_by == (0,)
    assert theirs.missing_ranks == (1, 2, 3)


def test_the_analyzer_blames_the_rank_with_the_other_shape(tmp_path: Any) -> None:
    analyzer = _analyzer()

    def body(world: Any) -> None:
        sub = dist.new_group([2, 3])
        if dist.get_rank() in (2, 3):
            dist.all_reduce(torch.ones(5 if dist.get_rank() == 3 else 4), group=sub)

    report = check_ranks(body, 4)
    ours = _first(report)
    assert (ours.group_ranks, ours.what) == ((2, 3), "shapes")
    report.export_flight_recorder(tmp_path)
    theirs = analyzer.analyze(tmp_path).first
    assert theirs is not None
    assert (theirs.kind, theirs.op, theirs.culprits) == (
        "SIZE_OR_SYNTAX_MISMATCH",
        "all_reduce",
        (3,),
    )
    assert theirs.expected_ranks == (2, 3)
