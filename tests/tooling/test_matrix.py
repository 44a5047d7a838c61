"""fakedist.tooling.matrix: loading, validation (a test per bad-file case), selection, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fakedist.tooling.matrix as matrix_module
from fakedist.tooling.devices import DriverVersion
from fakedist.tooling.matrix import (
    Cell,
    MatrixError,
    Skipped,
    find_matrix_file,
    github_matrix,
    load_matrix,
    select_cells,
)

ROOT = Path(__file__).resolve().parents[2]
REPO_MATRIX = ROOT / "matrix" / "torch.toml"

GOOD = """\
schema = 1

[defaults]
torch = ["2.13"]
variant = "cpu"

[variants.cpu]
index_url = "https://example.org/whl/cpu"
nightly_index_url = "https://example.org/whl/nightly/cpu"

[variants.cu126]
cuda = "12.6"
min_driver = "525.60.13"
index_url = "https://example.org/whl/cu126"
nightly_index_url = "https://example.org/whl/nightly/cu126"

[variants.cu130]
cuda = "13.0"
min_driver = "580"
index_url = "https://example.org/whl/cu130"

[[torch]]
minor = "2.5"
version = "2.5.1"
python = ["3.9", "3.10", "3.11"]
variants = ["cpu"]

[[torch]]
minor = "2.13"
version = "2.13.0"
python = ["3.10", "3.11"]
variants = ["cpu", "cu126", "cu130"]

