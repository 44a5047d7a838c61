"""``python -m fakedist.tooling.action validate|run``: the steps action.yml calls."""

from __future__ import annotations

import os
import sys

from fakedist.tooling.action.run import main_run, main_validate

COMMANDS = {"validate": main_validate, "run": main_run}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in COMMANDS:
        got = " ".join(argv) or "nothing"
        print(
            f"python -m fakedist.tooling.action: expected one command ({' or '.join(COMMANDS)}),"
            f" got {got!r}",
            file=sys.stderr,
        )
        return 2
    return COMMANDS[argv[0]](os.environ)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
