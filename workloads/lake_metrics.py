"""Prometheus metrics of the lake and the pipeline, read where they are recorded: table versions, rows
and last commits from the Delta logs, gold freshness from the step records in the commits, step runs
(built, up to date, failed; duration; rows) from `ops.step_runs`.

Batch steps come and go, so they cannot be scraped themselves; a long-running process (the API)
registers :class:`LakeCollector` and serves these figures for them. One snapshot is computed at most
every ``ttl_s`` seconds, so a scrape costs a few log reads, not a pass over the data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mdslab.errors import MdslabError
from mdslab.lakehouse import Lakehouse, TableInfo
from mdslab.settings import PostgresSettings
from mdslab.workloads.freshness import VISIBLE_TABLES, newest_arrival
from mdslab.workloads.pipeline import runlog
from mdslab.workloads.quality import GOLD_TABLES, freshness

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LakeSnapshot:
    tables: list[TableInfo]
    stale_gold: dict[str, list[str]]
    """Gold table -> why it is stale ([] when fresh); only tables that exist."""
    steps: list[runlog.StepTotals]
    last_runs: list[runlog.StepRun]
    taken_at: float
    seconds: float
    errors: list[str] = field(default_factory=list)
    published: dict[str, int] = field(default_factory=dict)
    """Audited table -> the version readers see (the quality gate's last publication)."""
    newest_visible: dict[str, datetime] = field(default_factory=dict)
    """Silver table -> arrival time of the newest event readers can see (end-to-end freshness)."""


def take_snapshot(lake: Lakehouse, pg: PostgresSettings) -> LakeSnapshot:
    """Everything the metrics and `mdslab status` show; parts that cannot be read are named in ``errors``."""
    started = time.perf_counter()
    errors: list[str] = []
    tables: list[TableInfo] = []
    stale: dict[str, list[str]] = {}
    published: dict[str, int] = {}
    newest: dict[str, datetime] = {}
    try:
        tables = [lake.info(spec.name) for spec in lake.registry]
        for name in GOLD_TABLES:
            if lake.exists(name):
                stale[name] = freshness(lake, name)[1]
        published = {name: publication.version for name, publication in lake.publications().items()}
        for name in VISIBLE_TABLES:
            arrived = newest_arrival(lake, name, published.get(name))
            if arrived is not None:
                newest[name] = arrived
    except (MdslabError, OSError) as exc:
        errors.append(f"lake: {exc}")
    steps: list[runlog.StepTotals] = []
    last_runs: list[runlog.StepRun] = []
    try:
        steps, last_runs = runlog.step_totals(pg), runlog.latest_runs(pg)
    except psycopg.Error as exc:
        errors.append(f"PostgreSQL: {exc}".strip())
    took = time.perf_counter() - started
    return LakeSnapshot(tables, stale, steps, last_runs, time.time(), took, errors, published, newest)


class LakeCollector(Collector):
    """A prometheus_client collector over :func:`take_snapshot`, cached for ``ttl_s``."""

    def __init__(self, lake: Lakehouse, pg: PostgresSettings, *, ttl_s: float = 30.0) -> None:
        self.lake = lake
        self.pg = pg
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._snapshot: LakeSnapshot | None = None

    def snapshot(self) -> LakeSnapshot:
        with self._lock:
            if self._snapshot is None or time.time() - self._snapshot.taken_at >= self.ttl_s:
                self._snapshot = take_snapshot(self.lake, self.pg)
                for error in self._snapshot.errors:
                    log.warning("lake metrics: %s", error)
            return self._snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snap = self.snapshot()
        yield from _table_families(snap)
        yield from _step_families(snap)
        up = GaugeMetricFamily("mdslab_lake_metrics_up", "1 when the last snapshot read the lake and the run log.")
        up.add_metric([], 0.0 if snap.errors else 1.0)
        took = GaugeMetricFamily("mdslab_lake_metrics_snapshot_seconds", "Time the last snapshot took.")
        took.add_metric([], snap.seconds)
        yield up
        yield took


def _table_families(snap: LakeSnapshot) -> Iterator[GaugeMetricFamily]:
    labels = ["table", "layer"]
    version = GaugeMetricFamily("mdslab_table_version", "Latest Delta version of the table.", labels=labels)
    rows = GaugeMetricFamily("mdslab_table_rows", "Rows in the latest version (from the log's stats).", labels=labels)
    committed = GaugeMetricFamily(
        "mdslab_table_last_commit_timestamp_seconds", "Unix time of the table's latest commit.", labels=labels
    )
    for info in snap.tables:
        if info.version is None:
            continue
        key = [info.name, str(info.layer)]
        version.add_metric(key, info.version)
        rows.add_metric(key, info.rows)
        if info.last_commit is not None:
            committed.add_metric(key, info.last_commit.timestamp())
    stale = GaugeMetricFamily(
        "mdslab_gold_stale",
        "1 when the gold table no longer matches its inputs (a newer input version, or changed outside its step).",
        labels=["table"],
    )
    for name, reasons in snap.stale_gold.items():
        stale.add_metric([name], 1.0 if reasons else 0.0)
    published = GaugeMetricFamily(
        "mdslab_table_published_version",
        "Version readers see: the one the quality gate last published (write-audit-publish).",
        labels=["table"],
    )
    for name, number in snap.published.items():
        published.add_metric([name], number)
    age = GaugeMetricFamily(
        "mdslab_published_data_age_seconds",
        "Seconds since the newest event readers can see (published silver and gold) arrived in bronze.",
        labels=["table"],
    )
    for name, arrived in snap.newest_visible.items():
        age.add_metric([name], max(0.0, snap.taken_at - arrived.timestamp()))
    yield from (version, rows, committed, stale, published, age)


def _step_families(snap: LakeSnapshot) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    runs = CounterMetricFamily(
        "mdslab_pipeline_step_runs",
        "Step runs by status (built, up_to_date, failed).",
        labels=["step", "layer", "status"],
    )
    success = GaugeMetricFamily(
        "mdslab_pipeline_step_last_success_timestamp_seconds",
        "Unix time the step last finished without error.",
        labels=["step", "layer"],
    )
    rows = GaugeMetricFamily(
        "mdslab_pipeline_step_rows", "Rows the step wrote per output in its last build.", labels=["step", "table"]
    )
    for totals in snap.steps:
        for status in ("built", "up_to_date", "failed"):
            runs.add_metric([totals.step, totals.layer, status], totals.runs.get(status, 0))
        if totals.last_success is not None:
            success.add_metric([totals.step, totals.layer], totals.last_success.timestamp())
        for table, count in totals.last_built_rows.items():
            rows.add_metric([totals.step, table], count)
    duration = GaugeMetricFamily(
        "mdslab_pipeline_step_last_duration_seconds", "Duration of the step's last run.", labels=["step", "layer"]
    )
    failed = GaugeMetricFamily(
        "mdslab_pipeline_step_last_failed", "1 when the step's last run failed.", labels=["step", "layer"]
    )
    for run in snap.last_runs:
        duration.add_metric([run.step, run.layer], run.seconds)
        failed.add_metric([run.step, run.layer], 1.0 if run.status == "failed" else 0.0)
    yield from (runs, success, rows, duration, failed)
