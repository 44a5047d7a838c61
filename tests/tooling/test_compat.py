"""fakedist.tooling.compat: JUnit counts, run records, COMPAT.md, and the claims that rest on it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fakedist.tooling import compat, matrix

ROOT = Path(__file__).resolve().parents[2]

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="6">
<testcase classname="tests.conformance.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.conformance.test_a" name="test_ok2" time="0.1"/>
<testcase classname="tests.conformance.test_a" name="test_bad" time="0.1">
  <failure message="assert 1 == 2">trace</failure></testcase>
<testcase classname="tests.conformance.test_a" name="test_err" time="0.1">
  <error message="fixture broke">trace</error></testcase>
<testcase classname="tests.conformance.test_b" name="test_gpu" time="0.0">
  <skipped type="pytest.skip" message="tests/conformance/test_b.py:9: needs 1 CUDA device"/>
</testcase>
<testcase classname="tests.conformance.test_b" name="test_gpu2" time="0.0">
  <skipped type="pytest.skip" message="needs 1 CUDA device"/></testcase>
</testsuite></testsuites>
"""


def test_count_junit_separates_failures_errors_and_groups_skip_reasons(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT, encoding="utf-8")
    assert compat.count_junit(path) == (2, 1, 1, 2, {"needs 1 CUDA device": 2})


@pytest.mark.parametrize(("content", "message"), [(b"", "is empty"), (b"<a>", "not valid XML")])
def test_unreadable_junit_becomes_the_runs_problem(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "junit-2.4.xml"
    path.write_bytes(content)
    run = compat.record(
        "2.4", "2.4.1", "cpu", '{"version": "2.4.1+cu121", "cuda": "12.1"}', path, 3
    )
    assert run.problem is not None
    assert message in run.problem
    assert not run.green


def test_record_without_a_torch_build_says_torch_did_not_install(tmp_path: Path) -> None:
    run = compat.record("2.1", "2.1.2", "cpu", "", tmp_path / "missing.xml", 12.0)
    assert run.problem == "torch did not install or import"
    assert compat.not_green([run]) == ["torch 2.1: torch did not install or import"]


def test_save_load_render_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT, encoding="utf-8")
    green = compat.Run(
        "2.13", "2.13.0", "2.13.0+cpu", None, "cpu", 270, 0, 0, 7, 51.2, {"needs 1 CUDA device": 7}
    )
    red = compat.record(
        "2.9", "2.9.1", "cpu", '{"version": "2.9.1+cu128", "cuda": "12.8"}', path, 80.0
    )
    for run in (green, red):
        compat.save(run, tmp_path / "runs")
    runs = compat.load_runs(tmp_path / "runs")
    assert [r.minor for r in runs] == ["2.9", "2.13"]  # release order, not string order
    text = compat.render(runs, "2026-12-03", "Linux x86_64")
    assert "| 2.9 | `2.9.1+cu128` (CUDA 12.8 build, run on CPU) | 2 | 1 | 1 | 2 | 80 s |" in text
    assert "| 2.13 | `2.13.0+cpu` (CPU build) | 270 | 0 | 0 | 7 | 51 s |" in text
    assert "- 7 x needs 1 CUDA device" in text
    assert "torch 2.13" in text.splitlines()[7]
    assert compat.not_green(runs) == ["torch 2.9: 1 failed, 1 errors, 2 passed"]


def test_build_note_names_a_cuda_build_in_a_cpu_cell() -> None:
    assert compat.build_note("2.14-cpu", "cpu", "2.14.1+cu130", "13.0") == (
        "2.14-cpu: the index served torch 2.14.1+cu130, a CUDA 13.0 build, running on CPU"
    )
    assert compat.build_note("2.13-cpu", "cpu", "2.13.0+cpu", None) is None
    assert compat.build_note("2.14-cu130", "cu130", "2.14.1+cu130", "13.0") is None


# -------------------------------------------------------------- the committed COMPAT.md


def _compat_rows() -> dict[str, list[str]]:
    text = (ROOT / "matrix" / "COMPAT.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and re.fullmatch(r"\d+\.\d+", cells[0]):
            rows[cells[0]] = cells
    return rows


def test_compat_md_covers_every_release_of_the_matrix_green() -> None:
    found = matrix.load_matrix(ROOT / "matrix" / "torch.toml")
    rows = _compat_rows()
    for release in found.releases:
        if release.nightly:
            continue
        assert release.minor in rows, f"COMPAT.md has no row for torch {release.minor}"
        row = rows[release.minor]
        assert release.version in row[1], f"COMPAT.md ran {row[1]} for {release.version}"
        assert (row[3], row[4]) == ("0", "0"), f"torch {release.minor}: {row}"
        assert int(row[2]) > 0


def test_readme_states_the_range_compat_md_proves() -> None:
    text = (ROOT / "matrix" / "COMPAT.md").read_text(encoding="utf-8")
    claimed = re.search(r"Supported \(0 failed, 0 errors\): torch (\S+ to \S+)", text)
    assert claimed is not None
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"every torch from {claimed[1]}" in readme.replace("\n", " ")
    assert "matrix/COMPAT.md" in readme
