"""fakedist logs exported as flight-recorder dumps and judged by torch's own analyzer."""

from __future__ import annotations

import gc
import importlib
import logging
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fakedist import flight_recorder as fr

WORLD = (0, 1, 2, 3)
PAIR = (0, 1)


@dataclass(frozen=True)
class Rec:
    """What flight_recorder reads of a CommRecord."""

    op: str
    group_name: str
    group_ranks: tuple[int, ...]
    shapes: tuple[tuple[int, ...], ...] = ()
    dtypes: tuple[str, ...] = ()
    src: int | None = None
    dst: int | None = None
    async_op: bool | None = None
    reduce_op: str | None = None
    where: str | None = None


def all_reduce(
    shape: tuple[int, ...] = (4,), group: str = "0", ranks: tuple[int, ...] = WORLD
) -> Rec:
    return Rec(
        "all_reduce",
        group,
        ranks,
        (shape,),
        ("torch.float32",),
        reduce_op="SUM",
        where="train.py:10",
    )


def all_gather() -> Rec:
    return Rec(
        "all_gather_into_tensor", "0", WORLD, ((2, 3),), ("torch.bfloat16",), where="train.py:11"
    )


def broadcast() -> Rec:
    return Rec("broadcast", "1", PAIR, ((5,),), ("torch.float32",), src=0, where="train.py:12")


def barrier() -> Rec:
    return Rec("barrier", "0", WORLD, where="train.py:13")


def program(rank: int) -> list[Rec]:
    """All ranks: all_reduce, all_gather; ranks 0 and 1 also a broadcast in their group."""
    return [all_reduce(), all_gather(), *([broadcast()] if rank in PAIR else []), all_reduce()]


needs_analyzer = pytest.mark.skipif(
    not fr.available(),
    reason=f"torch {fr.torch_version()} does not ship torch.distributed.flight_recorder",
)


def run(tmp_path: Path, logs: dict[int, list[Rec]]) -> fr.Analysis:
    fr.export(logs, tmp_path, world_size=len(WORLD))
    return fr.analyze(tmp_path)


# ------------------------------------------------------------------------------ analyzer
@needs_analyzer
def test_a_consistent_program_passes(tmp_path: Path) -> None:
    analysis = run(tmp_path, {r: program(r) for r in WORLD})
    assert not analysis.mismatch
    assert analysis.first is None
    assert analysis.collectives == 4  # 3 world collectives and the pair's broadcast
    assert analysis.output == ""


@needs_analyzer
def test_a_barrier_only_rank_0_issues_last_is_missing_on_the_others(tmp_path: Path) -> None:
    logs = {r: program(r) + ([barrier()] if r == 0 else []) for r in WORLD}
    finding = run(tmp_path, logs).first
    assert finding is not None
    assert (finding.kind, finding.op, finding.collective) == (
        "missing_ranks",
        "barrier",
        "nccl:all_reduce_barrier",
    )
    assert (finding.group, finding.group_desc, finding.seq) == ("0", "0:default_pg", 4)
    assert finding.issued_by == (0,)
    assert finding.missing_ranks == finding.ranks == (1, 2, 3)
    assert finding.frames == ("train.py:13",)


@needs_analyzer
def test_the_analyzer_report_names_barrier_group_and_missing_ranks(tmp_path: Path) -> None:
    logs = {r: program(r) + ([barrier()] if r == 0 else []) for r in WORLD}
    lines = run(tmp_path, logs).output.splitlines()
    for line in (
        "Not all ranks joining collective, sequence number: 4",
        "group info: 0:default_pg",
        "collective: nccl:all_reduce_barrier",
        "missing ranks: {1, 2, 3}",
        " barrier at train.py:13",
    ):
        assert line in lines


@needs_analyzer
def test_a_barrier_mid_program_blames_the_ranks_that_went_on(tmp_path: Path) -> None:
    # The extra barrier meets the others' next all_reduce at the same sequence number; the
    # analyzer takes rank 0's entry as the reference, so ranks 1-3 are the culprits.
    logs = {r: [all_reduce(), *([barrier()] if r == 0 else []), all_reduce()] for r in WORLD}
    analysis = run(tmp_path, logs)
    first = analysis.first
    assert first is not None
    assert (first.kind, first.op, first.group, first.seq) == (
        "COLLECTIVE_TYPE_MISMATCH",
        "barrier",
        "0",
        2,
    )
    assert first.culprits == (1, 2, 3)
    assert first.errors[0].endswith(
        "Expected collective type: 'all_reduce_barrier' does not match found collective "
        "type: 'all_reduce'"
    )


