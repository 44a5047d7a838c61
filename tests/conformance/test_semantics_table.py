"""The running torch against matrix/fake_semantics.toml: each fact probed, one test per fact.

A failure here means the installed torch's fake backend (through fakedist) behaves differently
from what the table says for this release: a new torch changed behaviour, or the table is wrong.
The message is one line naming the fact, the torch version and the table's value.
"""

from __future__ import annotations

import pytest
import torch
from _semantics import TABLE_PATH

from fakedist import semantics

TABLE = semantics.load(TABLE_PATH)


@pytest.mark.parametrize("fact", sorted(semantics.FACTS))
def test_running_torch_matches_the_table(fact: str) -> None:
    drift = semantics.drift(TABLE, torch.__version__, semantics.probe([fact]))
    if drift:
        pytest.fail(drift[0], pytrace=False)


def test_the_table_has_a_value_for_this_torch() -> None:
    values = TABLE.values(torch.__version__)
    assert set(values) == set(semantics.FACTS)
    assert all(v is not None for v in values.values()), values
