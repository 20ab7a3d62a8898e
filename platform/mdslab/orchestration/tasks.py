"""The pipeline's tasks as the DAGs and the flows run them.

Each task takes the settings and plain parameters, calls the same library functions as the CLI, and
returns a small JSON-able summary: it becomes the Airflow XCom / Prefect result and the line in the
log that says what happened. A task that has nothing to work on raises :class:`NothingToDoError`, which the
orchestrators turn into a skipped task (Airflow) or a completed one named ``Skipped`` (Prefect).
"""

from __future__ import annotations

import atexit
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mdslab.errors import MdslabError
from mdslab.settings import Settings

if TYPE_CHECKING:
    from mdslab.workloads.pipeline.step_runtime import SparkProvider

log = logging.getLogger("mdslab.orchestration")

Summary = dict[str, Any]

# The pipeline's layers, in run order; each is one task (one Spark session for silver and for gold).
LAYERS = ("bronze", "silver", "gold")


class NothingToDoError(MdslabError):
    """The task's input does not exist yet (e.g. no champion model): skip it, do not fail the run."""


class StreamNotCaughtUpError(MdslabError):
    """The consumer ran out of time before bronze held everything the topics held."""


_spark: dict[str, SparkProvider] = {}  # by the compute settings it was started with
_spark_lock = threading.Lock()


def process_spark(settings: Settings) -> SparkProvider:
    """The Spark session every task of this process shares, started on first use, stopped at exit.

    `airflow dags test` and a Prefect flow run all their tasks in one process: silver, gold and training
    then share one session instead of starting three (~30 s each on 2 cores). A worker that runs one task
    per process (Airflow's executors) starts one, as before. The session lives in a thread of its own, so
    that Ray's processes, tied to the thread that started them, outlive the task thread that asked."""
    from mdslab.workloads.pipeline.step_runtime import SparkProvider

    key = settings.compute.model_dump_json()
    with _spark_lock:
        provider = _spark.get(key)
        if provider is None:
            provider = _spark[key] = SparkProvider(settings, own_thread=True)
            atexit.register(provider.close)
    return provider


def _said(summary: Summary, line: str) -> Summary:
    log.info(line)
    return summary | {"message": line}


def ensure_services(settings: Settings) -> Summary:
    """Embedded services started (external ones checked) and the topics created."""
    from mdslab.workloads.bootstrap import ensure_platform

    report = ensure_platform(settings)
    services = {r.service: r.detail for r in report.services}
    return _said(
        {"services": services, "created": report.created},
        f"services healthy: {', '.join(services)}; " + ("; ".join(report.created) or "topics already there"),
    )


def send_simulated_events(settings: Settings, *, rows: int, seed: int) -> Summary:
    """Play the source system: simulate ``rows`` transactions (and their claims and reference data)
    and produce them to the topics. ``rows`` 0 sends nothing (production runs consume what came).
    Parameters this lab's simulator already ran with replay that run (a retry sends nothing twice);
    new ones continue the simulated world in its next time window."""
    from mdslab.eventbus import EventPublisher
    from mdslab.workloads.ingestion.events import Topics
    from mdslab.workloads.ingestion.sender import KafkaTarget
    from mdslab.workloads.ingestion.stream_feed import feed_simulation
    from mdslab.workloads.lake import lakehouse
    from mdslab.workloads.simulation_runs import next_run
    from mdslab.workloads.simulator import simulate

    if rows <= 0:
        raise NothingToDoError("simulate_rows is 0: consuming what the topics already hold")
    data = simulate(next_run(settings.postgres, transactions=rows, seed=seed, reuse_same=True).config)
    target = KafkaTarget(
        EventPublisher(settings.kafka, client_id="mdslab-simulator"), Topics(settings.kafka.topic_prefix)
    )
    try:
        fed = feed_simulation(settings, lakehouse(settings), data, target, resend=False)
    finally:
        target.close()
    if fed.sent is None:
        return _said({"batch_id": fed.batch_id, "sent": 0}, f"batch {fed.batch_id} was sent before: not sent again")
    sent = fed.sent.total("sent")
    return _said(
        {"batch_id": fed.batch_id, "sent": sent, "planted_defects": fed.planted_defects},
        f"sent {sent:,} simulated events (batch {fed.batch_id}) to Kafka {settings.kafka.bootstrap_servers}",
    )


def consume_stream(settings: Settings, *, timeout_s: float) -> Summary:
    """Consume the topics into bronze until caught up, exactly once (offsets live in the Delta commits,
    so a retry resumes where the table ends)."""
    from mdslab.workloads.ingestion.consumer import StreamConsumer
    from mdslab.workloads.lake import lakehouse

    stop = threading.Event()
    timer = threading.Timer(timeout_s, stop.set)
    timer.start()
    consumer = StreamConsumer(settings, lakehouse(settings))
    try:
        report = consumer.run(stop=stop, until_caught_up=True)
    finally:
        timer.cancel()
    summary = {
        "bronze_rows": report.bronze_rows,
        "dead_letters": report.dead_letters,
        "batches": report.batches,
        "seconds": round(report.seconds, 2),
    }
    written = ", ".join(f"{t} +{n:,}" for t, n in report.bronze_rows.items()) or "nothing new"
    if stop.is_set():  # the timer ended the run; caught up, it returns by itself
        raise StreamNotCaughtUpError(
            f"bronze did not catch up with {settings.kafka.bootstrap_servers} within {timeout_s:.0f} s "
            f"({written} so far, kept): the retry resumes from the table; raise consume_timeout_s for big backlogs"
        )
    return _said(summary, f"bronze caught up: {written}; {report.dead_letters:,} dead letters")


