"""Where a hung rank waits: the collective it is in and the line of the user's code; and
which exceptions the pytest plugin reports at the test's own file and line."""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from collections.abc import Sequence

# Files whose outermost frame names the collective a rank waits in.
COLLECTIVE_FILES = ("distributed_c10d.py", "_functional_collectives.py")
_FRAME = re.compile(r'^\s*File "(?P<file>.+)", line (?P<line>\d+) in (?P<func>\S+)')

Frame = tuple[str, int, str]  # (filename, line, function), outermost first

AT_TEST = "_fakedist_at_test"  # an attribute on exceptions fakedist raises about a test


def at_test(exc: BaseException) -> BaseException:
    """Mark ``exc`` to be reported at the test's file and line, not where fakedist raised it."""
    setattr(exc, AT_TEST, True)
    return exc


def is_at_test(exc: BaseException) -> bool:
    """True for a marked exception and for any rank's failure (:class:`RankFailure`)."""
    from fakedist.fidelity.outcome import RankFailure

    return bool(getattr(exc, AT_TEST, False)) or isinstance(exc, RankFailure)


def _library_roots() -> tuple[str, ...]:
    roots = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]}
    for name in ("torch", "fakedist", "_pytest", "pytest", "pluggy"):
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            roots.add(os.path.dirname(os.path.abspath(path)))
    return tuple(sorted(roots))


def describe(frames: Sequence[Frame]) -> str:
    """``in all_reduce (test_x.py:12)``; ``outside any collective (test_x.py:9)``."""
    collective = next((func for file, _, func in frames if file.endswith(COLLECTIVE_FILES)), None)
    roots = _library_roots()
    user = [
        (file, line)
        for file, line, _ in frames
        if not os.path.abspath(file).startswith(roots) and not file.startswith("<")
    ]
    at = f" ({os.path.basename(user[-1][0])}:{user[-1][1]})" if user else ""
    return f"in {collective}{at}" if collective else f"outside any collective{at}"


def from_thread(ident: int) -> str:
    """Where the thread ``ident`` is now."""
    import traceback

    frame = sys._current_frames().get(ident)
    if frame is None:
        return "unknown (thread gone)"
    return describe([(f.filename, f.lineno or 0, f.name) for f in traceback.extract_stack(frame)])


def from_faulthandler(text: str) -> str:
    """Where the rank's thread is in a faulthandler dump (innermost frame first): the
    block that runs the worker's entry point, else the first one."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    main = next((b for b in blocks if "gloo.py" in b), blocks[0] if blocks else "")
    frames: list[Frame] = []
    for line in main.splitlines():
        m = _FRAME.match(line)
        if m:
            frames.append((m["file"], int(m["line"]), m["func"]))
    if not frames:
        return "unknown (no stack dumped)"
    return describe(frames[::-1])
