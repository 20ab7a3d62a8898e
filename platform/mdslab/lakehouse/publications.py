"""Write-audit-publish on Delta: a published-version pointer per audited table.

Invariant: pipeline steps write new versions of silver and gold whenever they run, but readers
(scoring, the RAG index, SQL, metrics) resolve an audited table to the version a quality gate last
*published*, never to the latest build. Publishing appends one row per table to a small Delta table of
its own (``_mdslab/publications`` in the curated bucket), all tables of one gate in one commit, so a
set of tables becomes visible together or not at all and the lake carries its own published state.
A rejected build stays in the table's history (time travel) for inspection; nothing is copied.
Delta has no branches (Iceberg/Nessie and lakeFS do); a pointer needs no copy and fits a lakehouse
whose every read already names a version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from mdslab.lakehouse.registry import TABLE_CONFIGURATION

PATH = "_mdslab/publications"
COMPACT_EVERY = 100  # publications between two compactions of the pointer table
SCHEMA = pa.schema(
    [
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("published_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("run_id", pa.string()),
        pa.field("note", pa.string()),
    ]
)


@dataclass(frozen=True)
class Publication:
    table: str
    version: int
    published_at: datetime
    run_id: str | None
    note: str | None


def uri(curated_bucket: str) -> str:
    return f"s3://{curated_bucket}/{PATH}"


def latest(location: str, storage_options: dict[str, str]) -> dict[str, Publication]:
    """The current publication of every table that has one (later rows win)."""
    if not DeltaTable.is_deltatable(location, storage_options=storage_options):
        return {}
    rows = DeltaTable(location, storage_options=storage_options).to_pyarrow_table()
    if not rows.num_rows:
        return {}
    rows = rows.sort_by([("published_at", "ascending")])
    found: dict[str, Publication] = {}
    for row in rows.to_pylist():
        found[row["table_name"]] = Publication(
            row["table_name"], int(row["version"]), row["published_at"], row["run_id"], row["note"]
        )
    return found


def history(location: str, storage_options: dict[str, str], table: str) -> list[Publication]:
    """Every publication of ``table``, newest first (what readers saw, and when)."""
    if not DeltaTable.is_deltatable(location, storage_options=storage_options):
        return []
    rows = DeltaTable(location, storage_options=storage_options).to_pyarrow_table(
        filters=pc.field("table_name") == table
    )
    ordered = rows.sort_by([("published_at", "descending")]).to_pylist()
    return [Publication(r["table_name"], int(r["version"]), r["published_at"], r["run_id"], r["note"]) for r in ordered]


def publish(
    location: str, storage_options: dict[str, str], versions: Mapping[str, int], *, run_id: str, note: str
) -> None:
    """Make ``versions`` the ones readers see, all in one commit."""
    if not versions:
        return
    now = datetime.now(UTC)
    rows = pa.table(
        {
            "table_name": list(versions),
            "version": [int(v) for v in versions.values()],
            "published_at": [now] * len(versions),
            "run_id": [run_id] * len(versions),
            "note": [note] * len(versions),
        },
        schema=SCHEMA,
    )
    write_deltalake(
        location,
        rows,
        mode="append",
        configuration=TABLE_CONFIGURATION,
        storage_options=storage_options,
    )
    log = DeltaTable(location, storage_options=storage_options)
    if log.version() % COMPACT_EVERY == 0:  # a watch publishes every few seconds: keep reads to a few files
        log.optimize.compact()
