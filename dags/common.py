"""What the lab's Airflow DAGs share: the gold tables as Assets, and running a task with the settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowSkipException

from mdslab.orchestration.tasks import NothingToDoError, Summary
from mdslab.settings import Settings, load_settings
from mdslab.telemetry import quiet_libraries
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.lineage.events import RunRef, started_by

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
        with started_by(_task_run()):
            return step(settings, **kwargs)
    except NothingToDoError as exc:
        raise AirflowSkipException(str(exc)) from exc


def _task_run() -> RunRef | None:
    """This task instance's OpenLineage run, as the provider reports it (its macros give the same ids
    its listener sends): the parent of every run the task starts, the DAG run their root."""
    from airflow.providers.openlineage.plugins import macros
    from airflow.sdk import get_current_context

    try:
        ti = get_current_context()["ti"]
    except Exception:  # not inside a running task (an import, a unit test): no parent
        return None
    root = RunRef(
        macros.lineage_root_job_namespace(ti), macros.lineage_root_job_name(ti), macros.lineage_root_run_id(ti)
    )
    namespace = macros.lineage_job_namespace()  # type: ignore[no-untyped-call]
    return RunRef(namespace, macros.lineage_job_name(ti), macros.lineage_run_id(ti), root)
