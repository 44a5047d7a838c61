"""``pypg``: a pure-Python ProcessGroup whose collectives return real Work objects.

Modelled on PyTorch's test_c10d_pypg. Every collective completes at once under *replicated
data* semantics: the group behaves as if every rank held exactly this rank's tensors, so
``all_reduce(SUM)`` multiplies by the world size, ``all_gather`` repeats the input, and
``DistributedDataParallel(model, process_group=pg)`` computes the same gradients as the plain
model. Work comes in two kinds: a ``dist._Work`` subclass (``work="subclass"``, default) that
records ``wait()`` and ``get_future()``, or work wrapped from a completed ``Future``
(``work="future"``). Every call the group receives is recorded in :attr:`PyProcessGroup.calls`.

Its collective methods are those :mod:`fakedist.ops` gives ``pypg`` (:func:`collective_methods`;
the unit tests hold the class to that list).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from fakedist import ops
from fakedist.backends._register import register_plugin

__all__ = [
    "NAME",
    "WORK_KINDS",
    "PgCall",
    "PgWork",
    "PyPgOptions",
    "PyProcessGroup",
    "collective_methods",
    "create_pypg",
    "register",
]

NAME = "pypg"
WORK_KINDS = ("subclass", "future")


def collective_methods() -> tuple[str, ...]:
    """The ProcessGroup methods PyProcessGroup implements, as the op table says."""
    return tuple(ops.pg_methods(NAME))


@dataclass
class PgCall:
    """One call received by the group."""

    op: str
    shapes: tuple[tuple[int, ...], ...] = ()
    peer: int | None = None  # root for rooted ops, dst/src for p2p
    waited: bool = False
    future_taken: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class PgWork(dist._Work):  # type: ignore[misc]
    """Completed work that records when it is waited on and when its future is taken."""

    def __init__(self, result: Any, pg: PyProcessGroup, call: PgCall) -> None:
        super().__init__()
        self._future: torch.futures.Future[Any] = torch.futures.Future()
        self._future.set_result(result)
        self._pg = weakref.ref(pg)
        self._call = call

    def wait(self, timeout: Any = None) -> bool:
        self._call.waited = True
        pg = self._pg()
        if pg is not None:
            pg.wait_count += 1
        return True

    def is_completed(self) -> bool:
        return True

    def is_success(self) -> bool:
        return True

    def get_future(self) -> torch.futures.Future[Any]:
        self._call.future_taken = True
        pg = self._pg()
        if pg is not None:
            pg.get_future_count += 1
        return self._future


def _future_work(result: Any) -> Any:
    """Work wrapped from a completed Future (C++ FutureWrappingWork)."""
    import torch._C._distributed_c10d as c10d_c

    # Not in torch's type stubs; without torch installed (the lint env) the ignore is unused.
    create = c10d_c._create_work_from_future  # type: ignore[attr-defined,unused-ignore]
    fut: torch.futures.Future[Any] = torch.futures.Future()
    fut.set_result(result)
    return create(fut)


def _shapes(*groups: Any) -> tuple[tuple[int, ...], ...]:
    out: list[tuple[int, ...]] = []
    for g in groups:
        if isinstance(g, torch.Tensor):
            out.append(tuple(g.shape))
        elif isinstance(g, (list, tuple)):
            out.extend(_shapes(*g))
    return tuple(out)


def _reduce_replicated(t: torch.Tensor, op: Any, n: int) -> None:
    """Reduce ``n`` identical copies of ``t`` in place."""
    op = getattr(op, "op", op)  # _reduce_op(opts) is a ReduceOp; `in (RedOpType, ...)` needs .op
    if op == dist.ReduceOp.SUM:
        t.mul_(n)
    elif op == dist.ReduceOp.PRODUCT:
        t.pow_(n)
    elif op == dist.ReduceOp.BXOR:
        if n % 2 == 0:
            t.zero_()
    elif op in (
        dist.ReduceOp.AVG,
        dist.ReduceOp.MIN,
        dist.ReduceOp.MAX,
        dist.ReduceOp.BAND,
        dist.ReduceOp.BOR,
    ):
        pass
    else:
        raise NotImplementedError(f"pypg: reduce op {op!r} is not supported")


def _reduce_op(opts: Any) -> Any:
    """The reduce op of ``opts``; SUM where torch passed none (torch < 2.5 omits opts)."""
    return dist.ReduceOp.SUM if opts is None else opts.reduceOp


def _root(opts: Any) -> int:
    """The root rank of ``opts``; 0 where torch passed none."""
    return 0 if opts is None else int(opts.rootRank)


class PyProcessGroup(dist.ProcessGroup):  # type: ignore[misc]
    """A ProcessGroup implemented in Python that records every call it receives."""

    def __init__(self, rank: int, world_size: int, work: str = "subclass") -> None:
        if work not in WORK_KINDS:
            raise ValueError(f"pypg: unknown work kind {work!r}; expected one of {WORK_KINDS}")
        super().__init__(rank, world_size)
        self._rank = rank
        self._world = world_size
        self.work_kind = work
        self.calls: list[PgCall] = []
        self.works: list[PgWork] = []
        self.wait_count = 0
        self.get_future_count = 0
        self._group_name = ""
        self._group_desc = ""

    # -- bookkeeping ---------------------------------------------------------------------
    def _done(self, op: str, result: Any, *tensors: Any, peer: int | None = None) -> Any:
        call = PgCall(op, _shapes(*tensors), peer)
        self.calls.append(call)
        if self.work_kind == "future":
            return _future_work(result)
        work = PgWork(result, self, call)
        # Keep the Python object alive: before torch 2.5 (seen on 2.4) C++ holds only the C++
        # half, and once Python drops its reference wait() falls back to Work::wait, which
        # blocks forever on work that never marks itself complete.
        self.works.append(work)
        return work

    def ops(self) -> list[str]:
        """Names of the collectives received, in order."""
        return [c.op for c in self.calls]

    # -- identity (overrides the C++ base through the Python trampoline) -------------------
    def getBackendName(self) -> str:
        return NAME

    def setGroupName(self, name: str) -> None:
        self._group_name = name

    def getGroupName(self) -> str:
        return self._group_name

    def setGroupDesc(self, desc: str) -> None:
        self._group_desc = desc

    def getGroupDesc(self) -> str:
        return self._group_desc

    def _get_backend(self, device: Any) -> PyProcessGroup:
        """The group is its own backend.

        torch 2.14's ``batch_isend_irecv`` asks the group for its backend, which a Python
        ProcessGroup without registered C++ backends cannot give.
        """
        return self

    def abort(self) -> None:
        """No-op: there is nothing to abort."""

    def shutdown(self) -> None:
        """No-op: there is nothing to shut down."""

    # -- collectives -----------------------------------------------------------------------
    def broadcast(self, tensors: list[torch.Tensor], opts: Any = None) -> Any:
        return self._done("broadcast", tensors, tensors, peer=_root(opts))

    def allreduce(self, tensors: list[torch.Tensor], opts: Any = None) -> Any:
        for t in tensors:
            _reduce_replicated(t, _reduce_op(opts), self._world)
        return self._done("allreduce", tensors, tensors)

    def allreduce_coalesced(self, tensors: list[torch.Tensor], opts: Any = None) -> Any:
        for t in tensors:
            _reduce_replicated(t, _reduce_op(opts), self._world)
        return self._done("allreduce_coalesced", tensors, tensors)

    def reduce(self, tensors: list[torch.Tensor], opts: Any = None) -> Any:
        if self._rank == _root(opts):
            for t in tensors:
                _reduce_replicated(t, _reduce_op(opts), self._world)
        return self._done("reduce", tensors, tensors, peer=_root(opts))

    def allgather(
        self, outputs: list[list[torch.Tensor]], inputs: list[torch.Tensor], opts: Any = None
    ) -> Any:
        for out_list, inp in zip(outputs, inputs):
            for o in out_list:
                o.copy_(inp)
        return self._done("allgather", outputs, inputs)

    def _gather_into(self, op: str, outputs: list[torch.Tensor], inputs: list[torch.Tensor]) -> Any:
        for o, i in zip(outputs, inputs):
            for chunk in o.chunk(self._world):
                chunk.copy_(i.view_as(chunk))
        return self._done(op, outputs, outputs, inputs)

    # torch < 2.13 calls _allgather_base; 2.13 renamed the Python hook all_gather_single.
    def _allgather_base(self, output: torch.Tensor, inp: torch.Tensor, opts: Any = None) -> Any:
        return self._gather_into("_allgather_base", [output], [inp])

    def all_gather_single(self, output: torch.Tensor, inp: torch.Tensor, opts: Any = None) -> Any:
        return self._gather_into("all_gather_single", [output], [inp])

    def allgather_into_tensor_coalesced(
        self, outputs: list[torch.Tensor], inputs: list[torch.Tensor], opts: Any = None
    ) -> Any:
        return self._gather_into("allgather_into_tensor_coalesced", outputs, inputs)

    def all_gather_single_coalesced(
        self, outputs: list[torch.Tensor], inputs: list[torch.Tensor], opts: Any = None
    ) -> Any:
        return self._gather_into("all_gather_single_coalesced", outputs, inputs)

    def gather(
        self, outputs: list[list[torch.Tensor]], inputs: list[torch.Tensor], opts: Any = None
    ) -> Any:
        if self._rank == _root(opts):
            for out_list, inp in zip(outputs, inputs):
                for o in out_list:
                    o.copy_(inp)
        return self._done("gather", outputs, outputs, inputs, peer=_root(opts))

    def scatter(
        self, outputs: list[torch.Tensor], inputs: list[list[torch.Tensor]], opts: Any = None
    ) -> Any:
        if self._rank == _root(opts):
            for o, in_list in zip(outputs, inputs):
                o.copy_(in_list[self._rank])
        return self._done("scatter", outputs, outputs, inputs, peer=_root(opts))

    def reduce_scatter(
        self, outputs: list[torch.Tensor], inputs: list[list[torch.Tensor]], opts: Any = None
    ) -> Any:
        for o, in_list in zip(outputs, inputs):
            o.copy_(in_list[self._rank])
            _reduce_replicated(o, _reduce_op(opts), self._world)
        return self._done("reduce_scatter", outputs, outputs, inputs)

    def _scatter_reduce(
        self, op: str, outputs: list[torch.Tensor], inputs: list[torch.Tensor], opts: Any = None
    ) -> Any:
        red = _reduce_op(opts)
        for o, i in zip(outputs, inputs):
            o.copy_(i.chunk(self._world)[self._rank].view_as(o))
            _reduce_replicated(o, red, self._world)
        return self._done(op, outputs, outputs, inputs)

    # torch < 2.13 calls _reduce_scatter_base; 2.13 renamed it reduce_scatter_single.
    def _reduce_scatter_base(
        self, output: torch.Tensor, inp: torch.Tensor, opts: Any = None
    ) -> Any:
        return self._scatter_reduce("_reduce_scatter_base", [output], [inp], opts)

    def reduce_scatter_single(
        self, output: torch.Tensor, inp: torch.Tensor, opts: Any = None
    ) -> Any:
        return self._scatter_reduce("reduce_scatter_single", [output], [inp], opts)

    def reduce_scatter_tensor_coalesced(
        self, outputs: list[torch.Tensor], inputs: list[torch.Tensor], opts: Any = None
    ) -> Any:
        return self._scatter_reduce("reduce_scatter_tensor_coalesced", outputs, inputs, opts)

    def reduce_scatter_single_coalesced(
        self, outputs: list[torch.Tensor], inputs: list[torch.Tensor], opts: Any = None
    ) -> Any:
        return self._scatter_reduce("reduce_scatter_single_coalesced", outputs, inputs, opts)

    def alltoall_base(
        self,
        output: torch.Tensor,
        inp: torch.Tensor,
        output_split_sizes: list[int],
        input_split_sizes: list[int],
        opts: Any = None,
    ) -> Any:
        n = self._world
        in_sizes = list(input_split_sizes) or [inp.shape[0] // n] * n
        out_sizes = list(output_split_sizes) or [output.shape[0] // n] * n
        mine = inp.split(in_sizes)[self._rank]  # what every (identical) rank sends to us
        for chunk in output.split(out_sizes):
            if chunk.shape != mine.shape:
                raise ValueError(
                    f"pypg: all_to_all_single output split {chunk.shape[0]} does not match the "
                    f"{mine.shape[0]} rows every rank sends to rank {self._rank}"
                )
            chunk.copy_(mine)
        return self._done("alltoall_base", output, output, inp)

    def alltoall(
        self, outputs: list[torch.Tensor], inputs: list[torch.Tensor], opts: Any = None
    ) -> Any:
        for o in outputs:
            o.copy_(inputs[self._rank])
        return self._done("alltoall", outputs, outputs, inputs)

    def send(self, tensors: list[torch.Tensor], dst: int, tag: int) -> Any:
        return self._done("send", None, tensors, peer=dst)

    def recv(self, tensors: list[torch.Tensor], src: int, tag: int) -> Any:
        return self._done("recv", tensors, tensors, peer=src)

    def barrier(self, opts: Any = None) -> Any:
        return self._done("barrier", None)


@dataclass(frozen=True)
class PyPgOptions:
    """Options for ``init_process_group("pypg", pg_options=...)``."""

    work: str = "subclass"

    def __post_init__(self) -> None:
        if self.work not in WORK_KINDS:
            raise ValueError(
                f"pypg: unknown option work={self.work!r}; expected one of {WORK_KINDS}"
            )


def create_pypg(common_opts: Any, backend_opts: Any = None) -> PyProcessGroup:
    """Extended-API backend creator: ``backend_opts`` is a PyPgOptions or None."""
    opts = backend_opts if isinstance(backend_opts, PyPgOptions) else PyPgOptions()
    return PyProcessGroup(common_opts.group_rank, common_opts.group_size, work=opts.work)


def register() -> None:
    """Register ``pypg`` unless it already is (idempotent)."""
    if NAME not in dist.Backend.backend_list:
        register_plugin(NAME, create_pypg, extended_api=True)
