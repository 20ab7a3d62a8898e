"""Which lines of `airflow dags test` a person needs on the console; the rest goes to its log file.

A run of the pipeline DAG prints ~260 lines: Airflow's own INFO records of every task (state updates,
XComs, rendered fields), library retries and the JVM's shutdown noise. What a person acts on is the
lab's own lines (what each task did), warnings and errors with their tracebacks, and why a task was
skipped. The format is Airflow 3's structlog console renderer:
``2026-12-06T16:26:38.526078Z [info     ] message [logger] key=value ...``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RECORD = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[(?P<level>\w+)\s*\] (?P<rest>.*)$")
LOGGER = re.compile(r" \[(?P<logger>[\w.]+)\](?: |$)")
SHOWN_LEVELS = frozenset({"error", "critical", "exception"})


@dataclass
class ConsoleFilter:
    """Fed the output line by line; says whether each line goes to the console.

    A record continues on the following lines that do not start a new record (a traceback): they go
    where the record went."""

    showing: bool = False

    def shows(self, line: str) -> bool:
        record = RECORD.match(line)
        if record is None:
            return self.showing
        level, rest = record["level"].lower(), record["rest"]
        logger = LOGGER.search(rest)
        name = logger["logger"] if logger else ""
        self.showing = (
            level in SHOWN_LEVELS
            or name.startswith("mdslab")
            or (level == "warning" and name != "py.warnings")
            or rest.startswith("Skipping task.")
        )
        return self.showing
