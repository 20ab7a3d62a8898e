"""The ``mdslab`` process ends as the interpreter would end it, minus the native teardown: same exit
status, threads joined, ``atexit`` callbacks run, every byte of output delivered."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mdslab import __version__

SCRIPT = """
import atexit, sys, threading, time
from mdslab.cli.process_exit import run_then_exit

log = open(sys.argv[1], "a")
atexit.register(lambda: (log.write("atexit\\n"), log.flush()))

def slow_worker():
    time.sleep(0.3)
    log.write("worker done\\n")
    log.flush()

def command():
    threading.Thread(target=slow_worker).start()
    sys.stdout.write("x" * 300_000 + "\\nend\\n")  # more than a pipe holds: must be flushed at exit
    {ending}

run_then_exit(command)
print("never printed")
"""


def _run(tmp_path: Path, ending: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = tmp_path / "log.txt"
    script = textwrap.dedent(SCRIPT).replace("{ending}", ending)
    done = subprocess.run(
        [sys.executable, "-c", script, str(log)], capture_output=True, text=True, timeout=60, check=False
    )
    return done, log.read_text().splitlines()


@pytest.mark.parametrize(
    ("ending", "status", "stderr"),
    [
        ("return None", 0, ""),
        ("raise SystemExit(3)", 3, ""),
        ("raise SystemExit('the lake is gone')", 1, "the lake is gone"),
        ("raise RuntimeError('boom')", 1, "RuntimeError: boom"),
        ("raise KeyboardInterrupt", 130, ""),
    ],
)
def test_status_threads_atexit_and_output_survive_the_exit(
    tmp_path: Path, ending: str, status: int, stderr: str
) -> None:
    done, log = _run(tmp_path, ending)
    assert done.returncode == status, done.stderr
    assert log == ["worker done", "atexit"]  # the thread is joined before the callbacks, as Python does
    assert done.stdout.endswith("x" * 1000 + "\nend\n") and "never printed" not in done.stdout
    assert len(done.stdout) == 300_000 + len("\nend\n")
    assert stderr in done.stderr
    if not stderr:
        assert done.stderr == ""


MDSLAB = Path(sys.executable).parent / "mdslab"


def _mdslab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MDSLAB), *args], capture_output=True, text=True, timeout=120, check=False)


def test_the_installed_program_uses_it() -> None:
    version = _mdslab("--version")
    assert (version.returncode, version.stdout.strip()) == (0, __version__)
    unknown = _mdslab("no-such-command")
    assert unknown.returncode == 2 and "No such command" in unknown.stderr
    assert "from mdslab.cli.main import main" in MDSLAB.read_text()  # the entry point, not the bare app