[[torch]]
minor = "nightly"
version = "2.16.0.dev0"
nightly = true
python = ["3.11"]
variants = ["cpu", "cu126"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "torch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    message = str(info.value)
    assert "\n" not in message
    return message.replace(str(path), "FILE")


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write(tmp_path, GOOD)


# ------------------------------------------------------------------------------- loading


def test_repository_matrix_lists_every_minor_with_its_latest_patch() -> None:
    matrix = load_matrix(REPO_MATRIX)
    assert [(r.minor, r.version) for r in matrix.releases] == [
        ("2.1", "2.1.2"),
        ("2.2", "2.2.2"),
        ("2.3", "2.3.1"),
        ("2.4", "2.4.1"),
        ("2.5", "2.5.1"),
        ("2.6", "2.6.0"),
        ("2.7", "2.7.1"),
        ("2.8", "2.8.0"),
        ("2.9", "2.9.1"),
        ("2.10", "2.10.0"),
        ("2.11", "2.11.0"),
        ("2.12", "2.12.1"),
        ("2.13", "2.13.0"),
        ("2.14", "2.14.1"),
        ("2.15", "2.15.0"),
        ("nightly", "2.16.0.dev0"),
    ]
    assert matrix.default_torch == ("2.13", "2.14")
    assert matrix.default_variant == "cpu"


def test_repository_matrix_cuda_builds_per_release() -> None:
    matrix = load_matrix(REPO_MATRIX)
    names = {r.minor: [v.name for v in r.variants] for r in matrix.releases}
    assert names["2.5"] == ["cpu", "cu118", "cu121", "cu124"]
    assert names["2.7"] == ["cpu", "cu118", "cu126", "cu128"]
    assert names["2.9"] == ["cpu", "cu126", "cu128", "cu130"]
    assert matrix.variants["cu118"].min_driver == DriverVersion.parse("450.80.02")
    assert matrix.variants["cu128"].min_driver == DriverVersion.parse("525.60.13")
    assert matrix.variants["cpu"].index_url == "https://download.pytorch.org/whl/cpu"
    assert (
        matrix.variants["cpu"].nightly_index_url == "https://download.pytorch.org/whl/nightly/cpu"
    )


def test_load_resolves_variants_and_nightly(good: Path) -> None:
    matrix = load_matrix(good)
    release = matrix.release("2.13")
    assert release is not None
    assert release.python == ("3.10", "3.11")
    cu126 = release.variant("cu126")
    assert cu126 is not None
    assert (cu126.cuda, str(cu126.min_driver)) == ("12.6", "525.60.13")
    nightly = matrix.release("nightly")
    assert nightly is not None
    assert nightly.nightly is True
    assert matrix.release("2.0") is None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'variants = ["cpu", "cu126", "cu130"]',
            'variants = ["cpu", "cu999"]',
            "FILE: torch[2.13].variants[1]: unknown variant 'cu999'",
        ),
        (
            'variants = ["cpu", "cu126", "cu130"]',
            'variants = ["cpu", "gpu"]',
            "FILE: torch[2.13].variants[1]: 'gpu' is not a variant name",
        ),
        (
            "[variants.cu130]",
            "[variants.cuda13]",
            "FILE: variants.cuda13: unknown variant 'cuda13' (expected cpu, xpu, cuNNN or rocmX.Y)",
        ),
        (
            'version = "2.13.0"',
            'version = "2.13.x"',
            "FILE: torch[2.13].version: '2.13.x' is not a PEP 440 version like 2.13.0",
        ),
        (
            'version = "2.13.0"',
            'version = "2.14.1"',
            "FILE: torch[2.13].version: '2.14.1' is not a 2.13 release",
        ),
        (
            'version = "2.13.0"',
            "version = 2.13",
            "FILE: torch[2.13].version: expected a string, got 2.13",
        ),
        (
            'minor = "2.5"\nversion = "2.5.1"',
            'minor = "2.13"\nversion = "2.13.1"',
            "FILE: torch[1].minor: duplicate entry '2.13'",
        ),
        (
            'python = ["3.10", "3.11"]',
            'python = ["3.10", "3.10"]',
            "FILE: torch[2.13].python[1]: duplicate entry '3.10'",
        ),
        (
            'python = ["3.10", "3.11"]',
            'python = ["3.10", "py3.11"]',
            "FILE: torch[2.13].python[1]: 'py3.11' is not a Python version like 3.11",
        ),
        (
            'index_url = "https://example.org/whl/cu126"',
            'index_url = "http://example.org/cu126"',
            "FILE: variants.cu126.index_url: index URL 'http://example.org/cu126' is not https",
        ),
        ('min_driver = "525.60.13"\n', "", "FILE: variants.cu126.min_driver: missing field"),
        (
            'min_driver = "525.60.13"',
            'min_driver = "r525"',
            "FILE: variants.cu126.min_driver: 'r525' is not a driver version like 525.60.13",
        ),
        (
            'cuda = "12.6"',
            'cuda = "12.8"',
            "FILE: variants.cu126.cuda: '12.8' does not match the variant name 'cu126'",
        ),
        ('python = ["3.9", "3.10", "3.11"]\n', "", "FILE: torch[0].python: missing field"),
        ('variant = "cpu"', 'variant = "cpu"\nextra = 1', "FILE: defaults.extra: unknown key"),
        ("schema = 1", "schema = 1\ncolour = 'blue'", "FILE: colour: unknown key"),
        ("schema = 1", "schema = 2", "FILE: schema: unsupported schema 2 (expected 1)"),
        (
            'torch = ["2.13"]',
            'torch = ["2.12"]',
            "FILE: defaults.torch[0]: '2.12' has no [[torch]] entry",
        ),
        (
            'nightly_index_url = "https://example.org/whl/nightly/cu126"\n',
            "",
            "FILE: torch[nightly].variants: variant 'cu126' has no nightly_index_url",
        ),
        (
            '[variants.cpu]\nindex_url = "https://example.org/whl/cpu"',
            '[variants.cpu]\ncuda = "12.6"\nindex_url = "https://example.org/whl/cpu"',
            "FILE: variants.cpu.cuda: only CUDA variants have cuda",
        ),
    ],
)
def test_bad_file_names_file_key_and_value(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    assert load_error(tmp_path, GOOD.replace(old, new, 1)) == expected


def test_syntax_error(tmp_path: Path) -> None:
    message = load_error(tmp_path, GOOD.replace("schema = 1", "schema = = 1"))
    assert message.startswith("FILE: TOML syntax error: ")
    assert "line 1" in message


def test_empty_file(tmp_path: Path) -> None:
    assert load_error(tmp_path, "  \n# only a comment\n".replace("# only a comment", "")) == (
        "FILE: the matrix file is empty"
    )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match=r"cannot read the matrix file \(No such file"):
        load_matrix(tmp_path / "absent.toml")


def test_missing_top_level_table(tmp_path: Path) -> None:
    text = GOOD.split("[variants.cpu]")[0]
    assert load_error(tmp_path, text) == "FILE: variants: missing field"


def test_find_matrix_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "matrix").mkdir()
    (tmp_path / "matrix" / "torch.toml").write_text(GOOD, encoding="utf-8")
    assert find_matrix_file({}, tmp_path) == tmp_path / "matrix" / "torch.toml"
    assert find_matrix_file({"FAKEDIST_MATRIX": "/x/m.toml"}, tmp_path) == Path("/x/m.toml")
    # Not under the given directory: the working directory's matrix/ comes next.
    monkeypatch.chdir(tmp_path)
    assert find_matrix_file({}, tmp_path / "elsewhere") == Path("matrix") / "torch.toml"
    # Outside a project: the default matrix this fakedist ships (in the package when installed
    # from a wheel, the checkout's own file when editable), the repository's matrix/torch.toml.
    monkeypatch.chdir(tmp_path / "matrix")
    shipped = find_matrix_file({}, tmp_path / "matrix")
    assert shipped == matrix_module.packaged_matrix_file()
    assert shipped.read_bytes() == (ROOT / "matrix" / "torch.toml").read_bytes()
    # A fakedist that ships none (a checkout without matrix/) says so and names the variable.
    monkeypatch.setattr(matrix_module, "packaged_matrix_file", lambda: None)
    with pytest.raises(MatrixError) as info:
        find_matrix_file({}, tmp_path / "matrix")
    assert str(info.value) == (
        f"{tmp_path}/matrix/matrix/torch.toml: no matrix file here, and this fakedist ships no"
        " default matrix (fakedist/tooling/torch.toml); set FAKEDIST_MATRIX to a matrix TOML file"
    )


