"""Run a server the CLI starts (the MLflow UI, Prometheus) in the foreground, and take all of it down
when the CLI is told to stop.

A service manager stops a command with SIGTERM, a person with Ctrl-C (SIGINT to the terminal's
foreground group). Either way the child and everything it started (uvicorn workers, huey consumers...)
must go: the child runs in a process group of its own, and a stop signal to us becomes SIGTERM to that
whole group, then SIGKILL to what is left after a grace period. Without it, ``mlflow ui`` outlived a
SIGTERM with its workers re-parented to init.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from types import FrameType

import psutil

from mdslab.polling import wait_until

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_in_foreground(command: Sequence[str], *, env: Mapping[str, str] | None = None, grace_s: float = 10.0) -> int:
    """Run ``command`` until it exits or we get SIGINT/SIGTERM; its exit code (negative: the signal
    that ended it). Must be called from the main thread (signal handlers)."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    process = subprocess.Popen(list(command), env=None if env is None else dict(env), start_new_session=True)
    try:
        while process.poll() is None and not stop.wait(0.2):
            pass
    finally:
        stop_group(process, grace_s=grace_s)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return process.returncode


def stop_group(process: subprocess.Popen[bytes], *, grace_s: float) -> int:
    """SIGTERM to the child's whole process group at once (its components stop in parallel), SIGKILL to
    what is left of the group after ``grace_s``; the child's exit code."""
    deadline = time.monotonic() + grace_s
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace_s)
    wait_until(lambda: not _group_alive(process.pid), timeout_s=deadline - time.monotonic(), interval_s=0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # workers that outlived their parent's exit
    process.wait()
    return process.returncode


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (zombies waiting for a parent do not count)."""
    for proc in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                return True
    return False
