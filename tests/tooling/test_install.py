"""fakedist.tooling.install: installer argv for uv and pip, carrying both tools' index settings."""

from __future__ import annotations

import importlib.metadata
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fakedist.tooling.install import (
    INSTALLED_MARKER,
    TORCH_ABSENT_SNIPPET,
    IndexSettings,
    Sources,
    bytecode_settings,
    constraints_text,
    deps_install_argv,
    fakedist_install_argv,
    incomplete_message,
    install_failure_message,
    installed_stamp,
    is_installed,
    parse_pip_config_list,
    pip_index_settings,
    read_pip_config,
    torch_install_argv,
    uv_index_settings,
)
from fakedist.tooling.matrix import Cell

PY = "/venv/bin/python"
CPU = Cell("2.13.0", "2.13", "cpu", "3.11", "https://download.pytorch.org/whl/cpu")
DEFAULT = Cell("2.13.0", "2.13", "cpu", "3.11", None)
NIGHTLY = Cell("2.16.0.dev0", "nightly", "cu126", "3.11", "https://x.org/nightly/cu126", True)

# What `pip config list` prints on a machine like our CI runners.
PIP_CONFIG_LIST = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.find-links='/srv/wheels'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.extra-index-url='file:///srv/pypi/simple file:///srv/pypi-more/simple'
global.find-links='/srv/wheels'
"""
CARRIED = Sources(
    pip=IndexSettings(
        None, ("file:///srv/pypi/simple", "file:///srv/pypi-more/simple"), ("/srv/wheels",)
    ),
)


def test_parse_pip_config_list() -> None:
    assert parse_pip_config_list(PIP_CONFIG_LIST + "garbage line\n") == {
        ":env:.cert": "/etc/ssl/certs/ca-certificates.crt",
        ":env:.find-links": "/srv/wheels",
        "global.cert": "/etc/ssl/certs/ca-certificates.crt",
        "global.extra-index-url": "file:///srv/pypi/simple file:///srv/pypi-more/simple",
        "global.find-links": "/srv/wheels",
    }


def test_pip_settings_from_config_listing() -> None:
    settings = pip_index_settings({}, parse_pip_config_list(PIP_CONFIG_LIST))
    assert settings == CARRIED.pip


def test_pip_environment_variables_win_over_config_files() -> None:
    config = {"global.index-url": "https://files.example/simple", "install.find-links": "/a /b"}
    env = {
        "PIP_INDEX_URL": "https://env.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://e1 https://e2",
    }
    assert pip_index_settings(env, config) == IndexSettings(
        "https://env.example/simple", ("https://e1", "https://e2"), ("/a", "/b")
    )
    # install.* beats global.*, like pip's own per-command sections
    both = {"global.find-links": "/g", "install.find-links": "/i"}
    assert pip_index_settings({}, both).find_links == ("/i",)


def test_uv_settings_from_environment() -> None:
    env = {
        "UV_DEFAULT_INDEX": "https://uv.example/simple",
        "UV_INDEX": "internal=https://internal.example/simple https://q.example/s?a=b",
        "UV_EXTRA_INDEX_URL": "https://extra.example/simple",
        "UV_FIND_LINKS": "/w1,/w2",
    }
    assert uv_index_settings(env) == IndexSettings(
        "https://uv.example/simple",
        (
            "https://internal.example/simple",
            "https://q.example/s?a=b",
            "https://extra.example/simple",
        ),
        ("/w1", "/w2"),
    )
    assert (
        uv_index_settings({"UV_INDEX_URL": "https://old.example"}).index_url
        == "https://old.example"
    )
    assert uv_index_settings({}) == IndexSettings()


def test_sources_from_environment() -> None:
    env = {"PIP_FIND_LINKS": "/srv/wheels", "UV_INDEX_STRATEGY": "first-index"}
    sources = Sources.from_environment(env, parse_pip_config_list(PIP_CONFIG_LIST))
    assert sources.pip == CARRIED.pip
    assert sources.uv == IndexSettings()
    assert sources.uv_index_strategy == "first-index"


def test_read_pip_config_runs_pip_config_list(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{PIP_CONFIG_LIST}EOF\n", encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    assert read_pip_config(str(fake))["global.find-links"] == "/srv/wheels"
    failing = tmp_path / "broken"
    failing.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    failing.chmod(failing.stat().st_mode | stat.S_IXUSR)
    assert read_pip_config(str(failing)) == {}
    assert read_pip_config(str(tmp_path / "missing")) == {}
    assert isinstance(read_pip_config(sys.executable), dict)


# ------------------------------------------------------------------------------ torch


def test_uv_official_index_plain() -> None:
    assert torch_install_argv(CPU, "uv", PY, Sources()) == [
        "uv",
        "pip",
        "install",
        "--python",
        PY,
        "--index-url",
        "https://download.pytorch.org/whl/cpu",
        "torch==2.13.0",
    ]


def test_pip_official_index_plain() -> None:
    assert torch_install_argv(CPU, "pip", PY, Sources()) == [
        PY,
        "-m",
        "pip",
        "install",
        "--index-url",
        "https://download.pytorch.org/whl/cpu",
        "torch==2.13.0",
    ]


def test_uv_default_carries_pip_configuration() -> None:
    assert torch_install_argv(DEFAULT, "uv", PY, CARRIED) == [
        "uv",
        "pip",
        "install",
        "--python",
        PY,
        "--extra-index-url",
        "file:///srv/pypi/simple",
        "--extra-index-url",
        "file:///srv/pypi-more/simple",
        "--find-links",
        "/srv/wheels",
        "--index-strategy",
        "unsafe-best-match",
        "torch==2.13.0",
    ]


def test_pip_default_adds_nothing_pip_reads_its_own_configuration() -> None:
    assert torch_install_argv(DEFAULT, "pip", PY, CARRIED) == [
        PY,
        "-m",
        "pip",
        "install",
        "torch==2.13.0",
    ]


def test_uv_carries_pip_index_url_unless_uv_has_its_own() -> None:
    pip_only = Sources(pip=IndexSettings("https://mirror.example/simple"))
    assert torch_install_argv(DEFAULT, "uv", PY, pip_only)[5:] == [
        "--index-url",
        "https://mirror.example/simple",
        "torch==2.13.0",
    ]
    both = Sources(pip=pip_only.pip, uv=IndexSettings("https://uv.example/simple"))
    assert torch_install_argv(DEFAULT, "uv", PY, both)[5:] == ["torch==2.13.0"]


def test_uv_keeps_its_own_extras_and_strategy() -> None:
    sources = Sources(
        pip=IndexSettings(None, ("https://p.example",), ()),
        uv=IndexSettings(None, ("https://u.example",), ("/uvwheels",)),
        uv_index_strategy="first-index",
    )
    assert torch_install_argv(DEFAULT, "uv", PY, sources)[5:] == [
        "--extra-index-url",
        "https://u.example",
        "--extra-index-url",
        "https://p.example",
        "--find-links",
        "/uvwheels",
        "torch==2.13.0",
    ]


def test_pip_carries_uv_settings() -> None:
    sources = Sources(uv=IndexSettings("https://uv.example", ("https://u2.example",), ("/w",)))
    assert torch_install_argv(DEFAULT, "pip", PY, sources)[4:] == [
        "--index-url",
        "https://uv.example",
        "--extra-index-url",
        "https://u2.example",
        "--find-links",
        "/w",
        "torch==2.13.0",
    ]
    # pip's own index-url wins over uv's
    mixed = Sources(pip=IndexSettings("https://pip.example"), uv=sources.uv)
    assert "https://uv.example" not in torch_install_argv(DEFAULT, "pip", PY, mixed)


def test_cell_index_beats_configured_index() -> None:
    sources = Sources(
        pip=IndexSettings("https://pip.example"), uv=IndexSettings("https://uv.example")
    )
    for installer in ("uv", "pip"):
        argv = torch_install_argv(CPU, installer, PY, sources)  # type: ignore[arg-type]
        position = argv.index("--index-url")
        assert argv[position + 1] == "https://download.pytorch.org/whl/cpu"
        assert argv.count("--index-url") == 1


def test_wheelhouse_is_a_find_links() -> None:
    cell = Cell("2.13.0", "2.13", "cpu", "3.11", None, wheelhouse="/wheels")
    assert torch_install_argv(cell, "pip", PY, Sources())[4:] == [
        "--find-links",
        "/wheels",
        "torch==2.13.0",
    ]
    assert torch_install_argv(cell, "uv", PY, CARRIED)[5:] == [
        "--extra-index-url",
        "file:///srv/pypi/simple",
        "--extra-index-url",
        "file:///srv/pypi-more/simple",
        "--find-links",
        "/srv/wheels",
        "--find-links",
        "/wheels",
        "--index-strategy",
        "unsafe-best-match",
        "torch==2.13.0",
    ]


def test_nightly_allows_prereleases() -> None:
    assert torch_install_argv(NIGHTLY, "uv", PY, Sources())[-3:] == [
        "--prerelease",
        "allow",
        "torch>=2.16.0.dev0",
    ]
    assert torch_install_argv(NIGHTLY, "pip", PY, Sources())[-2:] == ["--pre", "torch>=2.16.0.dev0"]


# -------------------------------------------------------------- torch is never replaced


def test_constraints_keep_the_local_build() -> None:
    assert constraints_text("2.13.0+cpu\n") == "torch==2.13.0+cpu\n"


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_deps_are_installed_under_the_torch_constraint(installer: str) -> None:
    argv = deps_install_argv(
        installer,
        PY,
        ["-r", "requirements/test.txt"],
        Sources(),  # type: ignore[arg-type]
        constraints_file="/tmp/c.txt",
    )
    assert argv[-4:] == ["--constraint", "/tmp/c.txt", "-r", "requirements/test.txt"]
    assert not any(a.startswith("torch") for a in argv)


def test_deps_carry_pip_configuration_with_uv() -> None:
    assert deps_install_argv("uv", PY, ["pytest"], CARRIED) == [
        "uv",
        "pip",
        "install",
        "--python",
        PY,
        "--extra-index-url",
        "file:///srv/pypi/simple",
        "--extra-index-url",
        "file:///srv/pypi-more/simple",
        "--find-links",
        "/srv/wheels",
        "--index-strategy",
        "unsafe-best-match",
        "pytest",
    ]


def test_fakedist_is_installed_without_dependencies() -> None:
    assert fakedist_install_argv("uv", PY, "/src/fakedist", Sources()) == [
        "uv",
        "pip",
        "install",
        "--python",
        PY,
        "--no-deps",
        "--reinstall-package",
        "fakedist",
        "/src/fakedist",
    ]
    assert fakedist_install_argv("pip", PY, "/src/fakedist", Sources()) == [
        PY,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--force-reinstall",
        "/src/fakedist",
    ]
    editable = fakedist_install_argv("uv", PY, "/src/fakedist", Sources(), editable=True)
    assert editable[-3:] == ["fakedist", "-e", "/src/fakedist"]


def test_torch_absent_snippet_prints_the_installed_torch_or_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", TORCH_ABSENT_SNIPPET], capture_output=True, text=True, check=True
    )
    try:
        expected = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        expected = ""
    assert proc.stdout.strip() == expected


def test_failure_message_names_index_version_and_overrides() -> None:
    assert install_failure_message(CPU, "uv") == (
        "uv could not install torch==2.13.0 (cpu, Python 3.11) from "
        "https://download.pytorch.org/whl/cpu; set FAKEDIST_TORCH_INDEX=default (use pip/uv "
        "configuration), FAKEDIST_TORCH_INDEX=<mirror URL> or "
        "FAKEDIST_WHEELHOUSE=<folder of wheels>"
    )
    assert install_failure_message(DEFAULT, "pip") == (
        "pip could not install torch==2.13.0 (cpu, Python 3.11) from the installer's own "
        "configuration; set FAKEDIST_TORCH_INDEX=<mirror URL> or "
        "FAKEDIST_WHEELHOUSE=<folder of wheels>"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {}),
        ({"PYTHONDONTWRITEBYTECODE": "1"}, {"UV_COMPILE_BYTECODE": "1"}),
        ({"PYTHONDONTWRITEBYTECODE": ""}, {}),  # empty: Python writes them
        ({"PYTHONDONTWRITEBYTECODE": "1", "UV_COMPILE_BYTECODE": "0"}, {}),  # the user's choice
    ],
)
def test_uv_compiles_bytecode_only_where_python_will_not(
    env: dict[str, str], expected: dict[str, str]
) -> None:
    assert bytecode_settings(env) == expected


def test_failure_message_masks_credentials_in_the_index_url() -> None:
    private = Cell("2.13.0", "2.13", "cpu", "3.11", "https://bot:s3cret@mirror.example/simple")
    message = install_failure_message(private, "uv")
    assert "s3cret" not in message
    assert "bot" not in message
    assert " from https://***@mirror.example/simple; set " in message


def test_marker_only_after_a_complete_install(tmp_path: Path) -> None:
    stamp = installed_stamp(CPU)
    assert stamp == "torch==2.13.0 cpu https://download.pytorch.org/whl/cpu\n"
    assert installed_stamp(DEFAULT, ["-e", "/p[test]"]) == "torch==2.13.0 cpu default -e /p[test]\n"
    assert not is_installed(tmp_path, stamp)  # interrupted: no marker
    assert incomplete_message(tmp_path, stamp) == (
        f"{tmp_path}: its last install was interrupted (no {INSTALLED_MARKER} for "
        "torch==2.13.0 cpu https://download.pytorch.org/whl/cpu); "
        "installing again despite --no-install/-R"
    )
    (tmp_path / INSTALLED_MARKER).write_text(installed_stamp(DEFAULT), encoding="utf-8")
    assert not is_installed(tmp_path, stamp)  # another cell's install
    assert "was made for another cell" in incomplete_message(tmp_path, stamp)
    (tmp_path / INSTALLED_MARKER).write_text(stamp, encoding="utf-8")
    assert is_installed(tmp_path, stamp)