# ----------------------------------------------------------------------------- selection


def cells(good: Path, env: dict[str, str], **kw: object) -> tuple[list[str], list[Skipped]]:
    selection = select_cells(load_matrix(good), env, python="3.11", **kw)  # type: ignore[arg-type]
    return [c.id for c in selection.cells], list(selection.skipped)


def test_defaults(good: Path) -> None:
    selection = select_cells(load_matrix(good), {}, python="3.11")
    assert selection.cells == (
        Cell("2.13.0", "2.13", "cpu", "3.11", "https://example.org/whl/cpu"),
    )
    assert selection.cells[0].requirement == "torch==2.13.0"
    assert selection.skipped == ()


def test_repository_defaults_are_the_ci_cells() -> None:
    selection = select_cells(load_matrix(REPO_MATRIX), {}, kind="cpu", python="3.11")
    assert [(c.id, c.requirement) for c in selection.cells] == [
        ("2.13-cpu", "torch==2.13.0"),
        ("2.14-cpu", "torch==2.14.1"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.13", ["2.13-cpu"]),
        ("2.5, 2.13", ["2.5-cpu", "2.13-cpu"]),
        ("2.13,2.13.0,2.13", ["2.13-cpu"]),
        ("default", ["2.13-cpu"]),
        ("all", ["2.5-cpu", "2.13-cpu", "nightly-cpu"]),
        ("nightly", ["nightly-cpu"]),
    ],
)
def test_fakedist_torch(good: Path, value: str, expected: list[str]) -> None:
    assert cells(good, {"FAKEDIST_TORCH": value})[0] == expected


def test_exact_patch_version_overrides_the_data(good: Path) -> None:
    (cell,) = select_cells(load_matrix(good), {"FAKEDIST_TORCH": "2.5.0"}, python="3.11").cells
    assert (cell.id, cell.torch, cell.requirement) == ("2.5-cpu", "2.5.0", "torch==2.5.0")


def test_nightly_cell_uses_nightly_index_and_lower_bound(good: Path) -> None:
    env = {"FAKEDIST_TORCH": "nightly"}
    (cell,) = select_cells(load_matrix(good), env, python="3.11").cells
    assert cell.nightly is True
    assert cell.requirement == "torch>=2.16.0.dev0"
    assert cell.index_url == "https://example.org/whl/nightly/cpu"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"FAKEDIST_TORCH": "2.x"},
            "FAKEDIST_TORCH: '2.x' is not a torch version "
            "(use e.g. 2.13, 2.13.0, all, default, nightly)",
        ),
        (
            {"FAKEDIST_TORCH": "2.0"},
            "FAKEDIST_TORCH: torch 2.0 is not in FILE (known: 2.5, 2.13, nightly)",
        ),
        ({"FAKEDIST_TORCH": " , "}, "FAKEDIST_TORCH: ' , ' names no torch version"),
        ({"FAKEDIST_PYTHON": "311"}, "FAKEDIST_PYTHON: '311' is not a Python version like 3.11"),
        (
            {"FAKEDIST_CUDA": "cu999"},
            "FAKEDIST_CUDA: unknown variant 'cu999' (known: cpu, cu126, cu130)",
        ),
        (
            {"FAKEDIST_TORCH_INDEX": "mirror.local/simple"},
            "FAKEDIST_TORCH_INDEX: 'mirror.local/simple' is not an index URL or 'default'",
        ),
        (
            {"FAKEDIST_WHEELHOUSE": "/nonexistent/wheels"},
            "FAKEDIST_WHEELHOUSE: '/nonexistent/wheels' is not a directory",
        ),
    ],
)
def test_bad_overrides(good: Path, env: dict[str, str], expected: str) -> None:
    with pytest.raises(MatrixError) as info:
        select_cells(load_matrix(good), env, python="3.11")
    assert str(info.value).replace(str(good), "FILE") == expected


def test_cpu_variant_not_cuda_with_kind_cuda(good: Path) -> None:
    with pytest.raises(MatrixError, match=r"^FAKEDIST_CUDA: 'cpu' is not a CUDA variant$"):
        select_cells(load_matrix(good), {"FAKEDIST_CUDA": "cpu"}, kind="cuda", python="3.11")


