"""Models and FSDP/TP helpers shared by the conformance tests (no torch testing internals)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from torch import nn


class MLP(nn.Module):
    """Shaped like torch's ``MLPModule``: net1 Linear(10, hidden), relu, net2 Linear(hidden, 10)."""

    def __init__(self, hidden: int = 16, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.net1 = nn.Linear(10, hidden, device=device)
        self.relu = nn.ReLU()
        self.net2 = nn.Linear(hidden, 10, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net2(self.relu(self.net1(x)))


def chunk_len(n: int, parts: int, index: int) -> int:
    """Length of ``torch.chunk(range(n), parts)[index]`` (0 past the last chunk): ceil-div."""
    size = -(-n // parts)
    return max(0, min(size, n - index * size))


def fully_shard_fn() -> Any:
    """FSDP2's ``fully_shard`` (public from torch 2.6, ``_composable`` before), else skip."""
    try:
        from torch.distributed.fsdp import fully_shard  # torch >= 2.6
    except ImportError:
        try:
            from torch.distributed._composable.fsdp import fully_shard  # torch 2.4-2.5
        except ImportError:
            pytest.skip("needs FSDP2 fully_shard (torch.distributed.fsdp.fully_shard, torch 2.4+)")
    if not hasattr(torch.cpu.current_stream(), "record_event"):
        # FSDP2 records events on the current stream; torch.cpu.Stream has no record_event
        # before torch 2.7, so FSDP2 cannot run on CPU there.
        pytest.skip("FSDP2 on CPU needs torch.cpu.Stream.record_event (added in torch 2.7)")
    return fully_shard


def init_device_mesh_fn() -> Any:
    """``init_device_mesh`` (torch.distributed.device_mesh, public from torch 2.2), else skip."""
    try:
        from torch.distributed.device_mesh import init_device_mesh
    except ImportError:
        pytest.skip("needs torch.distributed.device_mesh (torch 2.2+)")
    return init_device_mesh


def local(p: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a (possibly DTensor) parameter."""
    to_local = getattr(p, "to_local", None)
    return to_local() if to_local is not None else p


def local_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Parameter name -> this rank's local shape."""
    return {n: tuple(local(p).shape) for n, p in model.named_parameters()}


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every local parameter shard."""
    return {n: local(p).detach().clone() for n, p in model.named_parameters()}


def train(model: nn.Module, steps: int, batch: int = 8, lr: float = 1e-2) -> list[float]:
    """``steps`` Adam steps on random data; return the losses."""
    optim = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        torch.manual_seed(step)
        loss = model(torch.randn(batch, 10)).sum()
        loss.backward()
        optim.step()
        optim.zero_grad()
        losses.append(float(loss.detach()))
    return losses


def parallelize(model: nn.Module, mesh: Any, plan: dict[str, Any]) -> nn.Module:
    """``parallelize_module`` where every rank takes its shard of its *own* full weights.

    By default TP scatters weights from the mesh's first rank; on a fake world nobody sends,
    so other ranks would keep uninitialised memory. ``src_data_rank=None`` (torch 2.7+) skips
    the scatter; on older torch the local shards are re-initialised instead.
    """
    from torch.distributed.tensor.parallel import parallelize_module

    if "src_data_rank" in inspect.signature(parallelize_module).parameters:
        return parallelize_module(model, mesh, plan, src_data_rank=None)
    out = parallelize_module(model, mesh, plan)
    with torch.no_grad():
        for p in out.parameters():
            local(p).uniform_(-0.1, 0.1)
    return out
