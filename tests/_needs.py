"""A tool a test needs: skipped where it is missing, but failed under CI (``CI`` set), where
a skip would hide a test that nobody then runs. ``nox -s unit`` installs what tests/tooling
needs (requirements/tooling.txt)."""

from __future__ import annotations

import os

import pytest


def require(found: bool, what: str) -> None:
    """Skip, or under CI fail, the calling test unless ``found``; ``what`` names the tool."""
    if found:
        return
    message = f"{what} is not installed (requirements/tooling.txt has it)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; under CI this test must run", pytrace=False)
    pytest.skip(message)
