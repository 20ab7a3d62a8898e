"""What the console's main page shows, gathered from the libraries behind `mdslab status`, `tables`,
`lineage runs` and the demo's quarantine summary, never computed a second way.

The services are probed for each page; the rest (:class:`LakeView`) is read at most every
``MDSLAB_CONSOLE__REFRESH_S`` (see :mod:`mdslab.console.cache`). Each panel is read on its own: a panel whose
store does not answer (S3, PostgreSQL) carries that one-line reason instead of its figures, and the rest
of the page still renders. With S3 down no lake read is tried at all (each would retry for seconds)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import psycopg

from mdslab.console.figures import status_figures
from mdslab.console.health import ServiceState
from mdslab.console.lineage_map import LineageMap, layout
from mdslab.errors import MdslabError
from mdslab.lakehouse import Lakehouse, TableInfo
from mdslab.lakehouse.sql import run_duckdb
from mdslab.services import health
from mdslab.settings import Settings
from mdslab.workloads.demo import QUARANTINE_TABLES, quarantine_reasons
from mdslab.workloads.lake_metrics import LakeSnapshot, take_snapshot
from mdslab.workloads.lineage.history import RunSummary, run_history
from mdslab.workloads.lineage.recorded import Names, RecordedLineage, load_lineage

T = TypeVar("T")
READ_ERRORS = (MdslabError, OSError, psycopg.Error)
RECENT_QUARANTINED = 8
RECENT_RUNS = 12


@dataclass(frozen=True)
class TableRow:
    """One table as the tables panel shows it."""

    info: TableInfo
    audited: bool
    gate: str  # what readers see of it, in words
    gate_ok: bool | None  # None: not audited or not built
    checks: str  # the last quality checks the lineage store holds ("5 of 5 passed"), or ""
    checks_ok: bool | None
    age_s: float | None  # since its last commit
    stale: list[str] = field(default_factory=list)  # gold: why it no longer matches its inputs
    newest_event_age_s: float | None = None  # silver: since the newest event readers see arrived

    @property
    def name(self) -> str:
        return self.info.name


@dataclass(frozen=True)
class Quarantined:
    table: str
    event_id: str
    reasons: str
    ingested_at: datetime | None


@dataclass(frozen=True)
class LakeView:
    """The panels read from the lake and PostgreSQL, kept for ``MDSLAB_CONSOLE__REFRESH_S``."""

    figures: dict[str, Any]
    layers: dict[str, list[TableRow]]
    quarantine: dict[str, dict[str, int]]
    recent_quarantined: list[Quarantined]
    runs: list[RunSummary]
    lineage: LineageMap
    errors: list[str]
    read_at: datetime
    seconds: float


@dataclass(frozen=True)
class Overview:
    services: list[ServiceState]  # probed for each page
    lake: LakeView

    @property
    def age_s(self) -> float:
        return (datetime.now(UTC) - self.lake.read_at).total_seconds()


def attempt(what: str, read: Callable[[], T], default: T, errors: list[str]) -> T:
    """``read()``, or ``default`` with "what: reason" noted in ``errors`` when its store does not answer."""
    try:
        return read()
    except READ_ERRORS as exc:
        errors.append(f"{what}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        return default


def read_lake_view(settings: Settings, lake: Lakehouse, names: Names, client: httpx.Client) -> LakeView:
    """Every panel but the services' (figures, tables, quarantine, runs, lineage), each read on its own."""
    started = time.perf_counter()
    errors: list[str] = []
    s3 = health.probe_s3(settings, timeout_s=settings.console.probe_timeout_s)
    if s3.ok:
        snapshot = take_snapshot(lake, settings.postgres)
    else:  # every lake read would retry for seconds: say it once instead
        snapshot = LakeSnapshot(
            [], {}, [], [], time.time(), 0.0, [f"lake: S3 at {s3.endpoint} {s3.detail}: `mdslab up`"]
        )
    figures = status_figures(settings, lake, snapshot=snapshot, client=client)
    errors += figures["errors"]
    graph = attempt("lineage store", lambda: load_lineage(settings.postgres, names), RecordedLineage(), errors)
    layers = table_rows(lake, snapshot.tables, snapshot.stale_gold, snapshot.newest_visible, graph)
    quarantine: dict[str, dict[str, int]] = {}
    recent: list[Quarantined] = []
    if s3.ok:
        quarantine = attempt("quarantine", lambda: quarantine_reasons(lake), {}, errors)
        recent = attempt("quarantine", lambda: recent_quarantined(lake), [], errors)
    no_runs: list[RunSummary] = []
    runs = attempt("run history", lambda: run_history(settings.postgres, names, limit=RECENT_RUNS), no_runs, errors)
    return LakeView(
        figures,
        layers,
        quarantine,
        recent,
        runs,
        layout(graph.inputs),
        list(dict.fromkeys(errors)),
        datetime.now(UTC),
        time.perf_counter() - started,
    )


