"""``threaded`` fidelity: a run leaves nothing behind that the next run trips over.

Torch keeps process-wide state that a rank thread can create and a later run reads: the fake
CUDA device guard DTensor's sharding propagation sets up (owned by the rank thread that first
entered FakeTensorMode on torch 2.11) and the world torn down by ``destroy_process_group``.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from _models import init_device_mesh_fn  # noqa: E402

from fakedist import with_fake_comms  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def _dtensor_api() -> tuple[object, object]:
    try:
        from torch.distributed.tensor import DTensor, Shard  # public from torch 2.5
    except ImportError:
        try:
            from torch.distributed._tensor import DTensor, Shard
        except ImportError:
            pytest.skip("needs DTensor (torch.distributed._tensor, torch 2.1+)")
    return DTensor, Shard


@with_fake_comms(world_size=2, fidelity="threaded")
def _sharded_double(rows: int) -> tuple[tuple[int, ...], float]:
    """Each rank's shard of a row-sharded DTensor, doubled: its shape and sum."""
    from torch.distributed.device_mesh import init_device_mesh

    dtensor, shard = _dtensor_api()
    mesh = init_device_mesh("cpu", (2,))
    local = torch.full((rows, 3), float(dist.get_rank() + 1))
    doubled = dtensor.from_local(local, mesh, [shard(0)]) * 2  # type: ignore[attr-defined]
    out = doubled.to_local()
    return tuple(out.shape), out.sum().item()


def test_consecutive_threaded_runs_with_dtensor() -> None:
    """Three runs in a row, each propagating DTensor shardings (FakeTensorMode) on fresh rank
    threads and destroying its process group on every rank."""
    _dtensor_api()
    init_device_mesh_fn()  # skips before torch 2.2
    for rows in (2, 3, 2):
        assert _sharded_double(rows) == [((rows, 3), 6.0 * rows), ((rows, 3), 12.0 * rows)]
