"""A server the CLI runs in the foreground goes with everything it started when the CLI gets SIGTERM
or SIGINT (a real process tree: the CLI's stand-in, a server, and the server's own worker)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

SERVER = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    signal.signal(signal.SIGTERM, lambda *_: None)  # a server slow to stop: the grace period, then SIGKILL
    open(sys.argv[1], "w").write(f"{worker.pid}\\n")
    time.sleep(300)
    """
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_takes_the_server_and_its_workers_down(tmp_path: Path, signum: int) -> None:
    pids = tmp_path / "pids"
    cli = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from mdslab.cli.foreground import run_in_foreground; "
            f"sys.exit(run_in_foreground([sys.executable, '-c', {SERVER!r}, {str(pids)!r}], grace_s=1.0))",
        ]
    )
    deadline = time.monotonic() + 30
    while not (pids.exists() and pids.read_text().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.1)
    tree = [child.pid for child in psutil.Process(cli.pid).children(recursive=True)]
    assert len(tree) == 2, tree  # the server and its worker

    cli.send_signal(signum)
    cli.wait(30)

    assert [pid for pid in tree if _alive(pid)] == []
