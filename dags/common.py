"""What the lab's Airflow DAGs share: the gold tables as Assets, and running a task with the settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowSkipException

from mdslab.orchestration.tasks import NothingToDoError, Summary
from mdslab.settings import Settings, load_settings
from mdslab.telemetry import quiet_libraries
from mdslab.workloads.pipeline.runner import lakehouse

SCORES_TABLE = "gold.fraud_scores"
OWNER = "data-platform"


def table_asset(settings: Settings, table: str) -> Asset:
    """The Asset for a lake table: named after the table, located at its Delta URI, so that a
    downstream DAG scheduled on it sees the same table the lab reads."""
    return Asset(name=table, uri=lakehouse(settings).uri(table), group="lakehouse")


def run_task(step: Callable[..., Summary], **kwargs: Any) -> Summary:
    """Run one orchestration task with the settings of this process (read when the task runs, so a
    worker takes its own environment); nothing to do becomes a skipped task with the reason."""
    settings = load_settings()
    quiet_libraries(settings.log_level)
    try:
        return step(settings, **kwargs)
    except NothingToDoError as exc:
        raise AirflowSkipException(str(exc)) from exc
