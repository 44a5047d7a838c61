"""Shared fixtures for the conformance suite (the ``fake_world`` fixture comes from fakedist)."""

from __future__ import annotations

import pytest
from _semantics import FakeSemantics, expected

import _torch_first  # noqa: F401  (torch before any test: see tests/_torch_first.py)


@pytest.fixture(scope="session")
def fake_semantics() -> FakeSemantics:
    """The fake backend's data semantics on this torch, from matrix/fake_semantics.toml."""
    return expected()
