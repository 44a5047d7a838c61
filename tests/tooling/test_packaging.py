"""The default matrix ships with fakedist: a wheel built from the sources (through an sdist
when uv builds it) runs ``python -m fakedist matrix`` from any folder, in a fresh
environment without torch, and carries ``matrix/torch.toml`` byte for byte."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from fakedist.tooling import matrix

ROOT = Path(__file__).resolve().parents[2]
# What a build reads: the metadata, the build script, the package and the matrix it ships.
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "matrix/torch.toml")


def _uv() -> str | None:
    """uv next to this interpreter (nox -s unit installs it there), else on PATH."""
    here = Path(sys.executable).parent / "uv"
    return str(here) if here.is_file() else shutil.which("uv")


def _run(*argv: str | Path, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKEDIST_", "VIRTUAL_ENV"))}
    proc = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _sources(dest: Path) -> Path:
    """A copy of what the build reads, so building writes nothing into the checkout."""
    for name in SOURCES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "torch.toml")
    shutil.copytree(ROOT / "harness" / "fakedist", dest / "harness" / "fakedist", ignore=ignore)
    return dest


def _installed(tmp_path: Path) -> tuple[Path, Path]:
    """(the wheel, the fresh environment's python with only that wheel in it)."""
    src, dist, env = _sources(tmp_path / "src"), tmp_path / "dist", tmp_path / "env"
    uv = _uv()
    if uv is not None:
        _run(uv, "build", "--quiet", "--out-dir", dist, src)  # sdist, then the wheel from it
        _run(uv, "venv", "--quiet", "--python", sys.executable, env)
        (wheel,) = dist.glob("*.whl")
        python = env / "bin" / "python"
        _run(uv, "pip", "install", "--quiet", "--python", python, "--no-deps", wheel)
    else:
        _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, src)
        _run(sys.executable, "-m", "venv", env)
        (wheel,) = dist.glob("*.whl")
        python = env / "bin" / "python"
        _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel)
    return wheel, python


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _installed(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_carries_the_repositorys_matrix(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as whl:
        shipped = whl.read("fakedist/tooling/torch.toml")
    assert shipped == (ROOT / "matrix" / "torch.toml").read_bytes()
    sdists = list(wheel.parent.glob("*.tar.gz"))
    for sdist in sdists:  # uv builds the wheel from the sdist: it carries the matrix too
        with tarfile.open(sdist) as tar:
            assert any(n.endswith("/matrix/torch.toml") for n in tar.getnames())


def test_matrix_runs_from_any_folder_without_torch(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, python = installed
    probe = "import importlib.util as u; print(u.find_spec('torch') is None)"
    assert _run(python, "-c", probe).strip() == "True"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    text = _run(python, "-m", "fakedist", "matrix", cwd=elsewhere)
    in_tree = _run(sys.executable, "-m", "fakedist", "matrix", cwd=ROOT)
    assert text == in_tree
    assert text.startswith("2.13-cpu: torch==2.13.0 python ")
    code = "from fakedist.tooling import matrix as m; print(m.find_matrix_file({}))"
    where = Path(_run(python, "-c", code, cwd=elsewhere).strip())
    assert where.parent.name == "tooling"  # the packaged copy, not a checkout's


def test_an_installed_fakedist_finds_its_default_matrix() -> None:
    found = matrix.packaged_matrix_file()
    assert found is not None
    assert found.read_bytes() == (ROOT / "matrix" / "torch.toml").read_bytes()
