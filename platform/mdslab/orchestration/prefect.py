"""Prefect as the lab runs it: the environment (set before Prefect is imported, since it reads its
settings then) and the task runs of a finished flow run, for the CLI's summary."""

from __future__ import annotations

import os
from dataclasses import dataclass
from uuid import UUID

from mdslab.settings import Settings


def prefect_environment(settings: Settings) -> dict[str, str]:
    """Prefect's home (its ephemeral database and cached results) in the state dir, no telemetry (with
    it the ephemeral server logs "database is locked"), the lab's loggers in the flow run logs, and the
    server's API when one is configured."""
    environment = {
        "PREFECT_HOME": str(settings.state_dir / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "mdslab",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    if settings.orchestration.prefect_api_url:
        environment["PREFECT_API_URL"] = settings.orchestration.prefect_api_url
    return environment


def configure(settings: Settings) -> None:
    """Apply :func:`prefect_environment` to this process; call before importing prefect. Variables the
    user set win."""
    for key, value in prefect_environment(settings).items():
        os.environ.setdefault(key, value)


@dataclass(frozen=True)
class TaskRunSummary:
    name: str
    state: str
    message: str
    seconds: float


def task_runs(flow_run_id: UUID) -> list[TaskRunSummary]:
    """The task runs of one flow run, in start order."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    runs.sort(key=lambda r: (r.start_time or r.expected_start_time or r.created) or 0)
    return [
        TaskRunSummary(
            r.name or "?",
            (r.state.name or "?") if r.state else "?",
            (r.state.message or "") if r.state else "",
            r.total_run_time.total_seconds(),
        )
        for r in runs
    ]
