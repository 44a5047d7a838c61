"""Matrix keys for the torch sweep: per-release test pins and the releases CI sweeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakedist.tooling.matrix import Matrix, MatrixError, load_matrix, select_cells

REPO_MATRIX = Path(__file__).resolve().parents[2] / "matrix" / "torch.toml"

BASE = """\
schema = 1

[defaults]
torch = ["2.13"]
variant = "cpu"
{compat}

[variants.cpu]
index_url = "https://example.org/whl/cpu"

[[torch]]
minor = "2.1"
version = "2.1.2"
python = ["3.11"]
variants = ["cpu"]
{requires}

[[torch]]
minor = "2.13"
version = "2.13.0"
python = ["3.11"]
variants = ["cpu"]
"""


def _load(tmp_path: Path, compat: str = "", requires: str = "") -> Matrix:
    path = tmp_path / "torch.toml"
    path.write_text(BASE.format(compat=compat, requires=requires), encoding="utf-8")
    return load_matrix(path)


def test_test_requires_reach_the_cell(tmp_path: Path) -> None:
    found = _load(tmp_path, requires='test_requires = ["numpy<2", "scipy>=1.9,<2"]')
    cells = select_cells(found, {"FAKEDIST_TORCH": "all"}, python="3.11").cells
    by_minor = {c.minor: c.test_requires for c in cells}
    assert by_minor == {"2.1": ("numpy<2", "scipy>=1.9,<2"), "2.13": ()}


@pytest.mark.parametrize(
    ("requires", "message"),
    [
        ('test_requires = ["--index-url https://x"]', "torch[2.1].test_requires[0]: "),
        ('test_requires = "numpy<2"', "torch[2.1].test_requires: expected a non-empty list"),
    ],
)
def test_bad_test_requires_name_the_key(tmp_path: Path, requires: str, message: str) -> None:
    with pytest.raises(MatrixError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _load(tmp_path, requires=requires)


def test_compat_lists_known_minors(tmp_path: Path) -> None:
    assert _load(tmp_path, compat='compat = ["2.1", "2.13"]').compat == ("2.1", "2.13")
    with pytest.raises(
        MatrixError, match=r"defaults.compat\[1\]: '2.9' has no \[\[torch\]\] entry"
    ):
        _load(tmp_path, compat='compat = ["2.1", "2.9"]')


def test_repository_sweep_covers_every_release() -> None:
    found = load_matrix(REPO_MATRIX)
    # CI (nox -s ci) sweeps what COMPAT.md claims: every release of the matrix but nightly
    assert list(found.compat) == [r.minor for r in found.releases if not r.nightly]
    old = {r.minor: r.test_requires for r in found.releases}
    assert old["2.1"] == ("numpy<2", "setuptools<81")
    assert old["2.2"] == ("numpy<2",)
    assert old["2.13"] == ()
