"""Timeouts and delays: the one place that says how long a rank may wait, and the limits.

It imports only :mod:`fakedist.envvars`; the fidelities, the fault schedules and the plugin
all read it.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any

from fakedist import envvars

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_SECONDS",
    "RANK_SLACK",
    "TIMEOUT_ENV",
    "env_timeout",
    "parse_timeout",
]

TIMEOUT_ENV = envvars.TIMEOUT
DEFAULT_TIMEOUT = 60.0  # seconds a threaded/gloo body may run before it counts as hung
# The longest timeout or fault delay: a day, well inside what the OS waits accept (select and
# epoll take milliseconds in a C int: 3,000,000 s overflows them; threading.TIMEOUT_MAX).
MAX_SECONDS = min(86400.0, threading.TIMEOUT_MAX)
# Seconds past the timeout at which a rank cuts its own fault delay: by then the runner has
# reported it hung (in the collective it delays) and is stopping it.
RANK_SLACK = 1.0


def parse_timeout(value: Any, source: str) -> float:
    """Seconds in (0, :data:`MAX_SECONDS`] from ``source`` (marker, option or environment),
    or ValueError naming it."""
    try:
        seconds = float(value)
        ok = not isinstance(value, bool) and seconds > 0 and math.isfinite(seconds)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int too big for float
        ok = False
    if not ok:
        raise ValueError(f"{source}: timeout must be seconds > 0, got {value!r}")
    if seconds > MAX_SECONDS:
        raise ValueError(
            f"{source}: timeout must be at most {MAX_SECONDS:g} s (a day), got {value!r}"
        )
    return seconds


def env_timeout() -> float | None:
    """``FAKEDIST_TIMEOUT`` in seconds, or None when unset."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    return parse_timeout(raw, TIMEOUT_ENV) if raw else None
