"""Lineage delivery never fails a job and loses nothing: undeliverable events are spooled, re-sent in
order once the consumer is back, and a consumer that is down costs one attempt, not one per event.
Also the column lineage cache on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.event_v2 import RunState
from openlineage.client.transport.transport import Transport

from mdslab.settings import LineageSettings, LineageTransport, Settings
from mdslab.workloads.lake import build_registry
from mdslab.workloads.lineage import graph
from mdslab.workloads.lineage.delivery import LineageEmitter, lineage_emitter
from mdslab.workloads.lineage.events import JobRun


class Flaky(Transport):
    """A consumer that is down until told otherwise (a unit-test double of a sink, not of OpenLineage)."""

    kind = "flaky"

    def __init__(self) -> None:
        self.up = False
        self.attempts = 0
        self.received: list[dict[str, Any]] = []

    def emit(self, event: Any) -> None:
        self.attempts += 1
        if not self.up:
            raise ConnectionError("connection refused")
        self.received.append(event)


def _events(count: int) -> list[Any]:
    run = JobRun("mdslab", "job")
    return [run.event(RunState.START if i == 0 else RunState.RUNNING) for i in range(count)]


def test_events_wait_in_the_spool_and_arrive_once_in_order(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = Flaky()
    emitter = LineageEmitter(sink, tmp_path / "spool", where="the test sink")
    events = _events(3)
    for event in events:
        emitter.emit(event)  # never raises, never waits: a worker delivers
    emitter.drain()
    assert sink.attempts == 1, "after a failure the emitter spools without trying again for a while"
    assert len(list((tmp_path / "spool").glob("*.json"))) == 3
    assert sum("cannot be delivered to the test sink" in r.message for r in caplog.records) == 1
    sink.up = True
    report = emitter.flush()
    assert (report.sent, report.waiting) == (3, 0)
    assert [e["eventTime"] for e in sink.received] == [e.eventTime for e in events]
    later = _events(1)[0]
    emitter.emit(later)
    emitter.close()
    assert len(sink.received) == 4 and not list((tmp_path / "spool").glob("*.json"))


def test_the_spool_goes_first_when_a_later_event_can_be_sent(tmp_path: Path) -> None:
    sink = Flaky()
    first = LineageEmitter(sink, tmp_path, where="sink")
    first.emit(_events(1)[0])  # one process spools it
    first.close()
    sink.up = True
    second = LineageEmitter(sink, tmp_path, where="sink")  # the next process sends it first
    newer = _events(1)[0]
    second.emit(newer)
    second.close()
    assert [e["run"]["runId"] for e in sink.received][-1] == newer.run.runId and len(sink.received) == 2


def test_file_transport_writes_json_lines_and_off_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    on = Settings(state_dir=tmp_path, lineage=LineageSettings(transport=LineageTransport.FILE, file=path))
    emitter = lineage_emitter(on)
    emitter.emit(_events(1)[0])
    emitter.close()
    (line,) = path.read_text().splitlines()
    assert json.loads(line)["eventType"] == "START"
    off = Settings(state_dir=tmp_path / "off", lineage=LineageSettings(transport=LineageTransport.OFF))
    lineage_emitter(off).emit(_events(1)[0])
    assert not (tmp_path / "off").exists()


def test_column_lineage_is_cached_on_disk_and_a_broken_cache_is_recomputed(tmp_path: Path) -> None:
    registry = build_registry()
    graph._graph.cache_clear()
    first = graph.pipeline_lineage(registry, tmp_path)
    (cached,) = tmp_path.glob("lineage-*.json")
    graph._graph.cache_clear()
    assert graph.pipeline_lineage(registry, tmp_path) == first
    cached.write_text("{not json")
    graph._graph.cache_clear()
    assert graph.pipeline_lineage(registry, tmp_path) == first
    assert json.loads(cached.read_text())  # rewritten


def test_a_problem_building_an_event_is_a_warning_never_a_failed_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from mdslab.lakehouse import Lakehouse, TableRegistry
    from mdslab.settings import LakeSettings, PostgresSettings
    from mdslab.workloads.lineage.pipeline_runs import PipelineLineage
    from mdslab.workloads.pipeline.steps import STEPS

    sink = Flaky()
    sink.up = True
    empty = Lakehouse(TableRegistry([]), LakeSettings(), {})  # knows no table: every dataset lookup fails
    lineage = PipelineLineage(
        LineageEmitter(sink, tmp_path, where="sink"), empty, PostgresSettings(), namespace="t", parent=None
    )
    step = next(s for s in STEPS if s.name == "silver_transactions")
    lineage.step_started(step, {"bronze.transactions": 1})  # does not raise
    lineage.step_failed(step, RuntimeError("boom"))
    lineage.finished()
    assert any("step_started could not be reported" in r.message for r in caplog.records)
    assert [e["eventType"] for e in sink.received if e["job"]["name"] == "mdslab.pipeline"] == ["START", "COMPLETE"]


def test_emit_returns_at_once_and_close_waits_until_every_event_is_delivered(tmp_path: Path) -> None:
    import threading

    release = threading.Event()

    class Slow(Flaky):
        def emit(self, event: Any) -> None:
            release.wait(5)
            super().emit(event)

    sink = Slow()
    sink.up = True
    emitter = LineageEmitter(sink, tmp_path, where="slow sink")
    for event in _events(3):
        emitter.emit(event)  # the sink is blocked: a synchronous emit would hang here
    assert sink.received == []
    release.set()
    emitter.close()
    assert len(sink.received) == 3 and emitter._worker is None
    emitter.emit(_events(1)[0])  # still usable after close: a new worker
    emitter.close()
    assert len(sink.received) == 4


def test_the_http_transport_posts_to_the_endpoint_asked(tmp_path: Path) -> None:
    """OpenMetadata takes events on another path than Marquez: the endpoint is a setting."""
    marquez = LineageSettings(transport=LineageTransport.HTTP, url="http://marquez:5000")
    openmetadata = LineageSettings(
        transport=LineageTransport.HTTP, url="http://om:8585/", endpoint="/api/v1/openlineage/lineage"
    )
    assert lineage_emitter(Settings(state_dir=tmp_path, lineage=marquez)).where == "http://marquez:5000/api/v1/lineage"
    emitter = lineage_emitter(Settings(state_dir=tmp_path, lineage=openmetadata))
    assert emitter.where == "http://om:8585/api/v1/openlineage/lineage"
