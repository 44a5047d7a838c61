"""Shared fixtures for the conformance suite (the ``fake_world`` fixture comes from fakedist)."""

from __future__ import annotations

import pytest
from _semantics import FakeSemantics, expected


@pytest.fixture(scope="session")
def fake_semantics() -> FakeSemantics:
    """The fake backend's data semantics on this torch, from matrix/fake_semantics.toml."""
    return expected()
