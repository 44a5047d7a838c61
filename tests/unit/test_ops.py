"""The op table (fakedist.ops) is the one list of collectives: every consumer reads it."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest

dist = pytest.importorskip("torch.distributed")
import torch  # noqa: E402

from fakedist import _hooks, _readers, comms, envvars, faults, isolation, ops  # noqa: E402
from fakedist.backends import BACKENDS, fake, pypg  # noqa: E402
from fakedist.comms import RawRecord, normalise_op  # noqa: E402
from fakedist.faults import parse_fault  # noqa: E402
from fakedist.fidelity import FidelityUnsupported, threaded  # noqa: E402
from fakedist.world import fake_world  # noqa: E402

NEW = ops.OpSpec(
    "fancy_reduce",
    pg_methods=("fancy_reduce_method",),
    functional_ops=("fancy_reduce_fn",),
    aliases=("fancyreduce_",),
    fidelities=("fake", "gloo"),
)
# PyProcessGroup's members that are not collectives (identity, bookkeeping, helpers).
PYPG_NOT_COLLECTIVES = {
    "_done",
    "_gather_into",
    "_get_backend",
    "_scatter_reduce",
    "abort",
    "getBackendName",
    "getGroupDesc",
    "getGroupName",
    "ops",
    "setGroupDesc",
    "setGroupName",
    "shutdown",
}


def _threaded_group() -> type:
    group: type = threaded._threaded_pg().ProcessLocalGroup
    return group


# ------------------------------------------------------------------------------- the table
def test_the_table_indexes_without_conflicts() -> None:
    index = ops._build(ops.OPS)
    assert list(index.by_name) == [spec.name for spec in ops.OPS]
    assert ops.names() == tuple(sorted(spec.name for spec in ops.OPS))
    for spec in ops.OPS:
        assert spec.pg_methods, f"{spec.name}: no ProcessGroup method"
        assert ops.by_name(spec.name) is spec
        assert set(spec.backends) <= set(BACKENDS)


def test_lookups() -> None:
    assert ops.canonical("allreduce_") == "all_reduce"
    assert ops.canonical("all_gather_single") == "all_gather_into_tensor"
    assert ops.pg_methods()["recv_anysource"].method_layout("recv_anysource") == "anysource"
    assert ops.functional_ops()["isend"].name == "send"
    with pytest.raises(KeyError):
        ops.canonical("all_reduse")
    with pytest.raises(KeyError):
        ops.by_name("allreduce")  # a method name, not a canonical one


def test_pypg_methods_leave_out_what_pypg_lacks() -> None:
    methods = ops.pg_methods("pypg")
    assert "recv" in methods
    assert "recv_anysource" not in methods
    assert "allgather_coalesced" not in methods  # all_gather_coalesced: fake backend only
    assert ops.pg_methods("mock_process_group") == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aliases": ("allreduce_",)}, "name 'allreduce_' belongs to both all_reduce and x"),
        ({"pg_methods": ("send",)}, "belongs to both send and x"),
        ({"layout": "sideways"}, "unknown layout 'sideways'"),
        ({"layout": "rooted"}, "a rooted or point-to-point layout needs a peer"),
        (
            {"functional_ops": ("x_fn",), "functional_layout": "p2p", "peer": "dst"},
            "functional_peer_arg is needed",
        ),
        ({"pypg_lacks": ("nope",)}, "'nope' is not one of its pg_methods"),
        ({"fidelities": ("local",)}, "unknown backend or fidelity"),
    ],
)
def test_a_bad_spec_is_refused(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, object], message: str
) -> None:
    spec = dataclasses.replace(ops.OpSpec("x", pg_methods=("x_method",)), **change)
    monkeypatch.setattr(ops, "OPS", (*ops.OPS, spec))
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ops.aliases()


def test_ops_and_envvars_are_torch_free_leaves() -> None:
    root = Path(ops.__file__).parent
    for name in ("ops.py", "envvars.py"):
        tree = ast.parse((root / name).read_text("utf-8"))
        imported = [
            alias.name if isinstance(node, ast.Import) else node.module or ""
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        ]
        assert not [m for m in imported if m.startswith(("fakedist", "torch"))], name


# ----------------------------------------------------------- every consumer says the same
def test_comms_names_are_the_table() -> None:
    assert ops.aliases() == comms.ALIASES
    assert ops.names() == comms.OPS
    for name, op in ops.aliases().items():
        assert normalise_op(name) == op
        assert normalise_op(f"torch.ops.c10d.{name}.default") == op
    for name, spec in ops.functional_ops().items():
        for ns in ops.FUNCTIONAL_NAMESPACES:
            assert normalise_op(f"{ns}.{name}") == spec.name


def test_hooks_patch_the_table() -> None:
    sites = _hooks.pg_sites()
    assert set(sites) == set(ops.pg_methods())
    for name, site in sites.items():
        spec = ops.pg_methods()[name]
        assert (site.op, site.functional) == (spec.name, False)
        assert site.read is _readers.reader(spec.method_layout(name), False)
    functional = _hooks.functional_sites()
    assert set(functional) == set(ops.functional_ops())
    for name, site in functional.items():
        spec = ops.functional_ops()[name]
        assert (site.op, site.functional) == (spec.name, True)
        assert site.read is _readers.reader(spec.functional_layout, True)


def test_fake_backend_adjusts_only_table_methods() -> None:
    assert fake.UNIFORM_METHODS.issubset(ops.pg_methods())
    assert fake.FUNCTIONAL_UNIFORM.issubset(ops.functional_ops())


def test_pypg_implements_what_the_table_gives_it() -> None:
    own = {
        name
        for name, value in vars(pypg.PyProcessGroup).items()
        if callable(value) and not name.startswith("__") and name not in PYPG_NOT_COLLECTIVES
    }
    assert own == set(pypg.collective_methods())


def test_threaded_refuses_only_table_methods_it_marks_unsupported() -> None:
    group = _threaded_group()
    missing = threaded._missing_methods(group)
    methods = ops.pg_methods()
    assert set(missing) <= set(methods)
    for spec in ops.OPS:
        if "threaded" in spec.fidelities:
            continue
        present = [m for m in spec.pg_methods if m in vars(dist.ProcessGroup)]
        assert present, spec.name
        assert set(present) <= set(missing), f"{spec.name}: the threaded group has it now"


def test_fault_specs_take_every_table_name() -> None:
    for name, op in ops.aliases().items():
        assert parse_fault({"op": name}).op == op
    with pytest.raises(ValueError, match="unknown collective op 'fancy'; known ops: all_gather"):
        parse_fault({"op": "fancy"})


def test_one_constant_each() -> None:
    assert faults.ENV_VAR == isolation.FAULTS_ENV == envvars.FAULTS == "FAKEDIST_FAULTS"
    assert faults.FAKE_MESSAGE is fake.ERROR_MESSAGE


# ------------------------------------------------------------ a new op reaches them all
@pytest.fixture
def new_op(monkeypatch: pytest.MonkeyPatch) -> ops.OpSpec:
    """NEW in the table, and a method of that name on ProcessGroup (it has none)."""
    monkeypatch.setattr(ops, "OPS", (*ops.OPS, NEW))

    def fancy_reduce_method(self: object, tensors: list[torch.Tensor], opts: object = None) -> None:
        return None

    monkeypatch.setattr(
        dist.ProcessGroup, "fancy_reduce_method", fancy_reduce_method, raising=False
    )
    return NEW


def test_a_new_op_reaches_the_names(new_op: ops.OpSpec) -> None:
    assert normalise_op("fancyreduce_") == "fancy_reduce"
    assert normalise_op("_c10d_functional.fancy_reduce_fn") == "fancy_reduce"
    with pytest.raises(ValueError, match=r"known ops: .*fancy_reduce"):
        normalise_op("fancier")
    assert parse_fault({"op": "fancy_reduce_method"}).op == "fancy_reduce"


def test_a_new_op_reaches_the_hooks(new_op: ops.OpSpec) -> None:
    assert _hooks.pg_sites()["fancy_reduce_method"].op == "fancy_reduce"
    assert _hooks.functional_sites()["fancy_reduce_fn"].op == "fancy_reduce"
    with fake_world(4, rank=1) as world:
        dist.group.WORLD.fancy_reduce_method([torch.ones(2)])
        record = world.comms[-1]
    assert (record.op, record.bytes, record.shapes) == ("fancy_reduce", 8, ((2,),))


def test_a_new_op_reaches_pypg_and_the_threaded_refusers(new_op: ops.OpSpec) -> None:
    assert "fancy_reduce_method" in pypg.collective_methods()
    assert "fancy_reduce_method" in threaded._missing_methods(_threaded_group())
    refuse = threaded._refuser("fancy_reduce_method")
    with pytest.raises(FidelityUnsupported, match="has no fancy_reduce"):
        refuse(None)


# ------------------------------------------------------------------------------- records
def test_records_are_typed_on_the_hot_path() -> None:
    with fake_world(2) as world:
        dist.broadcast(torch.ones(3), src=1)
        raw = world.comms._raw[-1]
        assert isinstance(raw, RawRecord)
        assert (raw.op, raw.src, raw.dst, raw.bytes, raw.step) == ("broadcast", 1, None, 0, 0)
        assert world.comms[-1].async_op is False


def test_hooks_leftover_says_what_is_still_installed() -> None:
    assert _hooks.leftover() is None
    log = comms.CommLog()
    recorder = _hooks.Recorder(log, faults.FaultSchedule(), record=True, native_faults=False)
    _hooks.install(recorder)
    try:
        left = _hooks.leftover()
        assert left is not None
        assert re.fullmatch(
            r"1 active recorder\(s\), methods still patched: \w+, \w+, \w+ and \d+ more", left
        )
    finally:
        _hooks.reset()
    assert _hooks.leftover() is None


def test_call_sites_are_recorded_only_when_asked() -> None:
    with fake_world(2) as world:
        dist.all_reduce(torch.ones(2))
        world.comms.call_sites = True
        line = sys._getframe().f_lineno + 1
        dist.all_reduce(torch.ones(2))
        first, second = world.comms
        calls = json.loads(world.comms.to_json())["calls"]
    assert first.where is None
    assert "where" not in calls[0]
    assert second.where == calls[1]["where"] == f"test_ops.py:{line}"
