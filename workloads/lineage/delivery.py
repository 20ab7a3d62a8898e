"""Getting run events to their consumer without ever failing or holding up the job that emits them.

The transports are openlineage-python's own (HTTP to Marquez/OpenMetadata/any consumer, a JSON-lines
file, the log) plus the lab's store. An event that cannot be delivered is written to a spool directory
in the state dir and sent, oldest first, before the next event (of this or a later process) or by
:meth:`LineageEmitter.flush`; after a failure the emitter stops trying for a while and spools directly, so a
consumer that is down costs a job one timeout, not one per event. Nothing is lost and nothing is sent
twice on purpose; the store also ignores an event it already holds (a reply lost after delivery).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from openlineage.client.serde import Serde
from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport, TokenProvider
from openlineage.client.transport.transport import Transport

from mdslab import database
from mdslab.settings import LineageTransport, PostgresSettings, Settings
from mdslab.workloads.lineage.store import SCHEMA_SQL, insert_events

log = logging.getLogger(__name__)

RETRY_AFTER_S = 30.0


class StoreTransport(Transport):
    """openlineage-python transport into the lab's lineage store (PostgreSQL), on one connection kept
    for the emitter's life (a connection per event cost ~14 ms, ~0.3 s of a pipeline run)."""

    kind = "mdslab-store"

    def __init__(self, pg: PostgresSettings) -> None:
        self.pg = pg
        self._conn: psycopg.Connection | None = None

    def emit(self, event: Any) -> None:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = database.connect(self.pg, application_name="mdslab-lineage")
                self._conn.autocommit = True
                self._conn.execute(SCHEMA_SQL)
            insert_events(self._conn, [Serde.to_dict(event)])
        except Exception:
            self.close()  # a broken connection is replaced on the next delivery
            raise

    def close(self, timeout: float = -1) -> bool:
        del timeout
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        return True


@dataclass(frozen=True)
class FlushReport:
    sent: int
    waiting: int


class LineageEmitter:
    """Delivers OpenLineage events (typed ``event_v2`` objects or their JSON form); never raises."""

    def __init__(self, transport: Transport | None, spool_dir: Path, *, where: str) -> None:
        self.transport = transport
        self.spool_dir = spool_dir
        self.where = where
        self._retry_at = 0.0
        self._sequence = itertools.count()

    def emit(self, event: Any) -> None:
        if self.transport is None:
            return
        try:
            data = event if isinstance(event, dict) else Serde.to_dict(event)
        except Exception as exc:  # a facet that cannot be serialised must not fail the job
            log.warning("lineage: an event could not be serialised (%s); it is dropped", exc)
            return
        if self._deliver_spooled() and self._send(data):
            return
        self._spool(data)

    def close(self) -> None:
        """Release the transport's connection (the emitter can still be used: it reconnects)."""
        if self.transport is not None:
            try:
                self.transport.close()
            except Exception as exc:
                log.debug("lineage: closing the transport: %s", exc)

    def flush(self) -> FlushReport:
        """Send what waits in the spool now, whatever happened before (no CLI command calls it yet)."""
        self._retry_at = 0.0
        before = len(self._spooled())
        self._deliver_spooled()
        waiting = len(self._spooled())
        return FlushReport(before - waiting, waiting)

    def _send(self, data: dict[str, Any]) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        assert self.transport is not None
        try:
            self.transport.emit(data)  # type: ignore[arg-type]  # its transports serialise a dict as they do an event
            return True
        except Exception as exc:
            self._retry_at = time.monotonic() + RETRY_AFTER_S
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            log.warning(
                "lineage: events cannot be delivered to %s (%s); kept in %s and sent once it is back",
                self.where,
                reason,
                self.spool_dir,
            )
            return False

    def _spooled(self) -> list[Path]:
        if not self.spool_dir.is_dir():
            return []
        return sorted(self.spool_dir.glob("*.json"))

    def _deliver_spooled(self) -> bool:
        """Send the spooled events in order; False as soon as one cannot be (the rest wait)."""
        for path in self._spooled():
            if not self._send(json.loads(path.read_text())):
                return False
            path.unlink(missing_ok=True)
        return True

    def _spool(self, data: dict[str, Any]) -> None:
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._sequence):06d}"
            partial = self.spool_dir / f"{name}.partial"
            partial.write_text(json.dumps(data))
            partial.replace(self.spool_dir / f"{name}.json")
        except OSError as exc:
            log.warning("lineage: an undeliverable event could not be spooled in %s either (%s)", self.spool_dir, exc)


def spool_dir(settings: Settings, where: str) -> Path:
    """One spool per destination: events kept for one store or consumer are never sent to another."""
    return settings.state_dir / "lineage-spool" / hashlib.sha256(where.encode()).hexdigest()[:16]


def lineage_emitter(settings: Settings) -> LineageEmitter:
    """The emitter ``MDSLAB_LINEAGE__*`` describes."""
    lineage = settings.lineage
    transport: Transport | None
    where: str
    if lineage.transport is LineageTransport.OFF:
        transport, where = None, "nowhere (off)"
    elif lineage.transport is LineageTransport.STORE:
        pg = settings.postgres
        transport, where = StoreTransport(pg), f"the lineage store (PostgreSQL at {pg.host}:{pg.port}/{pg.database})"
    elif lineage.transport is LineageTransport.HTTP:
        key = lineage.api_key.get_secret_value()
        auth = ApiKeyTokenProvider({"apiKey": key}) if key else TokenProvider({})
        config = HttpConfig(url=lineage.url, timeout=lineage.timeout_s, auth=auth, retry={"total": 0})
        transport, where = HttpTransport(config), f"{lineage.url.rstrip('/')}/api/v1/lineage"
    elif lineage.transport is LineageTransport.FILE:
        path = lineage.file or settings.state_dir / "lineage-events.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        transport, where = FileTransport(FileConfig(log_file_path=str(path), append=True)), str(path)
    else:
        transport, where = ConsoleTransport(ConsoleConfig()), "the log"
    return LineageEmitter(transport, spool_dir(settings, where), where=where)
