"""Getting run events to their consumer without ever failing or holding up the job that emits them.

The transports are openlineage-python's own (HTTP to Marquez/OpenMetadata/any consumer, a JSON-lines
file, the log) plus the lab's store. An event that cannot be delivered is written to a spool directory
in the state dir and sent, oldest first, before the next event (of this or a later process) or by
:meth:`LineageEmitter.flush`; after a failure the emitter stops trying for a while and spools directly, so a
consumer that is down costs a job one timeout, not one per event. Nothing is lost and nothing is sent
twice on purpose; the store also ignores an event it already holds (a reply lost after delivery).

Serialising and delivering happen on a worker thread, in order: the job hands an event over and goes on
(measured: a pipeline run's ~20 events cost it ~0.2 s when delivered inline). :meth:`LineageEmitter.close`
waits until every event handed over is delivered or spooled, so a job that ends normally or by an
exception loses none; a process killed outright loses the few not yet handed to the worker.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openlineage.client.serde import Serde
from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport, TokenProvider
from openlineage.client.transport.transport import Config, Transport

from mdslab.settings import LineageTransport, PostgresSettings, Settings
from mdslab.workloads.lineage.store import EventStore

log = logging.getLogger(__name__)

RETRY_AFTER_S = 30.0
_STOP = object()  # tells the delivery worker to stop


class StoreTransport(Transport):
    """openlineage-python transport into the lab's lineage store (PostgreSQL), on one connection kept
    for the emitter's life (see :class:`~mdslab.workloads.lineage.store.EventStore`)."""

    kind = "mdslab-store"

    def __init__(self, pg: PostgresSettings) -> None:
        self.store = EventStore(pg)

    def emit(self, event: Any) -> None:
        self.store.add([event if isinstance(event, dict) else Serde.to_dict(event)])

    def close(self, timeout: float = -1) -> bool:
        del timeout
        self.store.close()
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
        self._queue: queue.Queue[Any] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()

    def emit(self, event: Any) -> None:
        """Hand ``event`` (a typed event or its JSON form) to the delivery worker; returns at once."""
        if self.transport is None:
            return
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="mdslab-lineage", daemon=True)
                self._worker.start()
            self._queue.put(event)

    def _work(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is _STOP:
                    return
                self._deliver(event)
            except Exception as exc:  # the worker must outlive any one event
                log.warning("lineage: an event could not be delivered or spooled (%s)", exc)
            finally:
                self._queue.task_done()

    def _deliver(self, event: Any) -> None:
        try:
            data = event if isinstance(event, dict) else Serde.to_dict(event)
        except Exception as exc:  # a facet that cannot be serialised must not fail the job
            log.warning("lineage: an event could not be serialised (%s); it is dropped", exc)
            return
        if self._deliver_spooled() and self._send(data):
            return
        self._spool(data)

    def drain(self) -> None:
        """Wait until every event handed over so far is delivered or spooled; stop the worker."""
        with self._worker_lock:
            worker, self._worker = self._worker, None
            if worker is None:
                return
            self._queue.put(_STOP)
        worker.join()

    def close(self) -> None:
        """Deliver (or spool) what was handed over, then release the transport's connection (the emitter
        can still be used: it starts a worker and reconnects)."""
        self.drain()
        if self.transport is not None:
            try:
                self.transport.close()
            except Exception as exc:
                log.debug("lineage: closing the transport: %s", exc)

    def flush(self) -> FlushReport:
        """Send what waits in the spool now, whatever happened before (``mdslab lineage flush``)."""
        self.drain()
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
        endpoint = lineage.endpoint.strip("/")
        config = HttpConfig(
            url=lineage.url, endpoint=endpoint, timeout=lineage.timeout_s, auth=auth, retry={"total": 0}
        )
        transport, where = HttpTransport(config), f"{lineage.url.rstrip('/')}/{endpoint}"
    elif lineage.transport is LineageTransport.FILE:
        path = lineage.file or settings.state_dir / "lineage-events.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        transport, where = FileTransport(FileConfig(log_file_path=str(path), append=True)), str(path)
    else:
        transport, where = ConsoleTransport(ConsoleConfig()), "the log"
    return LineageEmitter(transport, spool_dir(settings, where), where=where)


class LabTransport(Transport):
    """The transport given to Airflow's OpenLineage provider (``AIRFLOW__OPENLINEAGE__TRANSPORT``, see
    mdslab.orchestration.airflow): DAG and task runs go wherever ``MDSLAB_LINEAGE__*`` sends the lab's
    own runs (the store by default), with the same spool when that is down. Settings are read on the
    first event, in the process that emits it (Airflow's task runner)."""

    kind = "mdslab"
    config_class = Config

    def __init__(self, config: Config | None = None) -> None:
        del config  # nothing to configure: the lab's settings say it all
        self._emitter: LineageEmitter | None = None

    def emit(self, event: Any) -> None:
        from mdslab.settings import load_settings

        if self._emitter is None:
            self._emitter = lineage_emitter(load_settings())
        self._emitter.emit(event)
        self._emitter.drain()  # the provider's listener may exit right after: deliver (or spool) now

    def close(self, timeout: float = -1) -> bool:
        if self._emitter is not None:
            self._emitter.close()
        return True
