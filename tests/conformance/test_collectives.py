"""Every collective on torch's ``fake`` backend: shapes, returned work and the data written.

What a fake world does with data (this rank is the only one that exists):

* all_reduce / reduce: the tensor keeps its shape; SUM leaves it unchanged (torch 2.13-2.14) or
  multiplies it by the world size where torch simulates identical ranks; AVG/MAX/MIN unchanged.
* broadcast, send, recv, irecv: tensors are never changed (no peer data exists).
* copy semantics (per release in ``matrix/fake_semantics.toml``): all_gather /
  all_gather_into_tensor / gather (on dst) put this rank's input in every slot; scatter (on
  src) copies ``scatter_list[rank]``, elsewhere leaves the output alone; reduce_scatter copies
  ``input_list[rank]``, reduce_scatter_tensor ``input.chunk(world_size)[rank]`` (fakedist does
  this on releases whose fake backend leaves the output alone); all_to_all copies
  ``input_list[i]`` into ``output_list[i]``; all_to_all_single fills the output from the input
  (uneven splits: the table holds each release's exact output). Without copy semantics every
  output is left untouched. Gathered outputs never require grad (fakedist detaches the input).
* object collectives ride on those: all_gather_object / gather_object (on dst) return this
  rank's object in every slot; broadcast_object_list with src == rank leaves the list as is.
  broadcast_object_list with src != rank reads a size nobody sent (uninitialised memory, may
  try a huge allocation): never call it on a fake world.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from _semantics import (
    SENTINEL,
    FakeSemantics,
    assert_copied_or_untouched,
    on_ranks,
    sentinel,
    untouched,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")

WS = 4


@pytest.mark.parametrize("rank", on_ranks(WS, 0, 3))
def test_world_queries(fake_world, rank: int) -> None:
    assert (dist.get_rank(), dist.get_world_size()) == (rank, WS)
    assert dist.get_backend() == "fake"
    assert type(fake_world.pg).__name__ == "FakeProcessGroup"
    assert (fake_world.rank, fake_world.world_size) == (rank, WS)


@pytest.mark.parametrize("rank", on_ranks(WS, 0, 3))
def test_all_reduce_sum(fake_world, fake_semantics: FakeSemantics, rank: int) -> None:
    t = torch.arange(9.0).reshape(3, 3) + rank
    expected = t * fake_semantics.sum_factor(WS)
    assert dist.all_reduce(t) is None
    assert t.shape == (3, 3)
    assert torch.equal(t, expected)


@pytest.mark.parametrize("op", ["AVG", "MAX", "MIN"])
@pytest.mark.fake_world(world_size=WS, rank=2)
def test_all_reduce_value_preserving_ops(fake_world, op: str) -> None:
    t = torch.tensor([1.0, -2.0, 3.5])
    dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
    assert torch.equal(t, torch.tensor([1.0, -2.0, 3.5]))


@pytest.mark.parametrize("rank", on_ranks(WS, 0, 3))
def test_all_gather(fake_world, fake_semantics: FakeSemantics, rank: int) -> None:
    inp = torch.ones(3, 3) * 42
    out = [sentinel(3, 3) for _ in range(WS)]
    dist.all_gather(out, inp)
    assert [tuple(o.shape) for o in out] == [(3, 3)] * WS
    assert_copied_or_untouched(fake_semantics, "all_gather", out, [inp] * WS)


@pytest.mark.fake_world(world_size=2, rank=1)
def test_all_gather_input_requiring_grad(fake_world, fake_semantics: FakeSemantics) -> None:
    inp = torch.ones(3, 3).requires_grad_(True)
    out = [sentinel(3, 3) for _ in range(2)]
    dist.all_gather(out, inp)
    assert not any(o.requires_grad for o in out)
    assert_copied_or_untouched(fake_semantics, "all_gather", out, [inp.detach()] * 2)


@pytest.mark.parametrize("rank", on_ranks(WS, 0, 3))
def test_all_gather_into_tensor(fake_world, fake_semantics: FakeSemantics, rank: int) -> None:
    inp = torch.tensor([1.0, 2.0])
    out = sentinel(2 * WS)
    dist.all_gather_into_tensor(out, inp)
    assert out.shape == (2 * WS,)
    assert_copied_or_untouched(fake_semantics, "all_gather_into_tensor", [out], [inp.repeat(WS)])


@pytest.mark.parametrize("rank", on_ranks(WS, 0, 3))
def test_reduce_scatter(fake_world, fake_semantics: FakeSemantics, rank: int) -> None:
    inputs = [torch.ones(3, 3) * r for r in range(WS)]
    out = sentinel(3, 3)
    dist.reduce_scatter(out, inputs)
    assert out.shape == (3, 3)
    expected = inputs[rank] * fake_semantics.sum_factor(WS)
    assert_copied_or_untouched(fake_semantics, "reduce_scatter", [out], [expected])


@pytest.mark.parametrize("rank", on_ranks(WS, 0, 3))
def test_reduce_scatter_tensor(fake_world, fake_semantics: FakeSemantics, rank: int) -> None:
    inp = torch.arange(16.0).reshape(8, 2)
    out = sentinel(2, 2)
    dist.reduce_scatter_tensor(out, inp)
    expected = inp.chunk(WS)[rank] * fake_semantics.sum_factor(WS)
    assert_copied_or_untouched(fake_semantics, "reduce_scatter_tensor", [out], [expected])


@pytest.mark.parametrize("src", [0, 2], ids=["src_is_rank", "src_is_not_rank"])
@pytest.mark.fake_world(world_size=WS, rank=0)
def test_broadcast_leaves_tensor_unchanged(fake_world, src: int) -> None:
    t = torch.arange(6.0).reshape(2, 3)
    dist.broadcast(t, src=src)
    assert torch.equal(t, torch.arange(6.0).reshape(2, 3))


@pytest.mark.fake_world(world_size=WS, rank=1)
def test_scatter_src_is_rank(fake_world, fake_semantics: FakeSemantics) -> None:
    to_scatter = [torch.ones(3, 3) * r for r in range(WS)]
    out = sentinel(3, 3)
    dist.scatter(out, to_scatter, src=1)
    assert_copied_or_untouched(fake_semantics, "scatter", [out], [to_scatter[1]])


@pytest.mark.fake_world(world_size=WS, rank=1)
def test_scatter_src_is_not_rank_leaves_output(fake_world) -> None:
    out = torch.ones(3, 3) * 5
    dist.scatter(out, None, src=0)
    assert torch.equal(out, torch.ones(3, 3) * 5)


@pytest.mark.fake_world(world_size=WS, rank=2)
def test_gather_dst_is_rank(fake_world, fake_semantics: FakeSemantics) -> None:
    inp = torch.ones(3) * 42
    gather_list = [sentinel(3) for _ in range(WS)]
    dist.gather(inp, gather_list, dst=2)
    assert_copied_or_untouched(fake_semantics, "gather", gather_list, [inp] * WS)


@pytest.mark.fake_world(world_size=WS, rank=2)
def test_gather_dst_is_not_rank(fake_world) -> None:
    inp = torch.ones(3) * 42
    assert dist.gather(inp, None, dst=0) is None
    assert torch.equal(inp, torch.ones(3) * 42)


@pytest.mark.parametrize("dst", [3, 0], ids=["dst_is_rank", "dst_is_not_rank"])
@pytest.mark.fake_world(world_size=WS, rank=3)
def test_reduce(fake_world, fake_semantics: FakeSemantics, dst: int) -> None:
    t = torch.tensor([1.0, 2.0])
    dist.reduce(t, dst=dst)
    allowed = [torch.tensor([1.0, 2.0]) * fake_semantics.sum_factor(WS)]
    if dst != 3:  # a non-destination buffer holds no defined result on real backends either
        allowed.append(torch.tensor([1.0, 2.0]))
    assert any(torch.equal(t, a) for a in allowed), t


@pytest.mark.parametrize("rank", on_ranks(WS, 0, 3))
def test_all_to_all(fake_world, fake_semantics: FakeSemantics, rank: int) -> None:
    inputs = [torch.ones(3, 3) * i for i in range(WS)]
    out = [sentinel(3, 3) for _ in range(WS)]
    dist.all_to_all(out, inputs)
    assert [tuple(o.shape) for o in out] == [(3, 3)] * WS
    assert_copied_or_untouched(fake_semantics, "all_to_all", out, inputs)


@pytest.mark.fake_world(world_size=2, rank=1)
def test_all_to_all_single_even(fake_world, fake_semantics: FakeSemantics) -> None:
    inp = torch.arange(8.0).reshape(4, 2)
    out = sentinel(4, 2)
    dist.all_to_all_single(out, inp)
    assert_copied_or_untouched(fake_semantics, "all_to_all_single", [out], [inp])


@pytest.mark.fake_world(world_size=2, rank=0)
def test_all_to_all_single_uneven_splits(fake_world, fake_semantics: FakeSemantics) -> None:
    # Valid splits on every torch (they add up to the 4 rows), so this never hits validation.
    inp = torch.arange(4.0).reshape(4, 1)
    out = sentinel(4, 1)
    dist.all_to_all_single(out, inp, output_split_sizes=[1, 3], input_split_sizes=[1, 3])
    assert out.shape == (4, 1)
    # torch 2.13-2.14 fill each slot from the start of the input (slot 0 <- [0], slot 1 <-
    # [0, 1, 2]); other releases differ: the table holds each release's exact output
    assert out.flatten().tolist() == fake_semantics.fact("all_to_all_single.uneven_output")


@pytest.mark.parametrize(
    ("rows", "splits", "message"),
    [
        (3, [1, 1], "Split sizes doesn't match total dim 0 size"),
        (3, None, "does not divide equally across group size"),
    ],
    ids=["splits_do_not_add_up", "rows_not_divisible"],
)
@pytest.mark.fake_world(world_size=2, rank=0)
def test_all_to_all_single_invalid_splits_raise(
    fake_world, fake_semantics: FakeSemantics, rows: int, splits: list[int] | None, message: str
) -> None:
    out, inp = sentinel(rows, 1), torch.ones(rows, 1)
    if not fake_semantics.fact("all_to_all_single.split_check"):
        pytest.skip(
            "this torch's fake backend does not validate all_to_all_single split sizes "
            "(validation arrived in torch 2.13)"
        )
    with pytest.raises(RuntimeError) as info:
        dist.all_to_all_single(out, inp, output_split_sizes=splits, input_split_sizes=splits)
    assert message in str(info.value)
    assert untouched(out)


@pytest.mark.fake_world(world_size=2, rank=0)
def test_send_leaves_tensor(fake_world) -> None:
    t = torch.arange(9.0).reshape(3, 3)
    assert dist.send(t, dst=1) is None
    assert torch.equal(t, torch.arange(9.0).reshape(3, 3))


@pytest.mark.fake_world(world_size=2, rank=0)
def test_recv_leaves_output_untouched(fake_world) -> None:
    out = sentinel(3, 3)
    dist.recv(out, src=1)
    assert out.shape == (3, 3)
    assert bool((out == SENTINEL).all())


@pytest.mark.fake_world(world_size=WS, rank=1)
def test_isend_irecv_return_waitable_work(fake_world) -> None:
    payload, out = torch.ones(2), sentinel(2)
    works = [dist.isend(payload, dst=2), dist.irecv(out, src=0)]
    assert all(isinstance(w, dist.Work) for w in works)
    assert [w.wait() for w in works] == [True, True]
    assert torch.equal(payload, torch.ones(2))
    assert bool((out == SENTINEL).all())


@pytest.mark.fake_world(world_size=WS, rank=1)
def test_batch_isend_irecv(fake_world) -> None:
    out = sentinel(2)
    ops = [dist.P2POp(dist.isend, torch.ones(2), 2), dist.P2POp(dist.irecv, out, 0)]
    works = dist.batch_isend_irecv(ops)
    assert len(works) == 2
    assert all(w.wait() for w in works)
    assert bool((out == SENTINEL).all())


@pytest.mark.fake_world(world_size=WS, rank=3)
def test_barrier(fake_world, fake_semantics: FakeSemantics) -> None:
    assert dist.barrier() is None
    work = dist.barrier(async_op=True)
    assert fake_semantics.fact("barrier.async_returns") == "work"
    assert isinstance(work, dist.Work)
    assert work.wait() is True


@pytest.mark.parametrize(
    "op", ["all_reduce", "all_gather", "broadcast", "reduce_scatter_tensor", "barrier"]
)
@pytest.mark.fake_world(world_size=WS, rank=1)
def test_async_op_returns_work_that_waits(fake_world, fake_semantics, op: str) -> None:
    t, out = torch.ones(2), [sentinel(2) for _ in range(WS)]
    work = {
        "all_reduce": lambda: dist.all_reduce(t, async_op=True),
        "all_gather": lambda: dist.all_gather(out, t, async_op=True),
        "broadcast": lambda: dist.broadcast(t, src=0, async_op=True),
        "reduce_scatter_tensor": lambda: dist.reduce_scatter_tensor(
            out[0], torch.ones(2 * WS), async_op=True
        ),
        "barrier": lambda: dist.barrier(async_op=True),
    }[op]()
    assert isinstance(work, dist.Work)
    assert work.wait() is True
    fut = work.get_future()
    fut.wait()
    assert fut.done()
    factor = fake_semantics.sum_factor(WS) if op == "all_reduce" else 1
    assert torch.equal(t, torch.ones(2) * factor)
    if op == "all_gather":
        assert_copied_or_untouched(fake_semantics, "all_gather", out, [t] * WS)


SUB = [1, 3, 5, 7]


@pytest.mark.fake_world(world_size=8, rank=5)
def test_subgroup_rank_mapping(fake_world) -> None:
    g = dist.new_group(SUB)
    assert dist.get_world_size(g) == len(SUB)
    assert dist.get_rank(g) == SUB.index(5)
    assert dist.get_process_group_ranks(g) == SUB
    assert [dist.get_global_rank(g, i) for i in range(len(SUB))] == SUB
    assert dist.get_group_rank(g, 7) == 3
    assert dist.get_rank() == 5
    assert dist.get_world_size() == 8


@pytest.mark.fake_world(world_size=8, rank=5)
def test_subgroup_collectives(fake_world, fake_semantics: FakeSemantics) -> None:
    g = dist.new_group(SUB)
    t = torch.ones(2)
    dist.all_reduce(t, group=g)
    assert torch.equal(t, torch.ones(2) * fake_semantics.sum_factor(len(SUB)))
    out = [sentinel(2) for _ in SUB]
    dist.all_gather(out, torch.tensor([3.0, 4.0]), group=g)
    assert_copied_or_untouched(fake_semantics, "all_gather", out, [[3.0, 4.0]] * len(SUB))


@pytest.mark.filterwarnings("ignore:Running .* on global rank")
@pytest.mark.fake_world(world_size=8, rank=5)
def test_subgroup_without_this_rank(fake_world) -> None:
    g = dist.new_group([0, 2])
    assert g == dist.GroupMember.NON_GROUP_MEMBER
    assert dist.get_rank(g) == -1
    t = torch.full((2,), 7.0)
    assert dist.all_reduce(t, group=g) is None
    assert torch.equal(t, torch.full((2,), 7.0))


def _need_copy(sem: FakeSemantics, op: str) -> None:
    if not sem.copies(op) or sem.fact("all_gather_object.result") != "replicates":
        pytest.skip(
            f"object collectives need the fake backend's {op} copy semantics (torch 2.13+), "
            "absent on this torch: the result would be read from uninitialised memory"
        )


@pytest.mark.parametrize("rank", on_ranks(WS, 0, 2))
def test_all_gather_object_replicates_own_object(fake_world, fake_semantics, rank: int) -> None:
    _need_copy(fake_semantics, "all_gather")
    objs: list[object] = [None] * WS
    dist.all_gather_object(objs, {"rank": rank, "data": [1, 2, 3]})
    assert objs == [{"rank": rank, "data": [1, 2, 3]}] * WS


@pytest.mark.fake_world(world_size=WS, rank=1)
def test_gather_object_dst_is_rank(fake_world, fake_semantics: FakeSemantics) -> None:
    _need_copy(fake_semantics, "gather")
    objs: list[object] = [None] * WS
    dist.gather_object(("x", 1), objs, dst=1)
    assert objs == [("x", 1)] * WS


@pytest.mark.fake_world(world_size=WS, rank=1)
def test_gather_object_dst_is_not_rank(fake_world) -> None:
    assert dist.gather_object(("x", 1), None, dst=0) is None


@pytest.mark.fake_world(world_size=WS, rank=2)
def test_broadcast_object_list_src_is_rank(fake_world) -> None:
    objs = ["a", {"b": 2}, None]
    dist.broadcast_object_list(objs, src=2)
    assert objs == ["a", {"b": 2}, None]
