"""Sending stops after a few sends in a row that delivered nothing, and knows which events went through
(a stand-in target that fails from its third send on: the real broker-down case is in
tests/integration/test_broker_faults.py)."""

from __future__ import annotations

import orjson
import pyarrow as pa

from mdslab.workloads.ingestion.events import EventType
from mdslab.workloads.ingestion.sender import MAX_CONSECUTIVE_FAILURES, Outcome, send_events


class FailsFromThirdSend:
    def __init__(self) -> None:
        self.sends = 0

    def send(self, event_type: EventType, payloads: list[bytes]) -> Outcome:
        self.sends += 1
        if self.sends <= 2:
            return Outcome(accepted=len(payloads))
        return Outcome(failed=len(payloads), reasons=["broker down"])

    def close(self) -> None:
        pass


def _events(n: int) -> pa.Table:
    return pa.table({"payload": [orjson.dumps({"event_id": f"e{i}"}).decode() for i in range(n)]})


def test_sending_stops_after_consecutive_failures_knowing_what_was_delivered() -> None:
    target = FailsFromThirdSend()
    report = send_events(target, _events(1_000), _events(0), batch_size=10)
    assert target.sends == 2 + MAX_CONSECUTIVE_FAILURES  # not 100 sends of failures
    assert report.stopped is not None and "delivered nothing (last: broker down)" in report.stopped
    assert report.delivered_ids == {f"e{i}" for i in range(20)}
    assert (report.total("accepted"), report.total("failed")) == (20, 10 * MAX_CONSECUTIVE_FAILURES)
