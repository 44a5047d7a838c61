"""Registering a Python backend creator across torch releases."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch.distributed as dist

DEVICES = ["cpu", "cuda"]


def register_plugin(name: str, creator: Callable[..., Any], *, extended_api: bool) -> None:
    """``Backend.register_backend`` with ``devices`` where torch takes it (added in 2.1)."""
    params = inspect.signature(dist.Backend.register_backend).parameters
    kwargs: dict[str, Any] = {"extended_api": extended_api}
    if "devices" in params:
        kwargs["devices"] = DEVICES
    dist.Backend.register_backend(name, creator, **kwargs)
