"""Every step run, built, up to date or failed, as a row in PostgreSQL (`ops.step_runs`).

The lake's commits say what was built; only this log says what *failed*, how long each run took and
when a step last succeeded: what the metrics (`mdslab_pipeline_step_*`), the alert on failed runs and
`mdslab status` read. Writing it must never fail a pipeline: a run whose record cannot be written logs
a warning and goes on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg

from mdslab import database
from mdslab.settings import PostgresSettings
from mdslab.workloads.pipeline.step_runtime import StepResult

log = logging.getLogger(__name__)

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.step_runs (
    id bigserial PRIMARY KEY,
    step text NOT NULL,
    layer text NOT NULL,
    status text NOT NULL CHECK (status IN ('built', 'up_to_date', 'failed')),
    finished_at timestamptz NOT NULL DEFAULT now(),
    seconds double precision NOT NULL,
    rows_in bigint NOT NULL DEFAULT 0,
    rows_out jsonb NOT NULL DEFAULT '{}',
    error text
);
CREATE INDEX IF NOT EXISTS step_runs_step_finished ON ops.step_runs (step, finished_at DESC);
"""


@dataclass(frozen=True)
class StepRun:
    step: str
    layer: str
    status: str
    finished_at: datetime
    seconds: float
    rows_in: int
    rows_out: dict[str, int]
    error: str | None


def _write(pg: PostgresSettings, row: tuple[object, ...]) -> None:
    try:
        with database.connect(pg) as conn:
            conn.execute(SCHEMA_SQL)
            conn.execute(
                "INSERT INTO ops.step_runs (step, layer, status, seconds, rows_in, rows_out, error) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                row,
            )
    except psycopg.Error as exc:
        log.warning("could not record the run of step %s in ops.step_runs: %s", row[0], exc)


def record_result(pg: PostgresSettings, layer: str, result: StepResult) -> None:
    rows = json.dumps(result.rows_out)
    _write(pg, (result.step, layer, result.status, result.seconds, result.rows_in, rows, None))


def record_failure(pg: PostgresSettings, step: str, layer: str, seconds: float, error: BaseException) -> None:
    _write(pg, (step, layer, "failed", seconds, 0, "{}", f"{type(error).__name__}: {error}"[:2000]))


GATE_STEP = "quality_gate"


def record_gate(pg: PostgresSettings, *, passed: bool, reason: str, seconds: float) -> None:
    """The gate's verdict next to the steps' runs: `mdslab status` and the failed-run alert see a failed
    gate (the steps themselves were built fine, so without this row everything looked healthy)."""
    status = "built" if passed else "failed"
    _write(pg, (GATE_STEP, "gold", status, seconds, 0, "{}", None if passed else reason[:2000]))


def _has_log(conn: psycopg.Connection) -> bool:
    """Whether any step run was recorded (the table comes with the first record)."""
    found = conn.execute("SELECT to_regclass('ops.step_runs')").fetchone()
    return found is not None and found[0] is not None


def latest_runs(pg: PostgresSettings) -> list[StepRun]:
    """The last run of every step (any status), newest first; [] before the first run."""
    with database.connect(pg) as conn:
        if not _has_log(conn):
            return []
        rows = conn.execute(
            "SELECT DISTINCT ON (step) step, layer, status, finished_at, seconds, rows_in, rows_out, error "
            "FROM ops.step_runs ORDER BY step, finished_at DESC"
        ).fetchall()
    runs = [StepRun(*row) for row in rows]
    return sorted(runs, key=lambda r: r.finished_at, reverse=True)


@dataclass(frozen=True)
class StepTotals:
    step: str
    layer: str
    runs: dict[str, int]
    """Runs by status (built, up_to_date, failed)."""
    last_success: datetime | None
    last_built_rows: dict[str, int]


def step_totals(pg: PostgresSettings) -> list[StepTotals]:
    """Per step: run counts by status, when it last succeeded and the rows of its last build."""
    with database.connect(pg) as conn:
        if not _has_log(conn):
            return []
        counts = conn.execute(
            "SELECT step, max(layer), status, count(*) FROM ops.step_runs GROUP BY step, status"
        ).fetchall()
        success: dict[str, datetime] = dict(
            conn.execute(
                "SELECT step, max(finished_at) FROM ops.step_runs WHERE status <> 'failed' GROUP BY step"
            ).fetchall()
        )
        built: dict[str, dict[str, int]] = dict(
            conn.execute(
                "SELECT DISTINCT ON (step) step, rows_out FROM ops.step_runs WHERE status = 'built' "
                "ORDER BY step, finished_at DESC"
            ).fetchall()
        )
    by_step: dict[str, StepTotals] = {}
    for step, layer, status, count in counts:
        totals = by_step.setdefault(step, StepTotals(step, layer, {}, success.get(step), built.get(step) or {}))
        totals.runs[status] = count
    return list(by_step.values())
