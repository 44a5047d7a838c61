"""The composite GitHub Action's logic: validate inputs, run nox, report results.

``action.yml`` is a thin shell: each step calls ``python -m fakedist.tooling.action <command>``.
``validate`` reads the inputs from ``FAKEDIST_INPUT_*`` environment variables (never
interpolated into a script) and hands its record of them on to ``run`` (``FAKEDIST_INPUTS``).
Stdlib only, so the validation step runs on the runner's Python before any install.
"""

from __future__ import annotations

__all__: list[str] = []
