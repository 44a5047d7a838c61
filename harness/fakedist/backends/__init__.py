"""The backends fakedist registers, one module each, behind one idempotent call."""

from __future__ import annotations

from typing import Any

__all__ = ["BACKENDS", "init_kwargs", "register_backends"]

BACKENDS = ("fake", "mock_process_group", "pypg")


def register_backends() -> tuple[str, ...]:
    """Register every fakedist backend with torch.distributed (idempotent); return their names."""
    from fakedist.backends import fake, mock, pypg

    fake.register()
    mock.register()
    pypg.register()
    return BACKENDS


def init_kwargs(backend: str, world_size: int, options: dict[str, Any]) -> dict[str, Any]:
    """Extra ``init_process_group`` keyword arguments for ``backend`` with ``options``.

    Raises ValueError naming an option the backend does not have on this torch.
    """
    import torch.distributed as dist

    if backend == "fake":
        from fakedist.backends import fake

        pg_options = fake.make_pg_options(options)
        kwargs: dict[str, Any] = {"store": dist.HashStore()}
        if pg_options is not None:
            kwargs["pg_options"] = pg_options
        return kwargs
    if backend == "mock_process_group":
        from fakedist.backends import mock

        _no_options(backend, options, ())
        return mock.init_kwargs(world_size)
    if backend == "pypg":
        from fakedist.backends import pypg

        _no_options(backend, options, ("work",))
        return {"store": dist.HashStore(), "pg_options": pypg.PyPgOptions(**options)}
    raise ValueError(f"unknown backend {backend!r}; fakedist offers: {', '.join(BACKENDS)}")


def _no_options(backend: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in options:
        if key not in allowed:
            have = ", ".join(allowed) or "none"
            raise ValueError(f"{backend} backend: unknown option {key!r}; options it has: {have}")
