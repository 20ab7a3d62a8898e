"""The lab's lineage store: OpenLineage run events as received, in PostgreSQL (``lineage.events``).

Events are kept whole (JSONB) and keyed by a hash of their text, so an event delivered twice (a spooled
event re-sent after a lost reply) is stored once. Reads (catalog, lineage, run history) query the JSON.
"""

from __future__ import annotations

import hashlib
import json
import threading
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


class EventStore:
    """Writes events on one kept connection (opening one per event cost ~14 ms), with the schema made
    once; a broken connection is replaced on the next write. Safe to share between threads (the API's)."""

    def __init__(self, pg: PostgresSettings, *, application_name: str = "mdslab-lineage") -> None:
        self.pg = pg
        self.application_name = application_name
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def add(self, events: list[dict[str, Any]]) -> int:
        """Keep ``events`` (OpenLineage run events as JSON objects); returns how many were new."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = database.connect(self.pg, application_name=self.application_name)
                    self._conn.autocommit = True
                    self._conn.execute(SCHEMA_SQL)
                return _insert(self._conn, events)
            except Exception:
                self._close()
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _insert(conn: psycopg.Connection, events: list[dict[str, Any]]) -> int:
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


def _rows(pg: PostgresSettings, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """One read of the store, on a connection of its own, with the schema in place (a lab that never
    stored an event reads nothing, not an error)."""
    with database.connect(pg) as conn:
        conn.execute(SCHEMA_SQL)
        return conn.execute(query, params or []).fetchall()


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
    rows = _rows(pg, f"SELECT event FROM lineage.events {where} ORDER BY event_time, received_at", params)
    return [row[0] for row in rows]


def latest_per_job(pg: PostgresSettings) -> list[dict[str, Any]]:
    """The last event of each type of every job: what the read side's graph is built from."""
    rows = _rows(
        pg,
        "SELECT DISTINCT ON (job_namespace, job_name, event_type) event FROM lineage.events "
        "ORDER BY job_namespace, job_name, event_type, event_time DESC, received_at DESC",
    )
    return [row[0] for row in rows]


def recent_runs(pg: PostgresSettings, *, job: str | None, limit: int) -> list[tuple[str, datetime, dict[str, Any]]]:
    """The ``limit`` most recently started runs (of ``job`` and its sub-jobs ``job.*``, if given), newest
    first: (run id, when it started, its latest event)."""
    where, params = "", []
    if job is not None:
        where, params = "WHERE job_name = %s OR starts_with(job_name, %s)", [job, f"{job}."]
    rows = _rows(
        pg,
        "WITH runs AS (SELECT run_id, min(event_time) AS started FROM lineage.events "
        f"{where} GROUP BY run_id ORDER BY started DESC LIMIT %s) "
        "SELECT runs.run_id, runs.started, last.event FROM runs CROSS JOIN LATERAL ("
        "SELECT event FROM lineage.events e WHERE e.run_id = runs.run_id "
        "ORDER BY event_time DESC, received_at DESC LIMIT 1) last ORDER BY runs.started DESC",
        [*params, limit],
    )
    return [(run_id, started, event) for run_id, started, event in rows]


def job_names(pg: PostgresSettings) -> list[str]:
    return [row[0] for row in _rows(pg, "SELECT DISTINCT job_name FROM lineage.events ORDER BY 1")]
