"""The lab's lineage store: OpenLineage run events as received, in PostgreSQL (``lineage.events``).

Events are kept whole (JSONB) and keyed by a hash of their text, so an event delivered twice (a spooled
event re-sent after a lost reply) is stored once. Reads (catalog, lineage, run history) query the JSON.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from mdslab import database
from mdslab.settings import PostgresSettings

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS lineage;
CREATE TABLE IF NOT EXISTS lineage.events (
    event_key text PRIMARY KEY,
    event_time timestamptz NOT NULL,
    event_type text,
    job_namespace text NOT NULL,
    job_name text NOT NULL,
    run_id text NOT NULL,
    event jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_by_run ON lineage.events (run_id, event_time);
CREATE INDEX IF NOT EXISTS events_by_job ON lineage.events (job_namespace, job_name, event_time);
"""


def event_key(event: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def store_events(pg: PostgresSettings, events: list[dict[str, Any]]) -> int:
    """Keep ``events`` (OpenLineage run events as JSON objects); returns how many were new."""
    with database.connect(pg) as conn:
        conn.execute(SCHEMA_SQL)
        return insert_events(conn, events)


def insert_events(conn: psycopg.Connection, events: list[dict[str, Any]]) -> int:
    """:func:`store_events` on an open connection (with the schema in place), committed."""
    added = 0
    with conn.transaction():
        for event in events:
            run, job = event["run"], event["job"]
            cursor = conn.execute(
                "INSERT INTO lineage.events (event_key, event_time, event_type, job_namespace, job_name, run_id, "
                "event) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_key) DO NOTHING",
                (
                    event_key(event),
                    datetime.fromisoformat(event["eventTime"]),
                    event.get("eventType"),
                    job["namespace"],
                    job["name"],
                    run["runId"],
                    Jsonb(event),
                ),
            )
            added += cursor.rowcount
    return added


def read_events(pg: PostgresSettings, *, job: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
    """Stored events in time order, of one job or one run if asked."""
    clauses, params = [], []
    if job is not None:
        clauses.append("job_name = %s")
        params.append(job)
    if run_id is not None:
        clauses.append("run_id = %s")
        params.append(run_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with database.connect(pg) as conn:
        conn.execute(SCHEMA_SQL)
        rows = conn.execute(f"SELECT event FROM lineage.events {where} ORDER BY event_time, received_at", params)
        return [row[0] for row in rows.fetchall()]
