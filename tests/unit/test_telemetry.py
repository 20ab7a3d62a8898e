"""Structured logs: with MDSLAB_LOG_FORMAT=json every line a process writes is one JSON object."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from mdslab.telemetry import JsonFormatter


def test_a_record_becomes_one_json_object_with_its_extra_fields() -> None:
    record = logging.LogRecord("mdslab.test", logging.WARNING, __file__, 1, "lag is %d", (42,), None)
    record.topic = "transactions"
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "lag is 42" and entry["level"] == "warning" and entry["logger"] == "mdslab.test"
    assert entry["topic"] == "transactions"
    assert entry["ts"].endswith("+00:00")
    assert "\n" not in line


def test_an_exception_is_kept_in_the_same_line() -> None:
    try:
        raise ValueError("bad amount")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: bad amount" in entry["exception"]


def test_the_cli_logs_json_lines_when_asked(tmp_path: object) -> None:
    code = (
        "import logging; from mdslab.cli.context import settings; settings(); "
        "logging.getLogger('mdslab.demo').warning('started', extra={'rows': 5})"
    )
    env = os.environ | {"MDSLAB_LOG_FORMAT": "json", "MDSLAB_STATE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    (line,) = done.stderr.strip().splitlines()
    assert json.loads(line) | {"ts": None} == {
        "ts": None, "level": "warning", "logger": "mdslab.demo", "message": "started", "rows": 5
    }  # fmt: skip


def test_library_chatter_is_quiet_by_default_and_all_there_at_debug(monkeypatch: pytest.MonkeyPatch) -> None:

    from mdslab.telemetry import QUIET_LIBRARY_ENVIRONMENT, QUIET_LOGGERS, quiet_libraries

    for key in QUIET_LIBRARY_ENVIRONMENT:
        monkeypatch.setenv(key, "recorded")  # so that the undo removes what quiet_libraries sets
        monkeypatch.delenv(key)
    for name in QUIET_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    quiet_libraries("DEBUG")
    assert not set(QUIET_LIBRARY_ENVIRONMENT) & set(os.environ)
    assert all(logging.getLogger(name).level == logging.NOTSET for name in QUIET_LOGGERS)

    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "INFO")  # what a person set wins
    quiet_libraries("WARNING")
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "INFO"
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert logging.getLogger("py4j").getEffectiveLevel() == logging.WARNING
    assert not logging.getLogger("py4j").isEnabledFor(logging.INFO)  # "Error while receiving." tracebacks
