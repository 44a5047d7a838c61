"""Credentials out of what fakedist prints: ``https://user:token@host/`` -> ``https://***@host/``.

Index URLs may carry a user name and password or token; fakedist prints and outputs them
(``python -m fakedist matrix``, the Action's ``matrix`` output) only with those replaced.
The URLs used to install keep them.
"""

from __future__ import annotations

import re

from fakedist.tooling.matrix import Cell

__all__ = ["redact_url", "redacted_cell"]

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s]*)@")


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` part replaced by ``***@``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}***@", url)


def redacted_cell(cell: Cell) -> dict[str, str]:
    """:meth:`Cell.as_dict` with the index URL's credentials replaced."""
    data = cell.as_dict()
    data["index_url"] = redact_url(data["index_url"])
    return data
