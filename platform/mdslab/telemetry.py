"""Logs and process metrics every long-running process shares.

Logs are readable lines on a terminal by default; with ``MDSLAB_LOG_FORMAT=json`` every record is one
JSON object per line (time, level, logger, message, plus the exception and any ``extra`` fields), the
shape log shippers (Alloy, Vector, Fluent Bit) parse without rules.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

# Attributes every LogRecord has; anything else came in through ``extra=`` and is logged as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")})
        return json.dumps(entry, default=str)


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    return handler


# What the libraries the lab drives print by default into a person's terminal, and how each is told to
# keep it for DEBUG. Environment variables, because the libraries read them when imported or started
# (the CLI imports them after this runs): variables the user set win.
QUIET_LIBRARY_ENVIRONMENT = {
    "MLFLOW_LOGGING_LEVEL": "WARNING",  # "Creating initial MLflow database tables", "Detected uv project" ...
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # tqdm bars, written even into pipes and logs
}
# Loggers whose routine messages are not a problem a person has to act on.
QUIET_LOGGERS = {
    # "Token authentication is enabled for this Ray cluster": the lab keeps it enabled on purpose
    "ray._private.authentication.authentication_token_setup": logging.ERROR,
    # "Failed to resolve installed pip version": the lab's venv is built by uv, without pip
    "mlflow.utils.environment": logging.ERROR,
    # "Error while receiving." with a ConnectionResetError traceback, at INFO, each time a Spark session
    # closes its gateway: Airflow task logs (INFO) showed 7 of them on tasks that succeeded
    "py4j": logging.WARNING,
    # "error ignored terminating <psycopg.Pipeline ...>: pipeline aborted", twice per `train`: MLflow's
    # log_model logs the run's metrics again; its store catches the duplicate-key error and skips them
    "psycopg": logging.ERROR,
}


def quiet_libraries(level: str) -> None:
    """Keep library chatter off the console unless ``level`` is DEBUG (then everything shows)."""
    if level.upper() == "DEBUG":
        return
    for key, value in QUIET_LIBRARY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    for name, logger_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(logger_level)
    # MLflow's hint about integer columns in a signature: the lab's integer features are never null
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
    # in a notebook kernel, importing MLflow imports tqdm.auto, which asks for ipywidgets the lab has no use for
    warnings.filterwarnings("ignore", message="IProgress not found")


def register_process_metrics(registry: CollectorRegistry) -> None:
    """CPU, memory, open files of this process and the Python version, on a registry of our own (the
    default registry has them; ours start empty)."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)


def prometheus_config(
    template: Path,
    targets: dict[str, str],
    *,
    rules: Path,
    scrape_interval: str | None = None,
) -> dict[str, Any]:
    """observability/prometheus/prometheus.yml with each named job's target replaced (job -> host:port)
    and the rule file made absolute: one scrape config for the native run, `mdslab prometheus` and the
    tests, whose processes listen on other ports."""
    import yaml

    config: dict[str, Any] = yaml.safe_load(template.read_text())
    if scrape_interval is not None:
        config["global"].update({"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval})
    config["rule_files"] = [str(rules)]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    unknown = set(targets) - set(jobs)
    if unknown:
        raise ValueError(f"no scrape job named {', '.join(sorted(unknown))} in {template}")
    for name, address in targets.items():
        jobs[name]["static_configs"] = [{"targets": [address]}]
    return config
