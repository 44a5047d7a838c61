"""The harness tooling: matrix, installs, drivers, nox sessions, the CLI and the Action.

This half imports no torch and is tested without it. It reaches the runtime in one place only,
:mod:`fakedist.tooling.probe` (what ``python -m fakedist doctor`` reports about the installed
torch), and lazily there.
"""
