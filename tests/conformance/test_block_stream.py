"""``Work.block_current_stream`` on a Python Work subclass (as in torch's test_c10d_pypg):
the current CUDA stream waits until the work's future completes. Accelerator only."""

from __future__ import annotations

import time

import pytest
import torch
import torch.distributed as dist

pytestmark = [
    pytest.mark.accelerator,
    pytest.mark.skipif(
        not hasattr(dist._Work, "block_current_stream"),
        reason="needs torch.distributed._Work.block_current_stream (torch 2.7+)",
    ),
]


class BlockWork(dist._Work):  # type: ignore[misc,name-defined]
    """Work that completes only when its future is given a result."""

    def __init__(self) -> None:
        super().__init__()
        self.future_: torch.futures.Future[None] = torch.futures.Future()

    def get_future(self) -> torch.futures.Future[None]:
        return self.future_


def _recorded_event() -> torch.cuda.Event:
    event = torch.cuda.Event()
    event.record()
    time.sleep(0.1)
    return event


def test_block_current_stream() -> None:
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        assert _recorded_event().query()  # nothing queued: resolves at once
        work = BlockWork()
        work.block_current_stream()
        event = _recorded_event()
        assert not event.query()  # the stream is blocked
        work.get_future().set_result(None)
        stream.synchronize()
        assert event.query()


def test_block_current_stream_outlives_released_work() -> None:
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        first, second = BlockWork(), BlockWork()
        first.block_current_stream()
        second.block_current_stream()
        second.get_future().set_result(None)
        del second  # its control tensor must outlive the kernel waiting on it
        event = _recorded_event()
        assert not event.query()  # still blocked by the first
        first.get_future().set_result(None)
        stream.synchronize()
        assert event.query()
