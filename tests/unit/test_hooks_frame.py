"""The hooks still find a collective's ``async_op`` in torch's frame on the installed torch.

fakedist._readers.caller_async_op reads it from the locals of the ``torch.distributed``
function that called the ProcessGroup method; every torch release in CI runs these tests,
so a release that moves the flag fails here, not in a user's CommLog.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

dist = pytest.importorskip("torch.distributed")
import torch  # noqa: E402

from fakedist import fake_world  # noqa: E402
from fakedist.fidelity import run_world  # noqa: E402

CALLS: dict[str, Callable[[bool], Any]] = {
    "all_reduce": lambda a: dist.all_reduce(torch.ones(4), async_op=a),
    "broadcast": lambda a: dist.broadcast(torch.ones(4), src=0, async_op=a),
    "all_gather_into_tensor": lambda a: dist.all_gather_into_tensor(
        torch.empty(8), torch.ones(4), async_op=a
    ),
    # torch 2.4's ReduceScatterOptions.asyncOp stays True for a synchronous call
    "reduce_scatter_tensor": lambda a: dist.reduce_scatter_tensor(
        torch.empty(2), torch.ones(4), async_op=a
    ),
    "barrier": lambda a: dist.barrier(async_op=a),
}
LOST = "the hooks no longer find async_op in torch's frame (fakedist._readers.caller_async_op)"

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.mark.parametrize("async_op", [True, False])
@pytest.mark.parametrize("op", list(CALLS))
def test_async_flag_is_read_from_the_caller(op: str, async_op: bool) -> None:
    with fake_world(2) as world:
        work = CALLS[op](async_op)
        if async_op:
            work.wait()
        raw = world.comms._raw[-1]
        assert raw.op == op
        assert raw.async_op is async_op, LOST  # the options object where the frame failed
        assert world.comms[-1].async_op is async_op


def _flags(world: Any) -> list[Any]:
    dist.all_reduce(torch.ones(2), async_op=True).wait()
    dist.all_reduce(torch.ones(2))
    return [raw.async_op for raw in world.comms._raw]


def test_async_flag_is_read_at_threaded_fidelity() -> None:
    """Rank threads reach the recorder through a ThreadRouter: one frame more."""
    assert run_world(_flags, 2, fidelity="threaded") == [[True, False], [True, False]]