@needs_analyzer
def test_an_all_reduce_shape_mismatch_in_a_group_blames_the_odd_rank(tmp_path: Path) -> None:
    def prog(rank: int) -> list[Rec]:
        pair = [all_reduce((5,) if rank == 1 else (4,), "1", PAIR)] if rank in PAIR else []
        return [all_reduce(), *pair, all_gather()]

    analysis = run(tmp_path, {r: prog(r) for r in WORLD})
    assert len(analysis.findings) == 1
    finding = analysis.findings[0]
    assert (finding.kind, finding.op, finding.group, finding.group_desc) == (
        "SIZE_OR_SYNTAX_MISMATCH",
        "all_reduce",
        "1",
        "1",  # a group without group_desc: the analyzer shows its name only
    )
    assert finding.culprits == finding.ranks == (1,)
    assert finding.expected_ranks == PAIR
    assert finding.errors == (
        "Error type: SIZE_OR_SYNTAX_MISMATCH, Expected input sizes: '[[4]]' does not match "
        "found input sizes: '[[5]]'",
    )
    assert "error msg: Culprit rank 1; Error type: SIZE_OR_SYNTAX_MISMATCH" in analysis.output


@needs_analyzer
def test_a_dtype_mismatch_is_reported(tmp_path: Path) -> None:
    def prog(rank: int) -> list[Rec]:
        dtype = "torch.float16" if rank == 3 else "torch.float32"
        return [Rec("all_reduce", "0", WORLD, ((4,),), (dtype,))]

    finding = run(tmp_path, {r: prog(r) for r in WORLD}).first
    assert finding is not None
    assert (finding.kind, finding.culprits) == ("COLLECTIVE_DTYPE_MISMATCH", (3,))


@needs_analyzer
def test_a_rank_that_issued_nothing_is_missing(tmp_path: Path) -> None:
    finding = run(tmp_path, {0: [all_reduce()], 1: [all_reduce()], 2: [all_reduce()]}).first
    assert finding is not None
    assert (finding.kind, finding.op) == ("missing_ranks", "all_reduce")
    assert finding.missing_ranks == (3,)


@needs_analyzer
def test_a_reduce_op_disagreement_is_invisible_to_it(tmp_path: Path) -> None:
    def prog(rank: int) -> list[Rec]:
        op = "MAX" if rank else "SUM"
        return [Rec("all_reduce", "0", WORLD, ((4,),), ("torch.float32",), reduce_op=op)]

    logs = {r: prog(r) for r in WORLD}
    assert not run(tmp_path, logs).mismatch


@needs_analyzer
def test_send_recv_match_in_a_two_rank_group(tmp_path: Path) -> None:
    send = Rec("send", "2", PAIR, ((3,),), ("torch.float32",), dst=1)
    recv = Rec("recv", "2", PAIR, ((3,),), ("torch.float32",), src=0)
    logs = {0: [all_reduce(), send], 1: [all_reduce(), recv], 2: [all_reduce()], 3: [all_reduce()]}
    assert not run(tmp_path, logs).mismatch


@needs_analyzer
def test_send_recv_in_a_larger_group_count_the_bystanders_as_missing(tmp_path: Path) -> None:
    # The analyzer matches a point-to-point op against every member of its group.
    send = Rec("send", "0", WORLD, ((3,),), ("torch.float32",), dst=1)
    recv = Rec("recv", "0", WORLD, ((3,),), ("torch.float32",), src=0)
    finding = run(tmp_path, {0: [send], 1: [recv], 2: [], 3: []}).first
    assert finding is not None
    assert (finding.collective, finding.missing_ranks) == ("nccl:send 0->1", (2, 3))


