"""The steps of bench/ingest.py that go through the API (warm-up, closed-loop batch and single POSTs, the
fixed rate), and bronze as they see it: each step's figures join what the client saw with when bronze made
the rows queryable, found row by row through the Kafka offsets every bronze commit records.
"""

from __future__ import annotations

import bisect
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from _harness import Advance, free_port, percentiles
from _http_load import Requests, closed_loop, open_loop, run_async
from _ingest_stack import Events, Service

from mdslab.settings import Settings
from mdslab.workloads.ingestion.events import TRANSACTIONS, Topics
from mdslab.workloads.lake import lakehouse

BRONZE = TRANSACTIONS.bronze_table
FRESHNESS_COLUMNS = ["event_id", "kafka_partition", "kafka_offset", "kafka_timestamp", "ingested_at"]


class BronzeWatch:
    """Follows ``bronze.transactions``: its row count now, and each commit's time and Kafka offsets."""

    def __init__(self, settings: Settings) -> None:
        self.lake = lakehouse(settings)
        self.topic = Topics(settings.kafka.topic_prefix).of(TRANSACTIONS)
        self._table: Any = None

    def rows(self) -> int:
        if self._table is None:
            if not self.lake.exists(BRONZE):
                return 0
            self._table = self.lake.delta(BRONZE)
        else:
            self._table.update_incremental()
        return int(self._table.count())

    def commits(self) -> list[tuple[int, dict[int, int]]]:
        """(timestamp ms, partition -> next offset) of every commit that moved an offset, oldest first."""
        prefix = f"kafka:{self.topic}:"
        found = []
        for entry in sorted(self.lake.delta(BRONZE).history(), key=lambda entry: int(entry["version"])):
            raw = entry.get("mdslab")
            meta = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
            offsets = (meta.get("offsets") or {}).items()
            ends = {int(app.removeprefix(prefix)): int(end) for app, end in offsets if app.startswith(prefix)}
            if ends and "timestamp" in entry:
                found.append((int(entry["timestamp"]), ends))
        return found

    def freshness(self, event_times_ms: dict[str, float]) -> dict[str, Any]:
        """Per event: event time -> the Kafka create timestamp (the API's producer), -> the consumer's batch
        start (``ingested_at``), -> the commit that made the row queryable."""
        rows = self.lake.read_table(BRONZE, columns=FRESHNESS_COLUMNS)
        ids = rows.column("event_id").to_pylist()
        keep = [index for index, event_id in enumerate(ids) if event_id in event_times_ms]
        rows = rows.take(pa.array(keep, type=pa.int64()))
        event_ms = np.array([event_times_ms[ids[index]] for index in keep], dtype=np.float64)
        by_partition: dict[int, tuple[list[int], list[int]]] = {}
        for stamp, ends in self.commits():
            for partition, end in ends.items():
                by_partition.setdefault(partition, ([], []))[0].append(end)
                by_partition[partition][1].append(stamp)
        partitions, offsets = rows.column("kafka_partition").to_pylist(), rows.column("kafka_offset").to_pylist()
        committed = np.array(
            [
                by_partition[p][1][bisect.bisect_right(by_partition[p][0], o)]
                for p, o in zip(partitions, offsets, strict=True)
            ],
            dtype=np.float64,
        )
        kafka_ms, batch_ms = _millis(rows.column("kafka_timestamp")), _millis(rows.column("ingested_at"))
        return {
            "events": len(keep),
            "event_to_queryable_s": percentiles((committed - event_ms) / 1000.0),
            "event_to_kafka_s": percentiles((kafka_ms - event_ms) / 1000.0),
            "kafka_to_batch_start_s": percentiles((batch_ms - kafka_ms) / 1000.0),
            "batch_start_to_commit_s": percentiles((committed - batch_ms) / 1000.0),
        }


def _millis(column: pa.ChunkedArray) -> np.ndarray:
    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    millis: np.ndarray = micros.astype(np.float64) / 1000.0
    return millis


