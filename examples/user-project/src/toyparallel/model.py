"""A two-layer MLP, its tensor-parallel plan on the ``tp`` mesh dim and FSDP2 on ``dp``."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    RowwiseParallel,
    parallelize_module,
)


class MLP(nn.Module):
    """``up`` (dim -> hidden), ReLU, ``down`` (hidden -> dim)."""

    def __init__(self, dim: int = 8, hidden: int = 32) -> None:
        super().__init__()
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.up(x)))


def parallelize(model: MLP, mesh: DeviceMesh) -> MLP:
    """Megatron-style pairwise TP over ``mesh["tp"]``, then FSDP2 over ``mesh["dp"]``."""
    if mesh.mesh_dim_names != ("dp", "tp"):
        raise ValueError(f"expected a ('dp', 'tp') mesh, got {mesh.mesh_dim_names}")
    parallelize_module(model, mesh["tp"], {"up": ColwiseParallel(), "down": RowwiseParallel()})
    fully_shard(model, mesh=mesh["dp"])
    return model


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor) -> float:
    """One step of mean-squared reconstruction loss; returns the loss."""
    optimizer.zero_grad()
    loss = (model(batch) - batch).pow(2).mean()
    loss.backward()
    optimizer.step()
    return float(loss.detach())