def extract_case_files(settings: Settings) -> Summary:
    """The claims system's case files (MongoDB) -> bronze.claim_documents: new and changed documents and
    deletions since the last extraction, exactly once (a retry reads again what was not committed)."""
    from mdslab.workloads.case_files.extract import extract_case_files as extract
    from mdslab.workloads.lake import lakehouse

    report = extract(settings.mongo, lakehouse(settings))
    return _said(report.as_dict(), report.line())


def build_layer(settings: Settings, layer: str, *, force: bool = False) -> Summary:
    """Run the pipeline steps of one layer; steps whose inputs did not change are skipped."""
    from mdslab.workloads.pipeline.runner import run_pipeline

    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}, not {layer!r}")
    # the gate task publishes; Spark starts only if a step builds on it
    report = run_pipeline(settings, steps=[layer], force=force, publish=False, spark=process_spark(settings))
    steps = [
        {"step": r.step, "status": r.status, "rows_out": r.rows_out, "outputs": r.outputs, "inputs": r.inputs}
        for r in report.results
    ]
    built = [r.step for r in report.results if r.status == "built"]
    return _said(
        {"steps": steps, "seconds": round(report.seconds, 2)},
        f"{layer}: built {', '.join(built)}" if built else f"{layer}: every step up to date",
    )


def quality_gate(settings: Settings, *, max_quarantine_share: float) -> Summary:
    """Audit the latest silver and gold builds and publish them; raises QualityGateError naming every
    failed check, and then nothing is published (consumers keep reading the previous versions)."""
    from mdslab.workloads.pipeline.runner import audit_lake
    from mdslab.workloads.quality import enforce

    report = enforce(
        audit_lake(settings, run_id="gate-task", what="quality gate task", max_quarantine_share=max_quarantine_share)
    )
    published = ", ".join(f"{name} v{version}" for name, version in sorted(report.audited.items()))
    summary = {"checks": len(report.checks), "published": report.audited}
    return _said(summary, f"{report.reason()}; published {published}")


def score_fraud(settings: Settings) -> Summary:
    """Score gold.fraud_features with the champion fraud model into gold.fraud_scores."""
    from mdslab.ml.score import NoChampionError, score
    from mdslab.tracking import configure
    from mdslab.workloads.lake import lakehouse

    try:
        result = score(settings, lakehouse(settings), configure(settings))
    except NoChampionError as exc:
        raise NothingToDoError(f"{exc} (or let the fraud_model_training DAG / flow run)") from exc
    what = "up to date" if result.skipped else f"{result.rows:,} rows -> version {result.version}"
    return _said(
        {"table": result.table, "version": result.version, "rows": result.rows, "model_version": result.model_version},
        f"{result.table}: {what} ({result.model} version {result.model_version})",
    )


def index_rag(settings: Settings, *, docs: list[str] | None = None) -> Summary:
    """Bring the RAG index up to date with the curated tables (and the given docs folders)."""
    from mdslab.llm.operations import index_lake
    from mdslab.workloads.lake import lakehouse

    report = index_lake(settings, lakehouse(settings), docs=[Path(d) for d in docs or []])
    line = (
        f"RAG index version {report.version}: {report.embedded:,} chunks embedded, {report.relabelled:,} relabelled, "
        f"{report.removed:,} removed ({report.total_chunks:,} in all)"
        if report.version is not None
        else f"RAG index up to date ({report.total_chunks:,} chunks)"
    )
    return _said(report.as_dict(), line)


def train_fraud(settings: Settings) -> Summary:
    """Train the fraud model from gold.fraud_features, register it, promote it if it is better."""
    from mdslab.ml.features import FRAUD
    from mdslab.ml.train import train_from_lake
    from mdslab.tracking import configure
    from mdslab.workloads.lake import lakehouse

    result = train_from_lake(settings, lakehouse(settings), configure(settings), FRAUD, spark=process_spark(settings))
    return _said(result.as_dict(), f"{result.registered_model} version {result.version}: {result.promotion.message}")


def layer_versions(settings: Settings, layer: str) -> dict[str, int | None]:
    """The current version of every lake table the layer's steps read or write (None: missing), plus
    where the lake is: what a layer's result depends on, so the Prefect flows' cache key."""
    from mdslab.workloads.lake import lakehouse
    from mdslab.workloads.pipeline.steps import select_steps

    lake = lakehouse(settings)
    names = sorted({name for step in select_steps([layer]) for name in (*step.inputs, *step.outputs)})
    return {lake.uri(name): lake.version(name) for name in names}