@needs_analyzer
def test_collectives_then_p2p_in_one_group_make_the_analyzer_fail(tmp_path: Path) -> None:
    # all_reduce (collective_seq_id 1) then send (p2p_seq_id 1): the analyzer takes the two
    # for one coalesced group and trips on its own assertion.
    send = Rec("send", "0", WORLD, ((3,),), ("torch.float32",), dst=1)
    recv = Rec("recv", "0", WORLD, ((3,),), ("torch.float32",), src=0)
    logs = {0: [all_reduce(), send], 1: [all_reduce(), recv], 2: [all_reduce()], 3: [all_reduce()]}
    with pytest.raises(
        RuntimeError, match=r"the analyzer rejected .*: can't get dst of non-p2p op$"
    ):
        run(tmp_path, logs)


@needs_analyzer
def test_analyze_leaves_gc_and_the_analyzer_logger_as_found(tmp_path: Path) -> None:
    # The analyzer's first use gives its logger a stderr handler, as torch does on its own
    # (whichever test of this worker comes first); the state to keep is the one after that.
    importlib.import_module(f"{fr.MODULE}.components.fr_logger").FlightRecorderLogger()
    logger = logging.getLogger(fr.LOGGER)
    before = (list(logger.handlers), logger.level, logger.propagate)
    run(tmp_path, {r: program(r) + ([barrier()] if r == 0 else []) for r in WORLD})
    assert gc.isenabled()
    assert (list(logger.handlers), logger.level, logger.propagate) == before


@needs_analyzer
def test_the_analyzer_command_line_reads_the_dumps(tmp_path: Path) -> None:
    logs = {r: program(r) + ([barrier()] if r == 0 else []) for r in WORLD}
    fr.export(logs, tmp_path, world_size=4)
    module = f"{fr.MODULE}.fr_trace"
    cmd = [sys.executable, "-m", module, str(tmp_path), "-p", fr.DEFAULT_PREFIX]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "missing ranks: {1, 2, 3}" in done.stderr.splitlines()


def test_analyze_without_the_analyzer_names_the_torch_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fr, "available", lambda: False)
    with pytest.raises(RuntimeError) as info:
        fr.analyze(tmp_path)
    assert str(info.value) == (
        f"flight recorder: torch {fr.torch_version()} does not ship "
        "torch.distributed.flight_recorder (torch >= 2.10 does)"
    )