class Stack:
    """The running path under load: the API and consumer subprocesses, bronze, and what was accepted."""

    def __init__(self, settings: Settings, services: list[Service], timeout_s: float, logs: Path) -> None:
        self.settings, self.services, self.timeout_s, self.logs = settings, services, timeout_s, logs
        self.host = settings.api.host
        self.port = free_port(self.host)
        self.watch = BronzeWatch(settings)
        self.expected_rows = 0  # accepted so far, all steps

    @property
    def api_key(self) -> str:
        return self.settings.api.api_key.get_secret_value()

    def into_bronze(self, requests: Requests) -> dict[str, Any]:
        """Wait for bronze to hold every accepted event; end to end = first POST -> the commit of the last."""
        self.expected_rows += requests.accepted
        deadline = time.monotonic() + self.timeout_s
        while (seen := self.watch.rows()) < self.expected_rows and time.monotonic() < deadline:
            for service in self.services:
                service.check()
            time.sleep(0.05)
        figures: dict[str, Any] = {"bronze_rows_after": seen, "caught_up": seen >= self.expected_rows}
        if figures["caught_up"] and requests.sent:
            last_commit = max(stamp for stamp, _ in self.watch.commits()) / 1000.0
            seconds = last_commit - requests.wall(min(requests.sent))
            figures["end_to_end_seconds"] = round(seconds, 3)
            figures["end_to_end_events_per_s"] = round(requests.accepted / seconds) if seconds > 0 else 0
            figures["last_202_to_last_commit_s"] = round(last_commit - requests.wall(max(requests.done)), 3)
        if figures["caught_up"] and requests.fresh:
            figures["freshness"] = self.watch.freshness(requests.event_times_ms)
        return figures


def client_figures(requests: Requests) -> dict[str, Any]:
    seconds = (max(requests.done) - min(requests.sent)) if requests.done else 0.0
    return {
        "requests": len(requests.done),
        "connections": requests.connections,
        "accepted_events": requests.accepted,
        "errors": requests.errors,
        "accept_seconds": round(seconds, 3),
        "accepted_events_per_s": round(requests.accepted / seconds) if seconds > 0 else 0,
        "requests_per_s": round(len(requests.done) / seconds, 1) if seconds > 0 else 0,
        "latency_ms": percentiles(np.subtract(requests.done, requests.scheduled), scale=1000.0),
        "service_time_ms": percentiles(np.subtract(requests.done, requests.sent), scale=1000.0),
    }


def step_closed(
    stack: Stack, events: Events, batch_size: int, clients: int, advance: Advance, *, fresh: bool = True
) -> tuple[dict[str, Any], Requests]:
    """``clients`` connections POSTing lists of ``batch_size`` events (one event: a single POST) back to back."""
    bodies = []
    for start in range(0, len(events.payloads), batch_size):
        chunk = events.payloads[start : start + batch_size]
        body = chunk[0] if batch_size == 1 else b"[" + b",".join(chunk) + b"]"
        bodies.append((body, [str(orjson.loads(payload)["event_id"]) for payload in chunk]))
    requests = run_async(closed_loop(stack.host, stack.port, stack.api_key, bodies, clients, advance))
    requests.fresh = fresh
    figures = {"events": len(events.payloads), "batch_size": batch_size, "clients": clients}
    return figures | client_figures(requests) | stack.into_bronze(requests), requests


def step_rate(stack: Stack, events: Events, rate: float, max_connections: int, advance: Advance) -> dict[str, Any]:
    """Single-event POSTs on an open-loop schedule, latency from each request's scheduled send time."""
    documents = [orjson.loads(payload) for payload in events.payloads]
    requests = run_async(open_loop(stack.host, stack.port, stack.api_key, documents, rate, max_connections, advance))
    figures: dict[str, Any] = {"rate": rate, "scheduled_requests": len(documents), "max_connections": max_connections}
    figures |= client_figures(requests)
    if requests.scheduled:
        span = max(requests.scheduled) - min(requests.scheduled)
        figures["achieved_requests_per_s"] = round((len(requests.done) - 1) / span, 1) if span > 0 else 0
        figures["send_lag_ms"] = percentiles(np.subtract(requests.sent, requests.scheduled), scale=1000.0)
    return figures | stack.into_bronze(requests)


def warm_up(stack: Stack, events: Events) -> dict[str, Any]:
    """A batch and a few singles through the whole path until they are in bronze: connections open, the
    bronze table created, the consumer's partitions assigned. Not part of any figure."""
    started = time.perf_counter()
    _, batch = step_closed(stack, events.take(100), 100, 1, lambda _n: None, fresh=False)
    _, singles = step_closed(stack, events, 1, 2, lambda _n: None, fresh=False)
    seconds = round(time.perf_counter() - started, 2)
    return {"events": batch.accepted + singles.accepted, "seconds": seconds, "errors": batch.errors | singles.errors}
