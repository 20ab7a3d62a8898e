"""The same pipeline as Prefect 3 flows: `mdslab flow run financial-data-lake-pipeline`.

Each task calls `mdslab.orchestration.tasks`, like the Airflow DAGs. The silver and gold tasks are
cached by the versions of the tables they read and write: a run whose inputs and outputs are where the
last run left them returns the cached summary without opening a Spark session; any new bronze batch,
rebuilt table or deleted output changes the key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.client.schemas.objects import State
from prefect.context import TaskRunContext
from prefect.states import Completed
from prefect.tasks import exponential_backoff

from mdslab.orchestration import tasks
from mdslab.settings import Settings, load_settings
from mdslab.telemetry import quiet_libraries
from mdslab.workloads.lineage.events import RunRef, started_by
from mdslab.workloads.lineage.job_runs import reported_run

PREFECT_NAMESPACE = "prefect"  # OpenLineage namespace of the flow and task runs


def _layer_cache_key(_context: TaskRunContext, parameters: dict[str, Any]) -> str:
    layer = parameters["layer"]
    versions = tasks.layer_versions(parameters["settings"], layer)
    digest = hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:24]
    return f"mdslab-{layer}-{digest}"


def _flow_run() -> RunRef:
    """The running Prefect flow run, as an OpenLineage run (Prefect's own id)."""
    from prefect.runtime import flow_run

    return RunRef(PREFECT_NAMESPACE, str(flow_run.flow_name), str(flow_run.id))


@contextmanager
def _reported_flow(settings: Settings, description: str) -> Iterator[None]:
    """The flow run as an OpenLineage run: the root of its task runs and of every run they start."""
    flow = _flow_run()
    with reported_run(settings, flow.job, description, run_id=flow.run_id):
        yield


def _run(step: Any, settings: Settings, **kwargs: Any) -> tasks.Summary | State:
    """Run one task; nothing to do completes it as Skipped with the reason (downstream goes on). The
    task run is an OpenLineage run under its flow run, and the parent of the runs the task starts."""
    from prefect.runtime import task_run

    quiet_libraries(settings.log_level)
    flow = _flow_run()
    this = RunRef(PREFECT_NAMESPACE, f"{flow.job}.{task_run.name}", str(task_run.id), root=flow)
    with reported_run(settings, this.job, step.__doc__ or this.job, parent=flow, run_id=this.run_id), started_by(this):
        try:
            summary: tasks.Summary = step(settings, **kwargs)
        except tasks.NothingToDoError as exc:
            get_run_logger().info("skipped: %s", exc)
            return Completed(name="Skipped", message=str(exc))
    get_run_logger().info(summary["message"])
    return summary


@task(
    task_run_name="ensure_services",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    timeout_seconds=300,
)
def ensure_services(settings: Settings) -> tasks.Summary | State:
    """Start the embedded services (or check the external ones) and create the Kafka topics."""
    return _run(tasks.ensure_services, settings)


@task(
    task_run_name="send_simulated_events",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    timeout_seconds=600,
)
def send_simulated_events(settings: Settings, rows: int, seed: int) -> tasks.Summary | State:
    """With rows > 0, produce a simulated batch to Kafka (a batch sent before is not sent again)."""
    return _run(tasks.send_simulated_events, settings, rows=rows, seed=seed)


@task(
    task_run_name="consume_stream",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    timeout_seconds=3600,
)
def consume_stream(settings: Settings, timeout_s: float) -> tasks.Summary | State:
    """Kafka -> bronze until caught up, exactly once; a retry resumes where the tables end."""
    return _run(tasks.consume_stream, settings, timeout_s=timeout_s)


@task(
    task_run_name="extract_case_files",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    timeout_seconds=1800,
)
def extract_case_files(settings: Settings) -> tasks.Summary | State:
    """MongoDB case files -> bronze, incrementally and exactly once."""
    return _run(tasks.extract_case_files, settings)


@task(
    task_run_name="load_reference",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    timeout_seconds=1800,
)
def load_reference(settings: Settings, force: bool) -> tasks.Summary | State:
    """PostgreSQL reference data -> bronze."""
    return _run(tasks.build_layer, settings, layer="bronze", force=force)


@task(
    task_run_name="build_{layer}",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    timeout_seconds=1800,
    cache_key_fn=_layer_cache_key,
    cache_expiration=timedelta(days=7),
    persist_result=True,
)
def build_layer(settings: Settings, layer: str, force: bool) -> tasks.Summary | State:
    """Bronze -> silver or silver -> gold on Spark; cached by the versions of the tables involved."""
    return _run(tasks.build_layer, settings, layer=layer, force=force)


@task(task_run_name="quality_gate", timeout_seconds=600)
def quality_gate(settings: Settings, max_quarantine_share: float) -> tasks.Summary | State:
    """Fail the flow, naming every failed check, unless gold is fit to consume. Not retried."""
    return _run(tasks.quality_gate, settings, max_quarantine_share=max_quarantine_share)


@task(task_run_name="score_fraud", retries=1, retry_delay_seconds=30, timeout_seconds=1800)
def score_fraud(settings: Settings) -> tasks.Summary | State:
    """Score gold.fraud_features with the champion fraud model (skipped while there is none)."""
    return _run(tasks.score_fraud, settings)


@task(task_run_name="index_rag", retries=1, retry_delay_seconds=30, timeout_seconds=3600)
def index_rag(settings: Settings) -> tasks.Summary | State:
    """Bring the RAG index up to date with the curated tables."""
    return _run(tasks.index_rag, settings)


@task(task_run_name="train_fraud", retries=1, retry_delay_seconds=60, timeout_seconds=2700)
def train_fraud(settings: Settings) -> tasks.Summary | State:
    """Train and track the fraud model; promote it only if it beats the champion."""
    return _run(tasks.train_fraud, settings)


@flow(name="financial-data-lake-pipeline", log_prints=True)
def financial_data_lake_pipeline(
    simulate_rows: int = 0,
    seed: int = 42,
    consume_timeout_s: float = 600.0,
    force: bool = False,
    max_quarantine_share: float = 0.05,
) -> None:
    """Kafka -> bronze -> silver -> gold on Spark, the quality gate, then scoring and the RAG index.

    simulate_rows: transactions to simulate into Kafka first (0: consume what arrived); force: rebuild
    silver and gold even if their inputs did not change (and ignore the cache)."""
    settings = load_settings()
    with _reported_flow(settings, "Kafka -> bronze -> silver -> gold, the quality gate, scoring, the RAG index."):
        _pipeline(settings, simulate_rows, seed, consume_timeout_s, force, max_quarantine_share)


def _pipeline(
    settings: Settings,
    simulate_rows: int,
    seed: int,
    consume_timeout_s: float,
    force: bool,
    max_quarantine_share: float,
) -> None:
    ensure_services(settings)
    send_simulated_events(settings, simulate_rows, seed)
    consume_stream(settings, consume_timeout_s)
    extract_case_files(settings)
    load_reference(settings, force)
    for layer in ("silver", "gold"):
        build_layer.with_options(refresh_cache=force)(settings, layer, force)
    quality_gate(settings, max_quarantine_share)
    scored = score_fraud(settings, return_state=True)  # a scoring failure must not hold back the index
    index_rag(settings)
    if scored.is_failed():
        scored.result()  # raises the scoring error: the flow run fails with it


@flow(name="fraud-model-training", log_prints=True)
def fraud_model_training() -> None:
    """Train, register and maybe promote the fraud model from gold.fraud_features, then re-score gold."""
    settings = load_settings()
    with _reported_flow(settings, "Train, register and maybe promote the fraud model, then re-score gold."):
        train_fraud(settings)
        score_fraud(settings)


FLOWS = {f.name: f for f in (financial_data_lake_pipeline, fraud_model_training)}
