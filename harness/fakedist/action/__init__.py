"""The composite GitHub Action's logic: validate inputs, run nox, report results.

``action.yml`` is a thin shell: every step calls ``python -m fakedist.action <command>``
with the inputs in ``FAKEDIST_INPUT_*`` environment variables (never interpolated into a
script). Stdlib only, so the validation step runs on the runner's Python before any install.
"""

from __future__ import annotations

__all__: list[str] = []
