"""PyTorch's ``fake`` backend (FakeProcessGroup), made to behave the same on every torch >= 2.1.

Everything this project knows about the fake backend's history lives here:

* torch 2.1-2.2: ``FakeProcessGroup`` is a Python class in
  ``torch.testing._internal.distributed.fake_pg``; importing that module registers ``"fake"``.
  That class *is* the ProcessGroup (no backend behind it), so its collectives never dispatch
  ``c10d.*`` ops, and the ones it does not define fail: ``gather``, ``reduce`` (and on 2.1
  ``allreduce_coalesced``), ``all_gather_coalesced`` raise "No backend type associated with
  device type cpu"; its ``barrier`` returns None, so ``dist.barrier()`` raises
  "'NoneType' object has no attribute 'wait'". fakedist registers a subclass instead
  (:func:`register`) whose ``barrier``, ``gather`` and ``reduce`` return a completed Work and
  write nothing, as the C++ class of 2.3-2.12 does.
* torch 2.3: ``FakeProcessGroup`` moved to C++ (``torch._C._distributed_c10d``); the testing
  module still registers the backend.
* torch 2.9: ``FakeProcessGroup.Options`` (passed as ``pg_options``), extended-API creator.
* torch 2.10: ``Options.error_on_collective`` fails every collective; the C++ class loses its
  public constructor (``_create_internal`` instead).
* torch 2.11: ``"fake"`` is built into ``torch.distributed`` (``Backend.FAKE``); its creator
  is still registered by the testing module, which ``init_process_group`` imports on demand.

Nothing here parses version strings: each branch tests for the feature itself.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from dataclasses import dataclass
from typing import Any

from fakedist import ops

__all__ = [
    "ERROR_MESSAGE",
    "NAME",
    "FakeFeatures",
    "completed_pg_class",
    "features",
    "make_pg_options",
    "register",
    "uniform_args",
    "uniform_functional",
]

NAME = "fake"
_TESTING_MODULE = "torch.testing._internal.distributed.fake_pg"


@dataclass(frozen=True)
class FakeFeatures:
    """What this torch's fake backend offers."""

    builtin: bool  # "fake" registered by torch.distributed itself (torch >= 2.11)
    cpp_class: bool  # FakeProcessGroup implemented in C++ (torch >= 2.3)
    options: bool  # FakeProcessGroup.Options exists (torch >= 2.9)
    error_on_collective: bool  # Options.error_on_collective exists (torch >= 2.10)
    direct_construction_forbidden: bool  # no public constructor (torch >= 2.10)
    option_names: tuple[str, ...]  # settable attributes of Options, empty before 2.9


def _backend_list() -> list[str]:
    import torch.distributed as dist

    return list(dist.Backend.backend_list)


def _fake_pg_class() -> Any:
    """Return FakeProcessGroup: the C++ class (torch >= 2.3) or the Python one (2.1-2.2)."""
    try:
        from torch._C._distributed_c10d import FakeProcessGroup  # torch >= 2.3

        return FakeProcessGroup
    except ImportError:
        module = importlib.import_module(_TESTING_MODULE)  # torch 2.1-2.2
        return module.FakeProcessGroup


@functools.lru_cache(maxsize=1)
def features() -> FakeFeatures:
    """Detect the fake backend's features on the installed torch (cached)."""
    import torch.distributed as dist

    # Backend.FAKE is a class attribute from 2.11; earlier only registration adds it, and
    # register() calls features() before registering (importing torch's fake_pg module first
    # would make an older torch look built-in).
    builtin = "FAKE" in vars(dist.Backend)
    cls = _fake_pg_class()
    try:
        from torch._C._distributed_c10d import FakeProcessGroup as _cpp  # noqa: F401

        cpp_class = True
    except ImportError:
        cpp_class = False
    options_cls = getattr(cls, "Options", None)
    names: tuple[str, ...] = ()
    if options_cls is not None:
        names = tuple(
            sorted(
                n
                for n in dir(options_cls)
                if not n.startswith("_") and not callable(getattr(options_cls, n, None))
            )
        )
    return FakeFeatures(
        builtin=builtin,
        cpp_class=cpp_class,
        options=options_cls is not None,
        error_on_collective="error_on_collective" in names,
        direct_construction_forbidden=cpp_class and hasattr(cls, "_create_internal"),
        option_names=names,
    )


