"""``python -m fakedist``: see fakedist.tooling.cli."""

from __future__ import annotations

import sys

from fakedist.tooling.cli import main

if __name__ == "__main__":
    sys.exit(main())