def test_python_without_wheels_is_skipped_with_reason(good: Path) -> None:
    ids, skipped = cells(good, {"FAKEDIST_TORCH": "2.5,2.13", "FAKEDIST_PYTHON": "3.9"})
    assert ids == ["2.5-cpu"]
    assert skipped == [
        Skipped("2.13-cpu", "torch 2.13.0 has no wheel for Python 3.9 (wheels: 3.10, 3.11)")
    ]


def test_python_defaults_to_the_running_interpreter(good: Path) -> None:
    import sys

    (cell,) = select_cells(load_matrix(good), {}).cells
    assert cell.python == f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_forced_variant_missing_is_skipped_with_reason(good: Path) -> None:
    ids, skipped = cells(good, {"FAKEDIST_TORCH": "all", "FAKEDIST_CUDA": "cu126"})
    assert ids == ["2.13-cu126", "nightly-cu126"]
    assert skipped == [Skipped("2.5-cu126", "torch 2.5.1 has no cu126 build (builds: cpu)")]


def test_kind_cpu_ignores_forced_cuda(good: Path) -> None:
    assert cells(good, {"FAKEDIST_CUDA": "cu126"}, kind="cpu")[0] == ["2.13-cpu"]


def test_kind_cuda_without_driver_takes_newest_build(good: Path) -> None:
    ids, skipped = cells(good, {"FAKEDIST_TORCH": "all"}, kind="cuda")
    assert ids == ["2.13-cu130", "nightly-cu126"]
    assert skipped == [Skipped("2.5-cuda", "torch 2.5.1 has no CUDA build (builds: cpu)")]


@pytest.mark.parametrize(
    ("driver", "expected"), [("525.60.13", "2.13-cu126"), ("580.65.06", "2.13-cu130")]
)
def test_kind_cuda_with_driver(good: Path, driver: str, expected: str) -> None:
    assert cells(good, {}, kind="cuda", driver=DriverVersion.parse(driver))[0] == [expected]


def test_kind_cuda_driver_too_old_is_skipped_naming_the_driver(good: Path) -> None:
    ids, skipped = cells(good, {}, kind="cuda", driver=DriverVersion.parse("450.80.02"))
    assert ids == []
    assert skipped == [
        Skipped(
            "2.13-cuda",
            "torch 2.13.0 needs NVIDIA driver >= 525.60.13 (for its cu126 build); "
            "this machine has driver 450.80.02",
        )
    ]


def test_index_override_default_url_and_template(good: Path, tmp_path: Path) -> None:
    matrix = load_matrix(good)
    env = {"FAKEDIST_TORCH_INDEX": "default", "FAKEDIST_CUDA": "cu126"}
    assert select_cells(matrix, env, python="3.11").cells[0].index_url is None
    env["FAKEDIST_TORCH_INDEX"] = "https://mirror.local/torch/{variant}/simple"
    (cell,) = select_cells(matrix, env, python="3.11").cells
    assert cell.index_url == "https://mirror.local/torch/cu126/simple"
    env["FAKEDIST_TORCH_INDEX"] = "file:///srv/mirror"
    assert select_cells(matrix, env, python="3.11").cells[0].index_url == "file:///srv/mirror"


def test_wheelhouse_is_carried_per_cell(good: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (cell,) = select_cells(
        load_matrix(good), {"FAKEDIST_WHEELHOUSE": str(wheels)}, python="3.11"
    ).cells
    assert cell.wheelhouse == str(wheels.resolve())


# --------------------------------------------------------------------------------- JSON


def test_github_matrix(good: Path) -> None:
    matrix = load_matrix(good)
    env = {"FAKEDIST_TORCH": "2.5,2.13", "FAKEDIST_TORCH_INDEX": ""}
    selection = select_cells(matrix, env, python="3.11")
    obj = github_matrix(selection.cells)
    assert json.loads(json.dumps(obj)) == {
        "include": [
            {
                "id": "2.5-cpu",
                "torch": "2.5.1",
                "minor": "2.5",
                "variant": "cpu",
                "python": "3.11",
                "index_url": "https://example.org/whl/cpu",
                "requirement": "torch==2.5.1",
            },
            {
                "id": "2.13-cpu",
                "torch": "2.13.0",
                "minor": "2.13",
                "variant": "cpu",
                "python": "3.11",
                "index_url": "https://example.org/whl/cpu",
                "requirement": "torch==2.13.0",
            },
        ]
    }
    default = select_cells(matrix, {"FAKEDIST_TORCH_INDEX": "default"}, python="3.11")
    assert github_matrix(default.cells)["include"][0]["index_url"] == "default"
    assert github_matrix([]) == {"include": []}