def register() -> None:
    """Make ``init_process_group("fake")`` available; idempotent."""
    import torch.distributed as dist

    feats = features()
    plugins = getattr(dist.Backend, "_plugins", {})
    if NAME not in _backend_list() or NAME.upper() not in plugins:
        # Even where "fake" is listed as built in (2.11+), its creator is registered by the
        # testing module; init_process_group imports it only when no store is passed.
        importlib.import_module(_TESTING_MODULE)
    if not feats.cpp_class:  # torch 2.1-2.2: "fake" creates fakedist's completed class
        completed_pg_class()  # before the hooks look for ProcessGroup subclasses
        plugin = plugins[NAME.upper()]
        if plugin.creator_fn is not _create_completed_pg:
            plugins[NAME.upper()] = plugin._replace(creator_fn=_create_completed_pg)


@functools.lru_cache(maxsize=1)
def completed_pg_class() -> Any:
    """torch 2.1-2.2's Python FakeProcessGroup with the collectives it lacks (no-ops).

    ``barrier`` returns a completed Work instead of None; ``gather`` and ``reduce`` (which
    the class does not define, and which have no backend to fall back on) return one too and
    leave every tensor untouched, as torch's C++ FakeProcessGroup (2.3-2.12) does.
    """
    from fakedist.backends.pypg import _future_work  # a completed Work, as torch's returns

    base = _fake_pg_class()

    def barrier(self: Any, opts: Any = None) -> Any:
        return _future_work(None)

    def gather(self: Any, output_tensors: Any, input_tensors: Any, opts: Any = None) -> Any:
        return _future_work(output_tensors)

    def reduce(self: Any, tensors: Any, opts: Any = None) -> Any:
        return _future_work(tensors)

    methods = {"barrier": barrier, "gather": gather, "reduce": reduce}
    return type("FakeProcessGroup", (base,), {"__module__": __name__, **methods})


def _create_completed_pg(store: Any, rank: int, world_size: int, timeout: Any) -> Any:
    return completed_pg_class()(rank, world_size)


def make_pg_options(options: dict[str, Any]) -> Any | None:
    """Build FakeProcessGroup.Options from keyword options, or None when there are none.

    Raises ValueError naming an option this torch's fake backend does not have.
    """
    if not options:
        return None
    feats = features()
    for key in options:
        if key not in feats.option_names:
            none = "none (FakeProcessGroup.Options needs torch 2.9+)"
            have = ", ".join(feats.option_names) or none
            raise ValueError(
                f"fake backend: unknown option {key!r} on this torch; options it has: {have}"
            )
    opts = _fake_pg_class().Options()
    for key, value in options.items():
        setattr(opts, key, value)
    return opts


ERROR_MESSAGE = "FakeProcessGroup collective operation error"
"""The start of the message torch's fake backend raises with ``error_on_collective`` (and
fakedist's injected ``"fake"`` faults, :data:`fakedist.faults.FAKE_MESSAGE`)."""


# ------------------------------------------------------------------ uniform data semantics
# What fakedist makes the same on every torch (matrix/fake_semantics.toml records the result):
#
# * Gathered outputs never require grad. torch 2.1-2.12's fake all_gather copies the input into
#   the outputs with an autograd-recorded copy, so outputs of an input that requires grad
#   required grad too (no real backend does that). The input is passed on detached.
# * reduce_scatter writes this rank's chunk. Before torch 2.13 the fake reduce_scatter left its
#   output untouched, so FSDP2 gradients were uninitialised memory. The output is filled with
#   this rank's chunk of the input *before* torch's call: where torch writes (2.13+), its own
#   values win; where it does not, the output holds what 2.13 writes.


def _methods(*op_names: str) -> frozenset[str]:
    """The ProcessGroup methods of ops ``op_names`` (fakedist.ops)."""
    return frozenset(m for name in op_names for m in ops.by_name(name).pg_methods)


# The gathers take their input second: (outputs, inputs, opts).
_GATHERS = _methods(
    "all_gather",
    "all_gather_coalesced",
    "all_gather_into_tensor",
    "all_gather_into_tensor_coalesced",
)
_REDUCE_SCATTER_LIST = _methods("reduce_scatter")  # ([out], [[in_0, ..., in_n-1]], opts)
_REDUCE_SCATTER_TENSOR = _methods("reduce_scatter_tensor")  # (out, in, opts)
_REDUCE_SCATTER = (
    _REDUCE_SCATTER_LIST | _REDUCE_SCATTER_TENSOR | _methods("reduce_scatter_tensor_coalesced")
)
UNIFORM_METHODS = _GATHERS | _REDUCE_SCATTER
"""ProcessGroup methods whose arguments :func:`uniform_args` adjusts."""


