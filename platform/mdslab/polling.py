"""Waiting for something to become true: the one poll-until-deadline loop of the lab (a service
answering, a supervisor coming up or going away, a process group ending, a server starting)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], *, timeout_s: float, interval_s: float) -> bool:
    """Call ``condition`` every ``interval_s`` until it returns True (then True) or ``timeout_s`` has
    passed (then False, after one last call at the deadline, so a slow last step is not missed).
    An exception from ``condition`` ends the wait: that is how a caller says "it will never happen"."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(max(0.0, min(interval_s, deadline - time.monotonic())))
