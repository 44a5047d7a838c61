"""The part of nox's ``Session`` that fakedist's sessions use, as a protocol.

:mod:`fakedist.tooling.sessions` and :mod:`fakedist.tooling.provision` take the session
through it, never importing nox: noxfile.py hands them nox's own session, tests a fake that
records the commands.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NoReturn, Protocol

__all__ = ["Session", "VirtualEnv"]


class VirtualEnv(Protocol):
    """The session's environment (``session.virtualenv``)."""

    @property
    def location(self) -> str:
        """Its folder."""


class Session(Protocol):
    """``nox.Session`` as used here; ``run`` and ``run_install`` take nox's keywords
    (``env``, ``silent``, ``external``, ``success_codes``) and return a silent run's output."""

    @property
    def posargs(self) -> list[str]:
        """Arguments after ``--`` on nox's command line."""

    @property
    def name(self) -> str:
        """The session's name, with its parameters: ``tests-cpu(2.13-cpu)``."""

    @property
    def bin(self) -> str:
        """The environment's ``bin`` folder."""

    @property
    def venv_backend(self) -> str:
        """``uv``, ``virtualenv``, ... or ``none``."""

    @property
    def virtualenv(self) -> VirtualEnv:
        """The session's environment."""

    def run(self, *args: str, **kwargs: Any) -> Any:
        """Run a command; nox raises its CommandFailed when it fails."""

    def run_install(self, *args: str, **kwargs: Any) -> Any:
        """Run an install command; skipped (None) with ``--no-install`` on a reused env."""

    def error(self, *args: Any) -> NoReturn:
        """Stop the session, failed, with a message."""

    def warn(self, *args: Any) -> None:
        """Log a warning."""

    def log(self, *args: Any) -> None:
        """Log a line."""

    def notify(self, target: str, posargs: list[str] | None = None) -> None:
        """Queue another session to run after this one."""

    def chdir(self, dir: str | Path) -> AbstractContextManager[Any]:
        """Change the working directory, for a ``with`` block."""

    def create_tmp(self) -> str:
        """A scratch folder inside the environment."""
