"""Shared pytest configuration for fakedist's own tests; imports no torch.

tests/tooling runs without torch. The torch suites (tests/unit, tests/conformance) import it
first, from their own conftest (see _torch_first.py).
"""

pytest_plugins = ("pytester",)
