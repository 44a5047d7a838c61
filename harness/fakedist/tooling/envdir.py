"""Where nox will create its environments, and whether it can: checked when the noxfile loads.

nox creates ``.nox`` next to the noxfile (or ``--envdir``) only when the first session starts,
and a checkout it cannot write to (a read-only mount, a folder owned by another user) then
ends in nox's own traceback. The noxfile asks :func:`problem` first and stops with one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["envdir", "problem"]

DEFAULT = ".nox"  # nox's default --envdir, relative to the noxfile's folder


def envdir(root: Path, argv: Sequence[str]) -> Path:
    """The ``--envdir`` of nox's command line ``argv`` (the last one wins, as in argparse),
    relative to ``root``, the noxfile's folder; ``root/.nox`` without one."""
    found = DEFAULT
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--envdir" and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith("--envdir="):
            found = arg.split("=", 1)[1]
    return root / found  # an absolute --envdir replaces root


def _why_not(folder: Path) -> str | None:
    """Why nothing can be created at ``folder``; None when it can."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if os.access(existing, os.W_OK | os.X_OK):
        return None
    try:
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "read-only file system" if read_only else f"no permission to write in {existing}"


def problem(root: Path, argv: Sequence[str]) -> str | None:
    """One line when nox cannot create its environments where it would; None when it can."""
    where = envdir(root, argv)
    why = _why_not(where)
    if why is None:
        return None
    return (
        f"fakedist: nox cannot create its environments in {where} ({why});"
        " run nox with --envdir <a writable folder>"
    )
