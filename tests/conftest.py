"""Shared pytest configuration for fakedist's own tests."""

pytest_plugins = ("pytester",)
