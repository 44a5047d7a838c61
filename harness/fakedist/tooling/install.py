"""Installer command lines for a matrix cell (uv or pip), as pure functions.

Order of installs in a cell's environment: torch from the cell's index; then the test
dependencies under a constraint pinning the torch just installed; then fakedist itself
with ``--no-deps``. So torch is never replaced. uv does not read pip's configuration, so
pip's index settings (``PIP_*`` variables and pip config files) are carried over as uv
flags; with pip, uv's ``UV_*`` index variables are carried over the same way.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fakedist.tooling.matrix import ENV_INDEX, ENV_WHEELHOUSE, Cell
from fakedist.tooling.redact import redact_url

__all__ = [
    "BUILD_RECORD",
    "INSTALLED_MARKER",
    "TORCH_ABSENT_SNIPPET",
    "TORCH_VERSION_SNIPPET",
    "IndexSettings",
    "Installer",
    "Sources",
    "bytecode_settings",
    "constraints_text",
    "deps_install_argv",
    "fakedist_install_argv",
    "incomplete_message",
    "install_failure_message",
    "installed_stamp",
    "is_installed",
    "parse_pip_config_list",
    "pip_index_settings",
    "read_pip_config",
    "torch_install_argv",
    "uv_index_settings",
]

Installer = Literal["uv", "pip"]

# Printed by the cell's interpreter to learn the installed torch (for the constraint).
TORCH_VERSION_SNIPPET = "import importlib.metadata as m; print(m.version('torch'))"
# Printed by an interpreter that must have no torch (nox -s unit): its version, or nothing.
TORCH_ABSENT_SNIPPET = (
    "import importlib.metadata as m; print(next((d.version for d in m.distributions()"
    ' if (d.metadata["Name"] or "").lower() == "torch"), ""))'
)

# Written into a nox environment after its last install step succeeded, removed before the
# first: an install that was interrupted (Ctrl-C, a killed installer) leaves no marker, so
# `nox -R` (reuse, --no-install) installs again instead of testing a half-built environment.
INSTALLED_MARKER = ".fakedist-installed"
# Written next to it: the torch build the install got (compat.TORCH_BUILD_SNIPPET's JSON), so
# a reused environment names its build without importing torch.
BUILD_RECORD = ".fakedist-torch-build"

_CONFIG_LINE = re.compile(r"(?P<key>[^=\s]+)=(?P<value>.*)")


@dataclass(frozen=True)
class IndexSettings:
    """Where an installer looks for packages, besides the cell's torch index."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def parse_pip_config_list(text: str) -> dict[str, str]:
    """Parse ``pip config list`` output (``global.find-links='/x'``) into a dict."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        match = _CONFIG_LINE.fullmatch(line.strip())
        if match is None:
            continue
        value = match["value"].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[match["key"]] = value
    return out


def read_pip_config(python: str) -> dict[str, str]:
    """Run ``python -m pip config list``; {} when pip is not available there."""
    try:
        proc = subprocess.run(
            [python, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_pip_config_list(proc.stdout) if proc.returncode == 0 else {}


def _pip_option(env: Mapping[str, str], config: Mapping[str, str], name: str) -> str:
    variable = "PIP_" + name.upper().replace("-", "_")
    if env.get(variable):
        return env[variable]
    for section in (":env:", "install", "global"):
        if config.get(f"{section}.{name}"):
            return config[f"{section}.{name}"]
    return ""


def pip_index_settings(env: Mapping[str, str], config: Mapping[str, str]) -> IndexSettings:
    """pip's effective index settings: ``PIP_*`` variables over its config files.

    ``config`` is :func:`parse_pip_config_list` output; list values are whitespace-separated.
    """
    return IndexSettings(
        index_url=_pip_option(env, config, "index-url") or None,
        extra_index_urls=_unique(_pip_option(env, config, "extra-index-url").split()),
        find_links=_unique(_pip_option(env, config, "find-links").split()),
    )


def uv_index_settings(env: Mapping[str, str]) -> IndexSettings:
    """uv's index variables: UV_DEFAULT_INDEX / UV_INDEX_URL, UV_INDEX / UV_EXTRA_INDEX_URL
    (space-separated; ``name=url`` entries allowed), UV_FIND_LINKS (comma-separated)."""
    extras = []
    for entry in f"{env.get('UV_INDEX', '')} {env.get('UV_EXTRA_INDEX_URL', '')}".split():
        name, _, url = entry.partition("=")
        # "name=https://..." names an index; a bare URL may itself contain "=".
        extras.append(url if "://" in url and "://" not in name else entry)
    return IndexSettings(
        index_url=env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL") or None,
        extra_index_urls=_unique(extras),
        find_links=_unique(re.split(r"[,\s]+", env.get("UV_FIND_LINKS", ""))),
    )


@dataclass(frozen=True)
class Sources:
    """Index settings an install command must carry: pip's, uv's, and uv's index strategy."""

    pip: IndexSettings = IndexSettings()
    uv: IndexSettings = IndexSettings()
    uv_index_strategy: str | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str], pip_config: Mapping[str, str]) -> Sources:
        """From environment variables and :func:`parse_pip_config_list` output."""
        return cls(
            pip_index_settings(env, pip_config),
            uv_index_settings(env),
            env.get("UV_INDEX_STRATEGY") or None,
        )


def _prefix(installer: Installer, python: str) -> list[str]:
    if installer == "uv":
        return ["uv", "pip", "install", "--python", python]
    return [python, "-m", "pip", "install"]


