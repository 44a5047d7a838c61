"""Building a nox session's environment: a torch cell, the torch-free tooling, or tools.

A cell gets torch from its index, then the test dependencies under a constraint pinning that
torch, then fakedist ``--no-deps`` (and the user's project when the Action drives the run): so
torch is never replaced. A marker written after the last step lets ``-R``/``--no-install``
skip only complete installs. The command lines come from :mod:`fakedist.tooling.install`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fakedist.tooling import compat, install
from fakedist.tooling.action.project import Project
from fakedist.tooling.matrix import Cell
from fakedist.tooling.noxapi import Session

__all__ = [
    "TEST_REQUIREMENTS",
    "TOOLING_REQUIREMENTS",
    "Provisioner",
    "recorded_build",
    "say_build",
]

TEST_REQUIREMENTS = "requirements/test.txt"  # next to each cell's torch
TOOLING_REQUIREMENTS = "requirements/tooling.txt"  # the torch-free tests: never torch


def installer_of(session: Session) -> install.Installer:
    """uv when nox made the environment with uv, else pip."""
    return "uv" if session.venv_backend == "uv" else "pip"


def python_of(session: Session) -> str:
    """The environment's interpreter."""
    return str(Path(session.bin) / "python")


def say_build(session: Session, cell: Cell, build_json: str) -> None:
    """Say once when a ``cpu`` cell got a CUDA build (PyPI's Linux wheels are CUDA builds)."""
    build = json.loads(build_json.strip().splitlines()[-1])
    note = compat.build_note(cell.id, cell.variant, build["version"], build["cuda"])
    if note:
        session.warn(note)


def recorded_build(session: Session, env_dir: Path) -> str:
    """The torch build a complete install recorded; asked of torch when the record is gone."""
    try:
        return (env_dir / install.BUILD_RECORD).read_text(encoding="utf-8")
    except OSError:
        return str(session.run("python", "-c", compat.TORCH_BUILD_SNIPPET, silent=True))


@dataclass(frozen=True)
class Provisioner:
    """Installs into nox sessions for the checkout at ``root``.

    ``env`` is nox's environment (the index settings carried into every install);
    ``command_failed`` is the exception nox raises when a command fails; ``read_pip_config``
    reads an interpreter's ``pip config list`` (``tools_python``: the one running nox).
    """

    root: Path
    env: Mapping[str, str]
    project: Project | None
    command_failed: type[Exception]
    tools_python: str
    read_pip_config: Callable[[str], Mapping[str, str]] = install.read_pip_config

    def sources(self) -> install.Sources:
        """pip's and uv's index settings, carried into every install (uv ignores pip's
        config); runs ``pip config list`` (about 0.5 s), so only when installing."""
        config = self.read_pip_config(self.tools_python)
        return install.Sources.from_environment(self.env, config)

    def test_deps(self) -> list[str]:
        """requirements/test.txt; for the Action only what the user's run needs (no shuffling
        or workers unless asked for)."""
        if self.project is None:
            return ["-r", TEST_REQUIREMENTS]
        return self.project.harness_requirements(self.root / TEST_REQUIREMENTS)

    def tools(self, session: Session, *requirements: str) -> None:
        """Tools with the carried index configuration (no torch involved)."""
        argv = install.deps_install_argv(
            installer_of(session), python_of(session), requirements, self.sources()
        )
        session.run_install(*argv)

    def tooling(self, session: Session) -> None:
        """The torch-free tests' environment: their tools, then fakedist editable and
        ``--no-deps``; stops the session when torch got in anyway."""
        sources = self.sources()
        kind, python = installer_of(session), python_of(session)
        session.run_install(
            *install.deps_install_argv(kind, python, ["-r", TOOLING_REQUIREMENTS], sources)
        )
        own = install.fakedist_install_argv(kind, python, str(self.root), sources, editable=True)
        session.run_install(*own)
        torch = str(session.run("python", "-c", install.TORCH_ABSENT_SNIPPET, silent=True))
        if torch.strip():  # a dependency brought it: these tests must pass without it
            session.error(
                f"{session.name}: torch {torch.strip()} got installed; this session runs"
                " without torch"
            )

    def cell(self, session: Session, cell: Cell) -> str:
        """torch for the cell, then test deps under a torch constraint, then fakedist (editable).

        Returns the torch build's JSON (compat.TORCH_BUILD_SNIPPET), also when ``-R`` reused
        a complete install (then as that install recorded it).
        """
        kind, python = installer_of(session), python_of(session)
        env_dir = Path(session.virtualenv.location)
        wanted = [*self.test_deps(), *self.project.install_specs()] if self.project else []
        stamp = install.installed_stamp(cell, wanted)
        run_install: Callable[..., object] = session.run_install
        if session.run_install("python", "-c", "", silent=True) is None:  # -R / --no-install
            if install.is_installed(env_dir, stamp):
                return recorded_build(session, env_dir)
            session.warn(install.incomplete_message(env_dir, stamp))
            run_install = functools.partial(session.run, external=True)
        sources = self.sources()
        for stale in (install.INSTALLED_MARKER, install.BUILD_RECORD):
            (env_dir / stale).unlink(missing_ok=True)
        try:
            run_install(*install.torch_install_argv(cell, kind, python, sources))
        except self.command_failed:
            session.error(install.install_failure_message(cell, kind))
        version = str(run_install("python", "-c", install.TORCH_VERSION_SNIPPET, silent=True))
        build = str(run_install("python", "-c", compat.TORCH_BUILD_SNIPPET, silent=True))
        say_build(session, cell, build)
        constraint = Path(session.create_tmp()) / "torch-constraint.txt"
        constraint.write_text(install.constraints_text(version), encoding="utf-8")
        pinned = {"constraints_file": str(constraint), "wheelhouse": cell.wheelhouse}
        deps = (*self.test_deps(), *cell.test_requires)
        run_install(*install.deps_install_argv(kind, python, deps, sources, **pinned))
        # editable, as in `unit`: the cell imports the checkout's sources, so a reused (-R)
        # environment tests the code as it is now, never the copy of its first install
        # (tests/tooling/test_packaging.py builds and installs the wheel itself)
        own = install.fakedist_install_argv(
            kind, python, str(self.root), sources, wheelhouse=cell.wheelhouse, editable=True
        )
        run_install(*own)
        if self.project is not None and self.project.install:
            specs = self.project.install_specs()
            run_install(*install.deps_install_argv(kind, python, specs, sources, **pinned))
        (env_dir / install.BUILD_RECORD).write_text(build, encoding="utf-8")
        (env_dir / install.INSTALLED_MARKER).write_text(stamp, encoding="utf-8")
        return build