def table_rows(
    lake: Lakehouse,
    infos: list[TableInfo],
    stale_gold: dict[str, list[str]],
    newest_visible: dict[str, datetime],
    graph: RecordedLineage,
) -> dict[str, list[TableRow]]:
    """The tables by layer (bronze, silver, gold), each with its gate state, last checks and freshness."""
    now = datetime.now(UTC)
    layers: dict[str, list[TableRow]] = {}
    for info in infos:
        audited = lake.spec(info.name).audited
        gate, gate_ok = gate_state(info, audited)
        assertions = graph.quality.get(info.name, [])
        failed = [a for a in assertions if not a.success]
        checks = ""
        if assertions:
            checks = f"{len(assertions) - len(failed)} of {len(assertions)} passed"
            if failed:
                checks += f"; failed: {failed[0].check} ({failed[0].detail})"
        committed = info.last_commit
        if committed is not None and committed.tzinfo is None:
            committed = committed.replace(tzinfo=UTC)
        arrived = newest_visible.get(info.name)
        layers.setdefault(str(info.layer), []).append(
            TableRow(
                info,
                audited,
                gate,
                gate_ok,
                checks,
                None if not assertions else not failed,
                None if committed is None else (now - committed).total_seconds(),
                stale_gold.get(info.name, []),
                None if arrived is None else (now - arrived).total_seconds(),
            )
        )
    return layers


def gate_state(info: TableInfo, audited: bool) -> tuple[str, bool | None]:
    """What readers see of a table, in words, and whether that is its latest build."""
    if info.version is None:
        return "not built", None
    if not audited:
        return "not gated (readers see the latest)", None
    if info.published is None:
        return "built, never published: the quality gate has not passed it", False
    if info.published == info.version:
        return f"published v{info.published}", True
    return f"v{info.version} held back, readers see v{info.published}", False


def recent_quarantined(lake: Lakehouse, limit: int = RECENT_QUARANTINED) -> list[Quarantined]:
    """The latest rows silver rejected, with every reason, newest first (the SQL engine of `mdslab sql`)."""
    rows: list[Quarantined] = []
    for table in QUARANTINE_TABLES:
        if lake.current_version(table) is None:
            continue
        query = (
            f"SELECT event_id, array_to_string(reasons, '; ') AS reasons, ingested_at FROM {table} "
            f"ORDER BY ingested_at DESC NULLS LAST LIMIT {int(limit)}"
        )
        for row in run_duckdb(lake, query, limit=limit).rows.to_pylist():
            event_id = "(none: the payload was unreadable)" if row["event_id"] is None else str(row["event_id"])
            rows.append(Quarantined(table, event_id, row["reasons"] or "", row["ingested_at"]))
    stamp = datetime.min.replace(tzinfo=UTC)
    rows.sort(key=lambda q: q.ingested_at or stamp, reverse=True)
    return rows[:limit]