def test_the_module_imports_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from fakedist import flight_recorder as fr\n"
        "assert not fr.available() and fr.torch_version() is None\n"
        "try:\n    fr.analyze('.')\nexcept RuntimeError as e:\n    print(e)\n"
    )
    harness = str(Path(fr.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([harness, os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-c", code]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "flight recorder: torch is not installed\n"


# ---------------------------------------------------------------------------------- dumps
def test_a_dump_round_trips_through_pickle(tmp_path: Path) -> None:
    logs = {r: program(r) for r in WORLD}
    paths = fr.export(logs, tmp_path, world_size=4)
    assert [p.name for p in paths] == [f"fakedist_fr_rank_{r}" for r in WORLD]
    dump = pickle.loads(paths[1].read_bytes())
    assert dump["version"] == fr.FORMAT_VERSION == "2.10"
    assert dump["rank"] == 1
    assert dump["pg_config"] == {
        "0": {"name": "0", "desc": "default_pg", "ranks": "[0, 1, 2, 3]"},
        "1": {"name": "1", "desc": "undefined", "ranks": "[0, 1]"},
    }
    assert dump["pg_status"]["0"]["last_completed_collective"] == 3
    assert dump["pg_status"]["1"]["last_enqueued_collective"] == 1
    gather, bcast = dump["entries"][1], dump["entries"][2]
    assert gather == {
        "record_id": 1,
        "pg_id": 0,
        "process_group": ("0", "default_pg"),
        "thread_id": "0",
        "thread_name": "fakedist",
        "collective_seq_id": 2,
        "p2p_seq_id": 0,
        "op_id": 2,
        "profiling_name": "nccl:_all_gather_base",
        "time_created_ns": 2000,
        "input_sizes": [[2, 3]],
        "input_dtypes": ["BFloat16"],
        "output_sizes": [[8, 3]],
        "output_dtypes": ["BFloat16"],
        "state": "completed",
        "time_discovered_started_ns": None,
        "time_discovered_completed_ns": 2000,
        "retired": True,
        "timeout_ms": 600000,
        "is_p2p": False,
        "frames": [{"name": "all_gather_into_tensor", "filename": "train.py", "line": 11}],
    }
    assert (bcast["pg_id"], bcast["process_group"], bcast["collective_seq_id"]) == (
        1,
        ("1", "undefined"),
        1,
    )
    rank_2 = pickle.loads(paths[2].read_bytes())
    assert set(rank_2["pg_config"]) == {"0"}  # a rank lists only the groups it belongs to
    assert len(rank_2["entries"]) == 3


def test_p2p_and_barrier_entries(tmp_path: Path) -> None:
    sub = (1, 3)
    logs = {
        3: [Rec("recv", "5", sub, ((3,),), ("torch.int64",), src=1), barrier()],
    }
    dump = pickle.loads(fr.export(logs, tmp_path, world_size=4)[3].read_bytes())
    recv, bar = dump["entries"]
    assert (recv["profiling_name"], recv["is_p2p"], recv["p2p_seq_id"]) == (
        "nccl:recv 1<-0",  # group ranks
        True,
        1,
    )
    assert (recv["collective_seq_id"], recv["output_dtypes"]) == (0, ["Long"])
    assert (bar["profiling_name"], bar["input_sizes"], bar["input_dtypes"]) == (
        "nccl:all_reduce_barrier",
        [[1]],
        ["Float"],
    )
    assert bar["frames"] == [{"name": "barrier", "filename": "train.py", "line": 13}]


@pytest.mark.parametrize(
    ("op", "shapes", "rank", "inputs", "outputs"),
    [
        ("all_gather", ((2,),), 0, [[2]], [[4, 2]]),
        ("reduce_scatter", ((2,),) * 4, 0, [[4, 2]], [[2]]),
        ("reduce_scatter_tensor", ((8, 3),), 0, [[8, 3]], [[2, 3]]),
        ("gather", ((2,),), 1, [[2]], [[2]] * 4),  # rank 1 is the root
        ("gather", ((2,),), 0, [[2]], []),
        ("scatter", ((2,),) * 4, 1, [[2]] * 4, [[2]]),
        ("scatter", ((2,),), 0, [], [[2]]),
        ("all_to_all_single", ((8,),), 0, [[8]], [[8]]),
    ],
)
def test_output_sizes_follow_from_the_recorded_tensors(
    tmp_path: Path,
    op: str,
    shapes: tuple[tuple[int, ...], ...],
    rank: int,
    inputs: list[list[int]],
    outputs: list[list[int]],
) -> None:
    record = Rec(op, "0", WORLD, shapes, ("torch.float32",) * len(shapes), src=1, dst=1)
    (entry,) = fr.dump(rank, [record], {"0": WORLD})["entries"]
    assert (entry["input_sizes"], entry["output_sizes"]) == (inputs, outputs)


@pytest.mark.parametrize(
    ("logs", "message"),
    [
        (
            {0: [Rec("all_gather_coalesced", "0", WORLD)]},
            "flight recorder: no analyzer name for op 'all_gather_coalesced'",
        ),
        (
            {0: [Rec("all_reduce", "0", WORLD, where="train.py")]},
            "flight recorder: call site must read 'file.py:12', got 'train.py'",
        ),
        ({7: []}, "flight recorder: rank 7 is outside a world of 4"),
        (
            {0: [Rec("all_reduce", "1", PAIR)], 1: [Rec("all_reduce", "1", (1, 2))]},
            "flight recorder: group '1' has ranks (0, 1) and (1, 2)",
        ),
        (
            {0: [Rec("send", "0", WORLD, dst=None)]},
            "flight recorder: send needs a peer in its group, got None",
        ),
        ({2: [Rec("all_reduce", "1", PAIR)]}, "flight recorder: rank 2 is not in group '1'"),
    ],
)
def test_bad_logs_are_refused_in_one_line(
    tmp_path: Path, logs: dict[int, list[Rec]], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        fr.export(logs, tmp_path, world_size=4)
    assert str(info.value) == message
