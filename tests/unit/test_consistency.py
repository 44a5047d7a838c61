"""The comparison of ranks' logs, on hand-made records: what differs, where, and how it reads."""

from __future__ import annotations

from dataclasses import dataclass

from fakedist.consistency import compare, format_ranks


@dataclass(frozen=True)
class Rec:
    op: str
    group_ranks: tuple[int, ...] = (0, 1, 2, 3)
    shapes: tuple[tuple[int, ...], ...] = ((4,),)
    dtypes: tuple[str, ...] = ("torch.float32",)
    src: int | None = None
    dst: int | None = None
    reduce_op: str | None = None
    where: str | None = None
    index: int = 0
    group_name: str = "0"


def logs(**by_rank: list[Rec]) -> dict[int, list[Rec]]:
    return {int(k.removeprefix("r")): v for k, v in by_rank.items()}


def test_agreeing_ranks_give_nothing() -> None:
    same = [Rec("all_reduce", reduce_op="SUM"), Rec("broadcast", src=0)]
    assert compare(logs(r0=same, r1=same, r2=same, r3=same)) == []


def test_a_missing_call_names_the_ranks_on_each_side() -> None:
    base = [Rec("all_reduce", index=0)]
    extra = [*base, Rec("barrier", shapes=(), dtypes=(), index=1, where="train.py:9")]
    (d,) = compare(logs(r0=extra, r1=base, r2=base, r3=base))
    assert (d.group_ranks, d.position, d.what) == (
        (0, 1, 2, 3),
        1,
        "missing",
    )
    assert [ranks for ranks, _ in d.variants] == [(0,), (1, 2, 3)]
    assert d.render().splitlines() == [
        "ranks disagree in group [0-3] (name '0', 4 ranks) at call #1 of that group: "
        "not every rank makes this call",
        "  rank 0     barrier  at train.py:9",
        "  ranks 1-3  (nothing: calls on this group end at #0)",
        "  before it the ranks agreed on: all_reduce",
    ]


def test_reduce_ops_and_roots_must_agree() -> None:
    sums = [Rec("all_reduce", reduce_op="SUM")]
    maxes = [Rec("all_reduce", reduce_op="MAX")]
    (d,) = compare(logs(r0=sums, r1=maxes, r2=sums, r3=sums))
    assert d.what == "reduce op"
    assert [ranks for ranks, _ in d.variants] == [(0, 2, 3), (1,)]
    root0, root1 = [Rec("reduce", dst=0)], [Rec("reduce", dst=1)]
    (d,) = compare(logs(r0=root0, r1=root0, r2=root1, r3=root1))
    assert d.what == "root (dst)"


def test_scatter_shapes_may_differ_but_not_its_root() -> None:
    root = [Rec("scatter", shapes=((4,), (4,), (4,), (4,)), src=0)]
    leaf = [Rec("scatter", shapes=((4,),), src=0)]
    assert compare(logs(r0=root, r1=leaf, r2=leaf, r3=leaf)) == []


def test_only_the_members_that_ran_are_compared() -> None:
    sub = [Rec("all_reduce", group_ranks=(2, 3))]
    assert compare(logs(r0=[], r2=sub)) == []  # rank 3 not run
    (d,) = compare(logs(r2=sub, r3=[]))
    assert d.render().endswith("(nothing: no call on this group)")


def test_send_and_recv_are_matched_per_pair_in_order() -> None:
    send = Rec("send", shapes=((3,),), dst=1, group_ranks=(0, 1))
    recv = Rec("recv", shapes=((3,),), src=0, group_ranks=(0, 1))
    assert compare(logs(r0=[send], r1=[recv])) == []
    (d,) = compare(logs(r0=[send, send], r1=[recv]))
    assert (d.kind, d.position, d.what) == ("p2p", 1, "missing")
    assert d.render().startswith("rank 0's send #1 to rank 1 has no matching recv on rank 1")
    wide = Rec("recv", shapes=((5,),), src=0, group_ranks=(0, 1))
    (d,) = compare(logs(r0=[send], r1=[wide]))
    assert d.what == "shapes"


def test_the_earliest_divergence_comes_first() -> None:
    a = [Rec("all_reduce", index=0), Rec("all_reduce", group_ranks=(0, 1), index=1)]
    b = [Rec("all_reduce", index=0), Rec("barrier", group_ranks=(0, 1), index=1)]
    late = [Rec("all_reduce", index=0, dtypes=("torch.float16",))]
    found = compare({0: a, 1: b, 2: late, 3: late})
    assert [d.group_ranks for d in found] == [(0, 1, 2, 3), (0, 1)]


def test_format_ranks_shortens_runs() -> None:
    assert format_ranks([7, 0, 1, 2, 3, 5, 6]) == "0-3, 5-7"
    assert format_ranks([9, 5, 6]) == "5, 6, 9"
    assert format_ranks([4, 5, 6, 7], brackets=True) == "[4-7]"
    assert format_ranks([]) == ""
