"""Batch landing into bronze: a file drop of raw events (or labels), written exactly once per batch.

The batch id goes into the Delta commit as an app transaction, so landing the same batch again (a
retried job, a re-run demo) is recognised from the table itself and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from mdslab.lakehouse import Lakehouse

BATCH_SOURCE_PREFIX = "batch:"


@dataclass(frozen=True)
class LandingResult:
    table: str
    batch_id: str
    rows: int
    version: int | None
    skipped: bool


def _already_landed(lake: Lakehouse, table: str, batch_id: str) -> bool:
    return lake.transaction_version(table, f"landing:{batch_id}") is not None


def land_events(
    lake: Lakehouse,
    table: str,
    raw: pa.Table,
    *,
    batch_id: str,
    source: str,
    contract_version: str,
    ingested_at: datetime | None = None,
) -> LandingResult:
    """Append raw ``(event_id, payload)`` rows to a bronze event table, once per ``batch_id``."""
    if _already_landed(lake, table, batch_id):
        return LandingResult(table, batch_id, 0, lake.version(table), skipped=True)
    when = ingested_at or datetime.now(UTC)
    n = raw.num_rows
    schema = lake.spec(table).schema
    data = pa.table(
        {
            "event_id": raw.column("event_id"),
            "payload": raw.column("payload"),
            "contract_version": pa.array([contract_version] * n, pa.string()),
            "source": pa.array([f"{BATCH_SOURCE_PREFIX}{source}"] * n, pa.string()),
            "batch_id": pa.array([batch_id] * n, pa.string()),
            "ingested_at": pa.array([when] * n, schema.field("ingested_at").type),
            "kafka_topic": pa.nulls(n, pa.string()),
            "kafka_partition": pa.nulls(n, pa.int32()),
            "kafka_offset": pa.nulls(n, pa.int64()),
            "kafka_timestamp": pa.nulls(n, schema.field("kafka_timestamp").type),
            "ingest_date": pa.array([when.date()] * n, pa.date32()),
        }
    )
    return _commit(lake, table, batch_id, data)


def land_labels(
    lake: Lakehouse, labels: pa.Table, *, batch_id: str, ingested_at: datetime | None = None
) -> LandingResult:
    """Append a fraud-label export to bronze, once per ``batch_id``."""
    table = "bronze.fraud_labels"
    if _already_landed(lake, table, batch_id):
        return LandingResult(table, batch_id, 0, lake.version(table), skipped=True)
    when = ingested_at or datetime.now(UTC)
    n = labels.num_rows
    data = labels.append_column("batch_id", pa.array([batch_id] * n, pa.string())).append_column(
        "ingested_at", pa.array([when] * n, pa.timestamp("us", tz="UTC"))
    )
    return _commit(lake, table, batch_id, data)


def _commit(lake: Lakehouse, table: str, batch_id: str, data: pa.Table) -> LandingResult:
    """Append ``data`` with the batch id as the commit's app transaction (what :func:`_already_landed` finds)."""
    version = lake.write_table(
        table,
        data,
        metadata={"operation": "landing", "batch_id": batch_id, "rows": data.num_rows},
        app_transactions={f"landing:{batch_id}": 0},
    )
    return LandingResult(table, batch_id, data.num_rows, version, skipped=False)
