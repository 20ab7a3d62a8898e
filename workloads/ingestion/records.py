"""From Kafka messages to bronze rows: check each against its contract, and build the Arrow batches
for the bronze table of its topic and for the dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
from pydantic import ValidationError

from mdslab.workloads.ingestion.events import CONTRACT_VERSION_HEADER, EventType, header_value
from mdslab.workloads.lake import DEAD_LETTER_FIELDS, RAW_EVENT_FIELDS

STREAM_SOURCE = "kafka"
_BRONZE_SCHEMA = pa.schema(RAW_EVENT_FIELDS)
_DEAD_LETTER_SCHEMA = pa.schema(DEAD_LETTER_FIELDS)


@dataclass(frozen=True)
class Received:
    """One Kafka message, copied out of the client's object."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] | None


@dataclass(frozen=True)
class Problem:
    error_type: str
    error: str


def check(event_type: EventType, message: Received) -> tuple[dict[str, Any], None] | tuple[None, Problem]:
    """The event as a dict when it meets its contract, else what is wrong with it (one line)."""
    declared = header_value(message.headers, CONTRACT_VERSION_HEADER)
    ours = event_type.contract.CONTRACT_VERSION
    if declared is not None and declared.split(".")[0] != ours.split(".")[0]:
        return None, Problem(
            "unsupported_version", f"contract version {declared} is not compatible with {ours} (major differs)"
        )
    try:
        document = orjson.loads(message.value or b"")
    except orjson.JSONDecodeError as exc:
        return None, Problem("not_json", f"value is not JSON: {exc}")
    if not isinstance(document, dict):
        return None, Problem("not_an_object", f"value is a JSON {type(document).__name__}, not an object")
    try:
        event_type.contract.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'event'}: {error['msg']}" for error in exc.errors()
        )
        return None, Problem("contract_violation", problems)
    return document, None


def _timestamp(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms is not None and ms > 0 else None


@dataclass
class TopicBatch:
    """The rows one micro-batch brings for one topic, split into valid events and dead letters."""

    event_type: EventType
    received_at: datetime
    bronze: list[Received] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    dead: list[tuple[Received, Problem]] = field(default_factory=list)
    ends: dict[int, int] = field(default_factory=dict)  # partition -> next offset after this batch

    def add(self, message: Received) -> None:
        document, problem = check(self.event_type, message)
        if problem is None and document is not None:
            self.bronze.append(message)
            self.event_ids.append(str(document["event_id"]))
        elif problem is not None:
            self.dead.append((message, problem))
        self.ends[message.partition] = max(self.ends.get(message.partition, 0), message.offset + 1)

    def bronze_rows(self, skip_below: dict[int, int]) -> pa.Table:
        """Valid events, without those at offsets a table already holds (``skip_below``: partition ->
        first offset not yet written)."""
        kept = [
            (message, event_id)
            for message, event_id in zip(self.bronze, self.event_ids, strict=True)
            if message.offset >= skip_below.get(message.partition, 0)
        ]
        n = len(kept)
        at = self.received_at
        return pa.table(
            {
                "event_id": [event_id for _, event_id in kept],
                "payload": [(message.value or b"").decode() for message, _ in kept],
                "contract_version": [
                    header_value(message.headers, CONTRACT_VERSION_HEADER) or self.event_type.contract.CONTRACT_VERSION
                    for message, _ in kept
                ],
                "source": [STREAM_SOURCE] * n,
                "batch_id": pa.nulls(n, pa.string()),
                "ingested_at": [at] * n,
                "kafka_topic": [message.topic for message, _ in kept],
                "kafka_partition": [message.partition for message, _ in kept],
                "kafka_offset": [message.offset for message, _ in kept],
                "kafka_timestamp": [_timestamp(message.timestamp_ms) for message, _ in kept],
                "ingest_date": [at.date()] * n,
            },
            schema=_BRONZE_SCHEMA,
        )

    def dead_letter_rows(self, skip_below: dict[int, int]) -> pa.Table:
        kept = [(m, p) for m, p in self.dead if m.offset >= skip_below.get(m.partition, 0)]
        n = len(kept)
        at = self.received_at
        return pa.table(
            {
                "kafka_topic": [m.topic for m, _ in kept],
                "kafka_partition": [m.partition for m, _ in kept],
                "kafka_offset": [m.offset for m, _ in kept],
                "kafka_timestamp": [_timestamp(m.timestamp_ms) for m, _ in kept],
                "kafka_key": [m.key.decode("utf-8", errors="replace") if m.key else None for m, _ in kept],
                "payload": [(m.value or b"").decode("utf-8", errors="replace") for m, _ in kept],
                "contract": [self.event_type.contract.CONTRACT_NAME] * n,
                "contract_version": [header_value(m.headers, CONTRACT_VERSION_HEADER) for m, _ in kept],
                "error_type": [p.error_type for _, p in kept],
                "error": [p.error for _, p in kept],
                "ingested_at": [at] * n,
                "ingest_date": [at.date()] * n,
            },
            schema=_DEAD_LETTER_SCHEMA,
        )
