"""How the ``mdslab`` process ends: its own clean-up, then no native teardown.

A command that has read Delta tables through pyarrow (or DuckDB) can abort *after* its work, while the
interpreter tears down: a C++ thread pool still winding down meets CPython's finalization and the
process dies with ``terminate called without an active exception`` (SIGABRT, exit -6) although its
output was complete (seen once in CI on ``mdslab status --json``; apache/arrow#39862 and #34314 are the
same race). A caller such as a DAG task or a script then sees a failure that did not happen.

So the entry point does what the interpreter's exit would do for Python code, in the same order (join
the threads that are not daemons, run the ``atexit`` callbacks: lineage delivery, Ray and Spark
shutdown, the libraries' own finalizers, then flush the streams), and ends the process with
:func:`os._exit`, which skips the teardown of modules and C++ static objects where the race lives.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable


def exit_status(code: object) -> int:
    """The process status for a ``SystemExit`` code, as the interpreter maps it (a message is printed)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_then_exit(command: Callable[[], object]) -> None:
    """Run ``command`` (a Typer app), clean up as the interpreter would, and end the process."""
    try:
        command()
        status = 0
    except SystemExit as exc:
        status = exit_status(exc.code)
    except KeyboardInterrupt:
        status = 130
    except BaseException:  # printed as the interpreter would print it, then the same exit path
        import traceback

        traceback.print_exc()
        status = 1
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # the interpreter's own exit step, run here before os._exit
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`mdslab ... | head`)
            stream.flush()
    os._exit(status)
