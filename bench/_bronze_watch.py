"""Bronze as bench/ingest.py sees it: how many rows ``bronze.transactions`` holds, when each commit
landed, and per event its freshness (event time -> the commit that made its row queryable), found
through the Kafka offsets every bronze commit records.
"""

from __future__ import annotations

import bisect
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from _ingest_services import Service
from _percentiles import percentiles

from mdslab.settings import Settings
from mdslab.workloads.ingestion.events import TRANSACTIONS, Topics

BRONZE = TRANSACTIONS.bronze_table


@dataclass(frozen=True)
class Commit:
    version: int
    timestamp_ms: int
    ends: dict[int, int]  # partition -> next offset after this commit


class BronzeWatch:
    """Follows ``bronze.transactions``: row count now, and each commit's time and Kafka offsets."""

    def __init__(self, settings: Settings) -> None:
        from mdslab.workloads.lake import lakehouse

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

    def wait_for(self, rows: int, timeout_s: float, services: list[Service], poll_s: float = 0.05) -> tuple[bool, int]:
        """Poll until the table holds ``rows``; returns (reached, rows seen)."""
        deadline = time.monotonic() + timeout_s
        seen = self.rows()
        while seen < rows and time.monotonic() < deadline:
            for service in services:
                service.check()
            time.sleep(poll_s)
            seen = self.rows()
        return seen >= rows, seen

    def commits(self) -> list[Commit]:
        """Every commit that moved an offset of the topic, oldest first."""
        table = self.lake.delta(BRONZE)
        prefix = f"kafka:{self.topic}:"
        found = []
        for entry in table.history():
            raw = entry.get("mdslab")
            meta = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
            ends = {
                int(app.removeprefix(prefix)): int(end)
                for app, end in (meta.get("offsets") or {}).items()
                if app.startswith(prefix)
            }
            if ends and "timestamp" in entry:
                found.append(Commit(int(entry["version"]), int(entry["timestamp"]), ends))
        return sorted(found, key=lambda commit: commit.version)

    def last_commit_ms(self) -> int:
        return max(commit.timestamp_ms for commit in self.commits())


def commit_times(commits: list[Commit], partitions: list[int], offsets: list[int]) -> np.ndarray:
    """For each row (partition, offset): the timestamp (ms) of the commit that wrote it."""
    by_partition: dict[int, tuple[list[int], list[int]]] = {}
    for commit in commits:
        for partition, end in commit.ends.items():
            ends, stamps = by_partition.setdefault(partition, ([], []))
            ends.append(end)
            stamps.append(commit.timestamp_ms)
    out = np.empty(len(offsets), dtype=np.float64)
    for index, (partition, offset) in enumerate(zip(partitions, offsets, strict=True)):
        ends, stamps = by_partition[partition]
        out[index] = stamps[bisect.bisect_right(ends, offset)]
    return out


def _millis(column: pa.ChunkedArray) -> np.ndarray:
    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    millis: np.ndarray = micros.astype(np.float64) / 1000.0
    return millis


def freshness(watch: BronzeWatch, event_times_ms: dict[str, float]) -> dict[str, Any]:
    """Per event: event_time -> the Kafka create timestamp (the API's producer), -> the consumer's
    batch start (``ingested_at``), -> the commit that made the row queryable."""
    rows = watch.lake.read_table(
        BRONZE, columns=["event_id", "kafka_partition", "kafka_offset", "kafka_timestamp", "ingested_at"]
    )
    ids = rows.column("event_id").to_pylist()
    keep = [index for index, event_id in enumerate(ids) if event_id in event_times_ms]
    rows = rows.take(pa.array(keep, type=pa.int64()))
    event_ms = np.array([event_times_ms[ids[index]] for index in keep], dtype=np.float64)
    committed = commit_times(
        watch.commits(), rows.column("kafka_partition").to_pylist(), rows.column("kafka_offset").to_pylist()
    )
    kafka_ms, batch_ms = _millis(rows.column("kafka_timestamp")), _millis(rows.column("ingested_at"))
    return {
        "events": len(keep),
        "event_to_queryable_s": percentiles((committed - event_ms) / 1000.0),
        "event_to_kafka_s": percentiles((kafka_ms - event_ms) / 1000.0),
        "kafka_to_batch_start_s": percentiles((batch_ms - kafka_ms) / 1000.0),
        "batch_start_to_commit_s": percentiles((committed - batch_ms) / 1000.0),
    }