def bytecode_settings(env: Mapping[str, str]) -> dict[str, str]:
    """uv's setting to write .pyc files at install time, where Python will not write them.

    pip compiles what it installs; uv only when asked. Where ``PYTHONDONTWRITEBYTECODE`` is
    set (many CI runners set it) nothing ever writes them, and every process that imports
    torch compiles it again: about 2.4 s more per process on two cores, paid by each xdist
    worker, pytester subprocess and gloo fork server. Compiling once costs about 11 s per
    environment. Elsewhere Python caches what it imports by itself: nothing to set.
    """
    if env.get("PYTHONDONTWRITEBYTECODE") and "UV_COMPILE_BYTECODE" not in env:
        return {"UV_COMPILE_BYTECODE": "1"}
    return {}


def _source_args(
    installer: Installer, index_url: str | None, sources: Sources, wheelhouse: str | None
) -> list[str]:
    """Index flags so that ``installer`` sees what the user configured for either tool."""
    pip, uv = sources.pip, sources.uv
    if installer == "pip":
        # pip reads its own configuration; add the cell's index and uv's settings.
        index = index_url or (None if pip.index_url else uv.index_url)
        extras, links = uv.extra_index_urls, _unique([*uv.find_links, wheelhouse or ""])
    else:
        # uv ignores pip's configuration, and a flag hides uv's own variable: pass both.
        index = index_url or (None if uv.index_url else pip.index_url)
        extras = _unique([*uv.extra_index_urls, *pip.extra_index_urls])
        links = _unique([*uv.find_links, *pip.find_links, wheelhouse or ""])
    args: list[str] = []
    if index:
        args += ["--index-url", index]
    for url in extras:
        args += ["--extra-index-url", url]
    for link in links:
        args += ["--find-links", link]
    if installer == "uv" and (extras or links) and sources.uv_index_strategy is None:
        # Let the best version win across indexes, e.g. a local torch+cpu build.
        args += ["--index-strategy", "unsafe-best-match"]
    return args


def torch_install_argv(
    cell: Cell, installer: Installer, python: str, sources: Sources
) -> list[str]:
    """Install the cell's torch build into the environment of ``python``."""
    args = _prefix(installer, python)
    args += _source_args(installer, cell.index_url, sources, cell.wheelhouse)
    if cell.nightly:
        args += ["--prerelease", "allow"] if installer == "uv" else ["--pre"]
    return [*args, cell.requirement]


def constraints_text(torch_version: str) -> str:
    """A constraints file pinning the installed torch (``2.13.0+cpu`` stays ``+cpu``)."""
    return f"torch=={torch_version.strip()}\n"


def deps_install_argv(
    installer: Installer,
    python: str,
    requirements: Sequence[str],
    sources: Sources,
    *,
    constraints_file: str | None = None,
    wheelhouse: str | None = None,
) -> list[str]:
    """Install dependencies; a torch constraint keeps the cell's torch in place."""
    args = _prefix(installer, python) + _source_args(installer, None, sources, wheelhouse)
    if constraints_file is not None:
        args += ["--constraint", constraints_file]
    return [*args, *requirements]


def fakedist_install_argv(
    installer: Installer,
    python: str,
    project_dir: str,
    sources: Sources,
    *,
    wheelhouse: str | None = None,
    editable: bool = False,
) -> list[str]:
    """(Re)install fakedist from ``project_dir`` without touching any dependency; editable:
    the environment imports the checkout's sources (what the torch-free session tests)."""
    args = _prefix(installer, python) + _source_args(installer, None, sources, wheelhouse)
    fresh = ["--reinstall-package", "fakedist"] if installer == "uv" else ["--force-reinstall"]
    return [*args, "--no-deps", *fresh, *(["-e"] if editable else []), project_dir]


def install_failure_message(cell: Cell, installer: Installer) -> str:
    """One line: what was tried, from where, and the overrides that fix it."""
    where = redact_url(cell.index_url) if cell.index_url else "the installer's own configuration"
    fixes = [f"{ENV_INDEX}=default (use pip/uv configuration)"] if cell.index_url else []
    fixes += [f"{ENV_INDEX}=<mirror URL>", f"{ENV_WHEELHOUSE}=<folder of wheels>"]
    return (
        f"{installer} could not install {cell.requirement} ({cell.variant}, Python {cell.python})"
        f" from {where}; set {', '.join(fixes[:-1])} or {fixes[-1]}"
    )


def installed_stamp(cell: Cell, extra: Sequence[str] = ()) -> str:
    """What a complete install of ``cell`` (plus ``extra`` requirements) writes to the marker."""
    parts = [cell.requirement, cell.variant, cell.index_url or "default", *extra]
    return " ".join(parts) + "\n"


def is_installed(env_dir: str | Path, stamp: str) -> bool:
    """True when ``env_dir`` holds a complete install with exactly this stamp."""
    try:
        return (Path(env_dir) / INSTALLED_MARKER).read_text(encoding="utf-8") == stamp
    except OSError:
        return False


def incomplete_message(env_dir: str | Path, stamp: str) -> str:
    """One line: why a reused environment is being installed again despite --no-install."""
    marker = Path(env_dir) / INSTALLED_MARKER
    why = "was interrupted" if not marker.exists() else "was made for another cell"
    return (
        f"{env_dir}: its last install {why} (no {INSTALLED_MARKER} for {stamp.strip()}); "
        "installing again despite --no-install/-R"
    )
