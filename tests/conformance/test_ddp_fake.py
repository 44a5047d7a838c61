"""DistributedDataParallel on the ``fake`` backend: it trains, and its gradients are exactly
DDP's own all-reduce applied under the fake backend's data semantics -- the local gradient
divided by the world size, times what SUM does to data on this torch (1 where reductions
leave tensors unchanged). Each bucket's all-reduce is recorded in the CommLog; torch's Python
comm hooks work too; its built-in C++ hooks are refused in one line."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")


def _model() -> nn.Module:
    torch.manual_seed(123)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))


def _plain_grads(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    model(x).sum().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("world_size", [2, 64])
def test_ddp_gradients_are_the_fake_all_reduce_of_the_local_ones(
    world_size: int, fake_semantics: Any
) -> None:
    import fakedist

    with fakedist.fake_world(world_size, rank=1) as world:
        model = _model()
        ddp = DDP(model)
        x = torch.rand(5, 4)
        ddp(x).sum().backward()
        got = {n: p.grad.clone() for n, p in model.named_parameters()}
        local = _plain_grads(model, x)
        factor = fake_semantics.sum_factor(world_size)
        for name, grad in got.items():
            assert torch.equal(grad, local[name] * factor / world_size), name
        n_params = sum(p.numel() for p in model.parameters())  # 23: one bucket
        # (DDP's construction-time collectives are recorded only where the fake backend is a
        # Python class, torch 2.1-2.2)
        reduced = [r for r in world.comms if r.op == "all_reduce"]
        assert [(r.group_size, r.shapes, r.bytes, r.async_op) for r in reduced] == [
            (world_size, (torch.Size([n_params]),), n_params * 4, True)
        ]


@pytest.mark.fake_world(world_size=4, rank=3)
def test_ddp_trains_two_steps(fake_world, fake_semantics: Any) -> None:
    model = _model()
    reference = _model()  # the same start; one SGD step on the gradient DDP computes
    ddp = DDP(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.5)
    scale = fake_semantics.sum_factor(4) / 4
    for step in range(2):
        x = torch.rand(3, 4)
        opt.zero_grad()
        ddp(x).sum().backward()
        opt.step()
        local = _plain_grads(reference, x)
        for p, name in zip(reference.parameters(), local):
            p.grad = local[name] * scale
        ref_opt.step()
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            assert torch.equal(p, q), f"step {step}: {name}"
    assert fake_world.comms.count("all_reduce") == 2


@pytest.mark.fake_world(world_size=4, rank=0)
def test_ddp_keeps_a_users_comm_hook(fake_world) -> None:
    def doubling_hook(state: Any, bucket: Any) -> Any:
        fut: torch.futures.Future[torch.Tensor] = torch.futures.Future()
        fut.set_result(bucket.buffer() * 2)
        return fut

    doubling_hook.__annotations__ = {}  # DDP compares annotations to objects, not strings
    model = _model()
    ddp = DDP(model)
    ddp.register_comm_hook(None, doubling_hook)
    x = torch.rand(5, 4)
    ddp(x).sum().backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    local = _plain_grads(model, x)
    for name, grad in got.items():
        assert torch.equal(grad, local[name] * 2), name
    assert fake_world.comms.count("all_reduce") == 0  # the user's hook made no collective


def _hooks() -> Any:
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    return default_hooks


@pytest.mark.parametrize("hook", ["allreduce_hook", "fp16_compress_hook"])
@pytest.mark.fake_world(world_size=8, rank=5)
def test_torchs_python_comm_hooks(fake_world, fake_semantics: Any, hook: str) -> None:
    model = _model()
    ddp = DDP(model)
    ddp.register_comm_hook(None, getattr(_hooks(), hook))
    x = torch.rand(5, 4)
    ddp(x).sum().backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    local = _plain_grads(model, x)
    scale = fake_semantics.sum_factor(8) / 8
    dtype = torch.float32 if hook == "allreduce_hook" else torch.float16
    for name, grad in got.items():
        expected = (local[name] * scale).to(dtype).float()
        torch.testing.assert_close(grad, expected, rtol=1e-3, atol=1e-6, msg=name)
    reduced = [r for r in fake_world.comms if r.op == "all_reduce"]
    assert [(r.dtypes, r.async_op) for r in reduced] == [((str(dtype),), True)]


@pytest.mark.fake_world(world_size=2, rank=0)
def test_builtin_comm_hook_refused_in_one_line(fake_world) -> None:
    ddp = DDP(_model())
    with pytest.raises(RuntimeError) as raised:
        ddp._register_builtin_comm_hook(dist.BuiltinCommHookType.ALLREDUCE)
    assert str(raised.value) == (
        "fake backend: DDP's built-in comm hook BuiltinCommHookType.ALLREDUCE reads the fake "
        "Work's empty future in C++; register a Python hook or use backend 'pypg'"
    )


@pytest.mark.fake_world(world_size=2, rank=1, backend="pypg")
def test_pypg_ddp_gets_no_fakedist_hook(fake_world) -> None:
    model = _model()
    ddp = DDP(model, process_group=fake_world.group)
    x = torch.rand(5, 4)
    ddp(x).sum().backward()
    assert ddp._get_ddp_logging_data().get("comm_hook") is None  # no hook registered
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    local = _plain_grads(model, x)
    for name, grad in got.items():  # pypg: replicated data, DDP's mean is the local gradient
        assert torch.equal(grad, local[name]), name
    assert dist.get_backend() == "pypg"
