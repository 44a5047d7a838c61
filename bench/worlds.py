"""The process groups the benchmarks compare, as context managers, and the shared workloads."""

from __future__ import annotations

import inspect
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

# A schedule that matches nothing these benchmarks call: the fault path runs on every call
# but never fires.
IDLE_FAULTS = [{"op": "barrier", "nth": 1_000_000}]


@contextmanager
def bare_world(world_size: int, rank: int, backend: str = "fake") -> Iterator[None]:
    """torch alone: init_process_group on the fake backend, destroyed afterwards."""
    import torch.distributed as dist

    import fakedist

    fakedist.register_backends()  # makes "fake" available on torch < 2.11; no hooks
    dist.init_process_group(backend, rank=rank, world_size=world_size, store=dist.HashStore())
    try:
        yield
    finally:
        dist.destroy_process_group()


@contextmanager
def fakedist_world(
    world_size: int, rank: int, backend: str = "fake", faults: list[dict[str, Any]] | None = None
) -> Iterator[None]:
    """fake_world with recording and a fault schedule, plus the plugin's leak check."""
    import torch.distributed as dist

    from fakedist import fake_world

    with fake_world(world_size, rank=rank, backend=backend, faults=faults or []):
        yield
    assert not dist.is_initialized()  # what plugin._fakedist_no_leaked_group does


def loopback_interface() -> str:
    """The loopback interface name for GLOO_SOCKET_IFNAME (``lo`` on Linux, ``lo0`` on macOS)."""
    names = {name for _, name in socket.if_nameindex()}
    return "lo" if "lo" in names or "lo0" not in names else "lo0"


@contextmanager
def gloo_world(world_size: int, rank: int, store_path: str) -> Iterator[None]:
    """A real gloo group on loopback only, rendezvous through a FileStore (no TCP port)."""
    os.environ["GLOO_SOCKET_IFNAME"] = loopback_interface()
    import torch.distributed as dist

    store = dist.FileStore(store_path, world_size)
    dist.init_process_group(
        "gloo", rank=rank, world_size=world_size, store=store, timeout=timedelta(seconds=60)
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


def fsdp_tp_train(world_size: int = 4, tp: int = 2, steps: int = 10) -> list[float]:
    """The conformance suite's FSDP2+TP test: (dp, tp) mesh, MLP(10, 16, 10), Adam steps."""
    import torch
    from torch import nn
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    mesh = init_device_mesh("cpu", (world_size // tp, tp), mesh_dim_names=("dp", "tp"))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 10))
    plan = {"0": ColwiseParallel(), "2": RowwiseParallel()}
    extra: dict[str, Any] = {}
    if "src_data_rank" in inspect.signature(parallelize_module).parameters:
        extra["src_data_rank"] = None  # every rank shards its own weights (no scatter)
    parallelize_module(model, mesh["tp"], plan, **extra)
    fully_shard(model, mesh=mesh["dp"])
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(steps):
        torch.manual_seed(step)
        loss = model(torch.randn(16, 10)).sum()
        loss.backward()
        optim.step()
        optim.zero_grad()
        losses.append(float(loss.detach()))
    return losses


def fsdp_tp_step(world_size: int) -> tuple[float, float]:
    """Mesh init and one FSDP2+TP SGD step on a (N/2, 2) mesh; (mesh ms, step ms)."""
    import time

    import torch
    from torch import nn
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    t0 = time.perf_counter()
    mesh = init_device_mesh("cpu", (world_size // 2, 2), mesh_dim_names=("dp", "tp"))
    t1 = time.perf_counter()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16))
    parallelize_module(model, mesh["tp"], {"0": ColwiseParallel(), "2": RowwiseParallel()})
    fully_shard(model, mesh=mesh["dp"])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 16)).sum().backward()
    opt.step()
    t2 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3
