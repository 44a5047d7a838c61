"""fakedist.semantics: loading the per-release table, picking values, reporting drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakedist import semantics

ROOT = Path(__file__).resolve().parents[2]


def _table(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake_semantics.toml"
    path.write_text(body, encoding="utf-8")
    return path


def _full(extra: str = "") -> str:
    lines = ["schema = 1", ""]
    for name in semantics.FACTS:
        if name == "all_gather.writes":
            continue
        lines += [f'[facts."{name}"]', 'history = { "2.1" = "x" }', ""]
    return "\n".join(lines) + extra


def test_project_table_covers_every_fact_and_release() -> None:
    table = semantics.load(ROOT / "matrix" / "fake_semantics.toml")
    assert set(table.facts) == set(semantics.FACTS)
    for minor in range(1, 16):
        values = table.values(f"2.{minor}.0")
        assert all(v is not None for v in values.values()), (minor, values)


def test_value_holds_from_its_release_until_the_next(tmp_path: Path) -> None:
    body = _full(
        '\n[facts."all_gather.writes"]\nhistory = { "2.1" = "untouched", "2.13" = "writes" }\n'
    )
    table = semantics.load(_table(tmp_path, body))
    fact = table.facts["all_gather.writes"]
    assert fact.at((2, 12)) == "untouched"
    assert fact.at((2, 13)) == "writes"
    assert table.values("2.16.0.dev20261201+cpu")["all_gather.writes"] == "writes"
    assert fact.since((2, 14)) == "2.13"


def test_drift_names_the_fact_the_version_and_the_table_value(tmp_path: Path) -> None:
    body = _full(
        '\n[facts."all_gather.writes"]\nhistory = { "2.1" = "untouched", "2.13" = "writes" }\n'
    )
    table = semantics.load(_table(tmp_path, body))
    lines = semantics.drift(table, "2.13.0+cpu", {"all_gather.writes": "untouched"})
    assert lines == [
        "all_gather.writes: torch 2.13.0+cpu gives 'untouched'; fake_semantics.toml says"
        " 'writes' (from 2.13)"
    ]
    assert semantics.drift(table, "2.12.1", {"all_gather.writes": "untouched"}) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("schema = 2\n", "schema: expected 1, got 2"),
        ('schema = 1\n[facts."nope.fact"]\nhistory = { "2.1" = 1 }\n', "facts.nope.fact: no probe"),
        ("schema = 1\n", "facts: no entry for all_gather.output_requires_grad, "),
        ("not toml [", "not a TOML file"),
    ],
)
def test_bad_tables_are_one_line_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(semantics.SemanticsError) as info:
        semantics.load(_table(tmp_path, body))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_history_key_names_the_fact(tmp_path: Path) -> None:
    body = _full('\n[facts."all_gather.writes"]\nhistory = { "two" = "writes" }\n')
    with pytest.raises(semantics.SemanticsError, match=r"facts.all_gather.writes.history: 'two'"):
        semantics.load(_table(tmp_path, body))
