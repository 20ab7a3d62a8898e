"""Logs and process metrics every long-running process shares.

Logs are readable lines on a terminal by default; with ``MDSLAB_LOG_FORMAT=json`` every record is one
JSON object per line (time, level, logger, message, plus the exception and any ``extra`` fields), the
shape log shippers (Alloy, Vector, Fluent Bit) parse without rules.
"""

from __future__ import annotations

import json
import logging
import sys
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
