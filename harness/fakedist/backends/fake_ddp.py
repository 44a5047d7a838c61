"""DistributedDataParallel on the ``fake`` backend: the patches that make it train.

torch's fake backend (C++, from torch 2.3) completes each collective with a Work whose future
holds None, where real backends put the collective's tensors. DDP reads its gradient bucket
from that future, so without help its first backward fails ("expected the hook result is
either a Tensor or a TensorList found None"), and so does every Python comm hook that reads a
future (torch's ``default_hooks.allreduce_hook`` and ``fp16_compress_hook``).
While a fakedist world is active, for a DDP whose group is a ``fake`` group:

* a DDP with no comm hook of its own gets torch's ``default_hooks.allreduce_hook`` before its
  first forward: what DDP's built-in all-reduce does (divide the bucket by the group size,
  ``all_reduce`` SUM), but issued from Python, so it is recorded in the CommLog and fault
  schedules apply;
* every Python comm hook (that one, or one registered with ``register_comm_hook``) runs with
  the collectives it issues returning completed Work whose future holds their tensors, as
  on a real backend;
* ``_register_builtin_comm_hook`` (C++ hooks, which read the future in C++) fails at once
  with one line that points to ``pypg``.

The resulting gradient is the local gradient divided by the world size, times what the fake
backend's SUM does to data (1 where reductions leave tensors unchanged): exactly what DDP
computes from that all-reduce.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

HOOK_CALLS = [0]
"""More than 0 while a Python comm hook of a DDP over a fake group runs."""

_SEEN: weakref.WeakSet[Any] = weakref.WeakSet()  # DDPs whose first forward has run
_HOOKED: weakref.WeakSet[Any] = weakref.WeakSet()  # DDPs with a comm hook registered


def is_fake(group: Any) -> bool:
    """Whether ``group`` runs on the fake backend (False for a group c10d does not know)."""
    try:
        return bool(dist.get_backend(group) == "fake")
    except (ValueError, RuntimeError):
        return False


def completed_work(args: tuple[Any, ...]) -> Any:
    """Completed Work whose future holds the collective's first argument (its tensors)."""
    import torch._C._distributed_c10d as c10d_c

    first = args[0] if args else []
    fut: torch.futures.Future[Any] = torch.futures.Future()
    fut.set_result(first if isinstance(first, list) else [first])
    # Not in torch's type stubs; without torch installed (the lint env) the ignore is unused.
    return c10d_c._create_work_from_future(fut)  # type: ignore[attr-defined,unused-ignore]


def _completing(hook: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(hook)  # DDP checks the hook's signature (followed through __wrapped__)
    def run(state: Any, bucket: Any) -> Any:
        HOOK_CALLS[0] += 1
        try:
            return hook(state, bucket)
        finally:
            HOOK_CALLS[0] -= 1

    return run


def forward(orig: Callable[..., Any]) -> Callable[..., Any]:
    """``DDP.forward``: give a fake-group DDP without a comm hook torch's allreduce_hook."""

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self not in _SEEN:
            _SEEN.add(self)
            if is_fake(self.process_group) and self not in _HOOKED:
                from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

                self.register_comm_hook(self.process_group, default_hooks.allreduce_hook)
        return orig(self, *args, **kwargs)

    return forward


def register_comm_hook(orig: Callable[..., Any]) -> Callable[..., Any]:
    """``DDP.register_comm_hook``: a hook on a fake group sees completed futures."""

    def register_comm_hook(self: Any, state: Any, hook: Callable[..., Any]) -> Any:
        if is_fake(self.process_group):
            hook = _completing(hook)
        result = orig(self, state, hook)
        _HOOKED.add(self)
        return result

    return register_comm_hook


def register_builtin_comm_hook(orig: Callable[..., Any]) -> Callable[..., Any]:
    """``DDP._register_builtin_comm_hook``: refused on a fake group, in one line."""

    def _register_builtin_comm_hook(self: Any, comm_hook_type: Any) -> Any:
        if is_fake(self.process_group):
            raise RuntimeError(
                f"fake backend: DDP's built-in comm hook {comm_hook_type} reads the fake "
                "Work's empty future in C++; register a Python hook or use backend 'pypg'"
            )
        result = orig(self, comm_hook_type)
        _HOOKED.add(self)
        return result

    return _register_builtin_comm_hook


PATCHES: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "forward": forward,
    "register_comm_hook": register_comm_hook,
    "_register_builtin_comm_hook": register_builtin_comm_hook,
}
"""DistributedDataParallel method -> what wraps it while a world is active."""
