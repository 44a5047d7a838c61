"""The user project a nox session tests when the Action drives it (``FAKEDIST_PROJECT``).

The Action runs fakedist's own noxfile; these variables tell a session what to install
from the user's repository, which tests to run, from which directory, and what coverage
measures. Unset ``FAKEDIST_PROJECT`` (plain ``nox`` in this repository): :func:`from_env`
returns None and the sessions behave as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENV_COVERAGE",
    "ENV_COV_SOURCE",
    "ENV_INSTALL",
    "ENV_PROJECT",
    "ENV_SHUFFLE",
    "ENV_SUITE",
    "ENV_TESTS",
    "ENV_WORKERS",
    "SUITE_DIR",
    "Project",
    "from_env",
]

ENV_PROJECT = "FAKEDIST_PROJECT"  # directory: pytest runs here, install paths are relative to it
ENV_TESTS = "FAKEDIST_TESTS"  # whitespace-separated test paths / node ids
ENV_SUITE = "FAKEDIST_SUITE"  # "1": also run fakedist's conformance suite
ENV_INSTALL = "FAKEDIST_INSTALL"  # whitespace-separated specs, e.g. ".[test]"
ENV_COVERAGE = "FAKEDIST_COVERAGE"  # "0": no coverage
ENV_COV_SOURCE = "FAKEDIST_COV_SOURCE"  # whitespace-separated coverage sources
ENV_SHUFFLE = "FAKEDIST_SHUFFLE"  # "": test order as written; "random" or a seed: shuffled
ENV_WORKERS = "FAKEDIST_WORKERS"  # "": one process; "auto" or a number: pytest-xdist workers
SUITE_DIR = "tests/conformance"
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class Project:
    """What a session installs and runs for the user's repository."""

    root: Path
    tests: tuple[str, ...] = ()
    suite: bool = True
    install: tuple[str, ...] = ()
    coverage: bool = True
    cov_source: tuple[str, ...] = ()
    shuffle: str = ""
    workers: str = ""

    def harness_requirements(self, pinned: Path) -> list[str]:
        """The lines of ``pinned`` (requirements/test.txt) this run needs: pytest, coverage
        when measuring, numpy and setuptools for the bundled suite, pytest-randomly only when
        shuffling and pytest-xdist only with workers. Nothing else goes into the user's
        environment."""
        wanted = {"pytest"}
        wanted |= {"coverage"} if self.coverage else set()
        wanted |= {"numpy", "setuptools"} if self.suite else set()  # setuptools: inductor
        wanted |= {"pytest-randomly"} if self.shuffle else set()
        wanted |= {"pytest-xdist"} if self.workers else set()
        lines = pinned.read_text(encoding="utf-8").splitlines()
        found = [(_NAME.match(line.strip()), line.strip()) for line in lines]
        return [line for match, line in found if match and match[0].lower() in wanted]

    def pytest_options(self) -> list[str]:
        """pytest options for the ``shuffle`` and ``workers`` settings (none by default)."""
        options = []
        if self.shuffle and self.shuffle != "random":  # pytest-randomly shuffles once installed
            options.append(f"--randomly-seed={self.shuffle}")
        if self.workers:
            options += ["-n", self.workers]
        return options

    def install_specs(self) -> list[str]:
        """Install arguments: local directories editable with absolute paths (``.[test]`` ->
        ``-e /repo[test]``, so coverage maps to the sources), requirement names as given."""
        specs = []
        for spec in self.install:
            if spec.startswith(".") or "/" in spec:
                path, bracket, extras = spec.partition("[")
                local = (self.root / path).resolve()
                editable = ["-e"] if local.is_dir() else []
                specs += [*editable, f"{local}{bracket}{extras}"]
            else:
                specs.append(spec)
        return specs

    def pytest_paths(self, fakedist_root: Path) -> list[str]:
        """The user's tests, then the conformance suite (absolute) when asked for."""
        paths = list(self.tests)
        if self.suite:
            paths.append(str(fakedist_root / SUITE_DIR))
        return paths

    def pytest_command(self) -> list[str]:
        """pytest, under ``coverage run`` when measuring: ``--source`` from coverage-source,
        ``fakedist`` for the bare suite, else the project's own coverage configuration."""
        if not self.coverage:
            return ["python", "-m", "pytest", *self.pytest_options()]
        sources = self.cov_source or (() if self.tests else ("fakedist",))
        source = [f"--source={','.join(sources)}"] if sources else []
        return ["python", "-m", "coverage", "run", *source, "-m", "pytest", *self.pytest_options()]

    def env(self) -> dict[str, str]:
        """The variables that describe this project (the inverse of :func:`from_env`)."""
        return {
            ENV_PROJECT: str(self.root),
            ENV_TESTS: " ".join(self.tests),
            ENV_SUITE: "1" if self.suite else "0",
            ENV_INSTALL: " ".join(self.install),
            ENV_COVERAGE: "1" if self.coverage else "0",
            ENV_COV_SOURCE: " ".join(self.cov_source),
            ENV_SHUFFLE: self.shuffle,
            ENV_WORKERS: self.workers,
        }


def from_env(env: Mapping[str, str]) -> Project | None:
    """The project described by ``FAKEDIST_*`` variables, or None without FAKEDIST_PROJECT."""
    root = env.get(ENV_PROJECT, "").strip()
    if not root:
        return None
    path = Path(root)
    if not path.is_dir():
        raise ValueError(f"{ENV_PROJECT}: {root!r} is not a directory")
    return Project(
        root=path.resolve(),
        tests=tuple(env.get(ENV_TESTS, "").split()),
        suite=env.get(ENV_SUITE, "1").strip() != "0",
        install=tuple(env.get(ENV_INSTALL, "").split()),
        coverage=env.get(ENV_COVERAGE, "1").strip() != "0",
        cov_source=tuple(env.get(ENV_COV_SOURCE, "").split()),
        shuffle=env.get(ENV_SHUFFLE, "").strip(),
        workers=env.get(ENV_WORKERS, "").strip(),
    )
