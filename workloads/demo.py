"""The lab's main job: simulate, send the events through the ingestion API into Kafka, consume them
into bronze, run the medallion pipeline, summarise.

The CLI's ``mdslab demo`` is a thin shell over :func:`run_demo`: it starts the services and the API
and hands in the sender (the API is the roof's; this floor only knows the :class:`Target` protocol)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc

from mdslab.lakehouse import Lakehouse, TableInfo
from mdslab.settings import Settings
from mdslab.workloads.case_files.extract import ExtractReport, extract_case_files
from mdslab.workloads.ingestion.consumer import StreamConsumer, StreamReport
from mdslab.workloads.ingestion.sender import SendReport, Target
from mdslab.workloads.ingestion.stream_feed import FeedReport, feed_simulation
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.runner import PipelineReport, builds_in_full, run_pipeline
from mdslab.workloads.pipeline.step_runtime import SparkProvider
from mdslab.workloads.pipeline.warm_up import warm_up_spark
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import simulate

QUARANTINE_TABLES = ("silver.quarantine_transactions", "silver.quarantine_claims")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoReport:
    rows: int
    seed: int
    feed: FeedReport
    stream: StreamReport
    pipeline: PipelineReport
    tables: list[TableInfo]
    quarantine_reasons: dict[str, dict[str, int]]
    simulate_s: float
    send_s: float
    stream_s: float
    seconds: float
    spark_warm_up_s: float | None = None  # the background warm-up of a new session, when there was one
    case_files: ExtractReport | None = None

    def as_dict(self) -> dict[str, Any]:
        """The summary a script would read (``mdslab demo --json``)."""
        return {
            "rows": self.rows,
            "seed": self.seed,
            "batch_id": self.feed.batch_id,
            "sent": _sent(self.feed.sent),
            "streamed": {
                "batches": self.stream.batches,
                "bronze_rows": self.stream.bronze_rows,
                "dead_letters": self.stream.dead_letters,
            },
            "labels": {"rows": self.feed.labels.rows, "skipped": self.feed.labels.skipped},
            "planted_defects": self.feed.planted_defects,
            "case_files": None if self.case_files is None else self.case_files.as_dict(),
            "tables": [
                {
                    "name": t.name,
                    "layer": str(t.layer),
                    "version": t.version,
                    "rows": t.rows,
                    "files": t.files,
                }
                for t in self.tables
            ],
            "quarantined": {name: sum(codes.values()) for name, codes in self.quarantine_reasons.items()},
            "quarantine_reasons": self.quarantine_reasons,
            "steps": [
                {
                    "step": r.step,
                    "status": r.status,
                    "seconds": round(r.seconds, 2),
                    "rows_in": r.rows_in,
                    "rows_out": r.rows_out,
                    "inputs": r.inputs,
                    "outputs": r.outputs,
                }
                for r in self.pipeline.results
            ],
            "seconds": {
                "simulate": round(self.simulate_s, 2),
                "send": round(self.send_s, 2),
                "stream_to_bronze": round(self.stream_s, 2),
                "spark_session_start": round(self.pipeline.spark_start_s or 0.0, 2),
                "spark_warm_up": round(self.spark_warm_up_s or 0.0, 2),
                "waited_for_spark": round(self.pipeline.spark_wait_s, 2),
                "lake_to_spark": round(self.pipeline.lake_to_spark_s, 2),
                "pipeline": round(self.pipeline.seconds, 2),
                "pipeline_after_spark": round(self.pipeline.after_spark_s, 2),
                "total": round(self.seconds, 2),
            },
        }


def _sent(report: SendReport | None) -> dict[str, Any]:
    if report is None:
        return {"skipped": True}
    return {
        "skipped": False,
        "sent": report.total("sent"),
        "accepted": report.total("accepted"),
        "rejected": report.total("rejected"),
        "failed": report.total("failed"),
        "by_type": {name: {"sent": n, "accepted": report.accepted[name]} for name, n in report.sent.items()},
    }


def quarantine_reasons(lake: Lakehouse) -> dict[str, dict[str, int]]:
    """Rejected rows per quarantine table, by reason code."""
    reasons: dict[str, dict[str, int]] = {}
    for name in QUARANTINE_TABLES:
        version = lake.current_version(name)
        if version is None:
            continue
        codes = pc.list_flatten(lake.read_table(name, version=version, columns=["reason_codes"]).column("reason_codes"))
        reasons[name] = dict(Counter(codes.to_pylist()).most_common())
    return reasons


def run_demo(
    settings: Settings,
    *,
    rows: int,
    seed: int,
    target: Target,
    on_progress: Progress = lambda _msg: None,
    spark: SparkProvider | None = None,
) -> DemoReport:
    """Everything from simulation to gold. The same parameters as an earlier demo of this lab replay
    that run, which was fed before and is not sent again, and pipeline steps whose inputs did not
    change are skipped, so a re-run is quick and adds no rows; other parameters continue the world."""
    started = time.perf_counter()
    lake = lakehouse(settings)
    provider = spark or SparkProvider(settings)
    if spark is None and builds_in_full(lake):
        # A first build runs on Spark: start and warm the session while the events travel (its start
        # and first jobs would otherwise come after them; see mdslab.workloads.pipeline.warm_up).
        provider.start_in_background(lambda session: warm_up_spark(session, lake.registry))
    try:
        planned = next_run(settings.postgres, transactions=rows, seed=seed, reuse_same=True)
        on_progress(f"simulating {planned.describe}")
        data = simulate(planned.config)
        simulate_s = time.perf_counter() - started

        def sending(report: SendReport) -> None:
            on_progress(
                f"sending events to the ingestion API: {report.total('sent'):,} sent, "
                f"{report.total('accepted'):,} accepted, {report.total('rejected'):,} rejected"
            )

        on_progress("reference data into PostgreSQL, events to the ingestion API")
        feed = feed_simulation(settings, lake, data, target, resend=False, on_progress=sending)
        send_s = time.perf_counter() - started - simulate_s
        on_progress("consuming Kafka into bronze until caught up")
        stream = StreamConsumer(settings, lake).run(
            until_caught_up=True,
            on_batch=lambda r: on_progress(f"consuming Kafka into bronze: {sum(r.bronze_rows.values()):,} rows"),
        )
        on_progress("case files from MongoDB into bronze")
        case_files = extract_case_files(settings.mongo, lake, on_progress=on_progress)
        report = run_pipeline(
            settings,
            spark=provider,
            on_step=lambda name, index, total: on_progress(f"pipeline step {index + 1}/{total}: {name}"),
        )
    finally:
        if spark is None:
            provider.close()
    tables = [lake.info(spec.name) for spec in lake.registry]
    return DemoReport(
        rows,
        seed,
        feed,
        stream,
        report,
        tables,
        quarantine_reasons(lake),
        simulate_s,
        send_s,
        stream.seconds,
        time.perf_counter() - started,
        provider.warmed_in_s,
        case_files,
    )