def _detached(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return type(x)(_detached(y) for y in x)
    return x.detach() if getattr(x, "requires_grad", False) else x


def _copy_chunk(outs: Any, inputs: Any, group_rank: int) -> None:
    """Copy chunk ``group_rank`` of each flattened input into its output (no autograd)."""
    import torch

    with torch.no_grad():
        for out, inp in zip(outs, inputs):
            n = out.numel()
            out.copy_(inp.reshape(-1)[group_rank * n : (group_rank + 1) * n].view_as(out))


def _prefill_reduce_scatter(method: str, group_rank: int, args: tuple[Any, ...]) -> None:
    import torch

    with torch.no_grad():
        if method in _REDUCE_SCATTER_LIST:  # ([out], [[in_0, ..., in_n-1]], opts)
            outs, ins = args[0], args[1]
            if isinstance(outs, torch.Tensor):  # the (output, input_list, op) overload
                outs, ins = [outs], [ins]
            for out, inputs in zip(outs, ins):
                out.copy_(inputs[group_rank])
            return
    if method in _REDUCE_SCATTER_TENSOR:  # (out, in, opts)
        _copy_chunk([args[0]], [args[1]], group_rank)
    else:  # coalesced: ([outs], [ins], opts)
        _copy_chunk(args[0], args[1], group_rank)


def uniform_args(method: str, pg: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments to call FakeProcessGroup's ``method`` with, after the uniform step."""
    if method in _GATHERS and len(args) > 1:
        return (args[0], _detached(args[1]), *args[2:])
    if method in _REDUCE_SCATTER:
        # a malformed call: torch raises its own error for it
        with contextlib.suppress(IndexError, RuntimeError, TypeError, AttributeError):
            _prefill_reduce_scatter(method, pg.rank(), args)
    return args


# Functional reduce_scatter (_c10d_functional, what DTensor/TP and FSDP2's TP path call) makes
# its output itself, so it cannot be filled before torch's call: it is filled after, where this
# torch's fake backend leaves it unwritten (before 2.13). Whether it does is probed once per
# process, on the first call, with an input of a value uninitialised memory will not hold.
FUNCTIONAL_UNIFORM = frozenset(
    f
    for op in ("reduce_scatter_tensor", "reduce_scatter_tensor_coalesced")
    for f in ops.by_name(op).functional_ops
)
_PROBE_VALUE = 12345.0
_functional_writes: dict[str, bool] = {}


def _probe_functional(name: str, args: tuple[Any, ...], call: Any) -> bool | None:
    """Whether torch's fake backend writes ``name``'s output; None when the probe failed."""
    import torch

    coalesced = name.endswith("_coalesced")
    first = args[0]
    probe = (
        [torch.full_like(t, _PROBE_VALUE) for t in first]
        if coalesced
        else torch.full_like(first, _PROBE_VALUE)
    )
    try:
        out = call(probe, *args[1:])
    except RuntimeError:  # e.g. error_on_collective: try again on the next call
        return None
    outs = out if coalesced else [out]
    # torch warns at exit about collectives never waited. The op's own namespace knows them:
    # torch 2.2 has both, and the legacy c10d_functional ops register with the legacy wait.
    for ns in ("_c10d_functional", "c10d_functional"):
        wait = getattr(getattr(torch.ops, ns, None), "wait_tensor", None)
        if wait is None:
            continue
        try:
            outs = [wait(o) for o in outs]
        except RuntimeError:  # "No pending collective ...": not this namespace's output
            continue
        break
    return all(bool((o == _PROBE_VALUE).all()) for o in outs)


def uniform_functional(
    name: str, args: tuple[Any, ...], result: Any, call: Any, group_rank: int
) -> Any:
    """The result of functional op ``name`` on the fake backend, after the uniform step."""
    if name not in FUNCTIONAL_UNIFORM:
        return result
    writes = _functional_writes.get(name)
    if writes is None:
        writes = _probe_functional(name, args, call)
        if writes is None:
            return result
        _functional_writes[name] = writes
    if writes:
        return result
    if name.endswith("_coalesced"):
        _copy_chunk(result, args[0], group_rank)
    else:
        _copy_chunk([result], [args[0]], group_rank)
    return result
