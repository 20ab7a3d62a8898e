"""The simulator's senders: simulated events to the ingestion API (HTTP) or straight to Kafka, at a
chosen rate, with counts of what was sent, accepted and rejected.

The API answers a batch all or nothing; on a 422 the sender drops exactly the events it names and
sends the rest again, so one planted defect does not cost its 499 valid neighbours. Payloads that are
not even JSON (planted ``malformed_json`` defects) cannot sit in a JSON array and go one per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import httpx
import orjson
import pyarrow as pa

from mdslab.api_keys import API_KEY_HEADER
from mdslab.errors import ServiceUnavailableError
from mdslab.eventbus import BrokerUnavailableError, EventPublisher
from mdslab.workloads.ingestion.events import CLAIMS, TRANSACTIONS, EventType, Topics


@dataclass
class Outcome:
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    reasons: list[str] = field(default_factory=list)
    accepted_ids: list[str] = field(default_factory=list)  # from the API's 202s (empty for Kafka)


@dataclass
class SendReport:
    sent: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    example_rejections: list[str] = field(default_factory=list)
    accepted_ids: list[str] = field(default_factory=list)
    delivered_ids: set[str] = field(default_factory=set)  # events the target took (API: 202; Kafka: acked)
    stopped: str | None = None  # why sending stopped before the end, if it did
    seconds: float = 0.0

    def add(self, event_type: EventType, sent: int, outcome: Outcome) -> None:
        name = event_type.name
        self.sent[name] = self.sent.get(name, 0) + sent
        self.accepted[name] = self.accepted.get(name, 0) + outcome.accepted
        self.rejected[name] = self.rejected.get(name, 0) + outcome.rejected
        self.failed[name] = self.failed.get(name, 0) + outcome.failed
        self.accepted_ids += outcome.accepted_ids
        room = 5 - len(self.example_rejections)
        self.example_rejections += outcome.reasons[: max(room, 0)]

    def total(self, what: str) -> int:
        counts: dict[str, int] = getattr(self, what)
        return sum(counts.values())


class Target(Protocol):
    def send(self, event_type: EventType, payloads: list[bytes]) -> Outcome: ...

    def close(self) -> None: ...


class ApiTarget:
    """POSTs batches to the ingestion API; retries 503s (broker down) as Retry-After asks."""

    def __init__(self, base_url: str, api_key: str, *, retries: int = 5, timeout_s: float = 30.0) -> None:
        self.base_url = base_url
        self._client = httpx.Client(base_url=base_url, headers={API_KEY_HEADER: api_key}, timeout=timeout_s)
        self._retries = retries

    def _post(self, event_type: EventType, body: bytes) -> httpx.Response:
        for attempt in range(self._retries + 1):
            try:
                response = self._client.post(
                    f"/v1/{event_type.name}", content=body, headers={"content-type": "application/json"}
                )
            except httpx.TransportError as exc:
                if attempt == self._retries:
                    raise ServiceUnavailableError(f"ingestion API at {self.base_url} unreachable: {exc}") from exc
                time.sleep(min(2**attempt, 10))
                continue
            if response.status_code != 503 or attempt == self._retries:
                return response
            time.sleep(float(response.headers.get("retry-after", "1")))
        raise AssertionError("unreachable")

    def send(self, event_type: EventType, payloads: list[bytes]) -> Outcome:
        outcome = Outcome()
        documents: list[bytes] = []
        for payload in payloads:
            try:
                orjson.loads(payload)
                documents.append(payload)
            except orjson.JSONDecodeError:
                self._account(outcome, self._post(event_type, payload), 1)
        for attempt in range(2):
            if not documents:
                break
            response = self._post(event_type, b"[" + b",".join(documents) + b"]")
            if response.status_code != 422 or attempt == 1:
                self._account(outcome, response, len(documents))
                break
            bad = {error["loc"][1] for error in response.json()["detail"] if len(error["loc"]) > 1}
            bad = {index for index in bad if isinstance(index, int)}
            if not bad:
                self._account(outcome, response, len(documents))
                break
            outcome.rejected += len(bad)
            outcome.reasons += _reasons(response)
            documents = [doc for index, doc in enumerate(documents) if index not in bad]
        return outcome

    @staticmethod
    def _account(outcome: Outcome, response: httpx.Response, count: int) -> None:
        if response.status_code == 202:
            outcome.accepted += count
            outcome.accepted_ids += response.json()["event_ids"]
        elif 400 <= response.status_code < 500:
            outcome.rejected += count
            outcome.reasons += _reasons(response)
        else:
            outcome.failed += count
            outcome.reasons.append(f"HTTP {response.status_code}: {response.text[:200]}")

    def close(self) -> None:
        self._client.close()


def _reasons(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return [f"HTTP {response.status_code}"]
    return [str(body.get("message") or body.get("detail"))]


class KafkaTarget:
    """Produces the raw payloads to the topics (no validation: the consumer dead-letters bad ones)."""

    def __init__(self, publisher: EventPublisher, topics: Topics) -> None:
        self._publisher = publisher
        self._topics = topics

    def send(self, event_type: EventType, payloads: list[bytes]) -> Outcome:
        messages = [(_key(event_type, payload), payload) for payload in payloads]
        try:
            self._publisher.publish_blocking(self._topics.of(event_type), messages, event_type.headers)
        except BrokerUnavailableError as exc:
            return Outcome(failed=len(payloads), reasons=[str(exc)])
        return Outcome(accepted=len(payloads))

    def close(self) -> None:
        self._publisher.close()


def _key(event_type: EventType, payload: bytes) -> bytes | None:
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    value = document.get(event_type.key_field) if isinstance(document, dict) else None
    return str(value).encode() if value is not None else None


def _chunks(table: pa.Table, size: int) -> Iterator[list[bytes]]:
    payloads = table.column("payload")
    for start in range(0, table.num_rows, size):
        yield [value.encode() for value in payloads.slice(start, size).to_pylist()]


def interleaved(transactions: pa.Table, claims: pa.Table, batch_size: int) -> Iterator[tuple[EventType, list[bytes]]]:
    """Batches of both streams, mixed in proportion, as two source systems would send them."""
    total = max(transactions.num_rows + claims.num_rows, 1)
    claim_batch = max(1, round(batch_size * claims.num_rows / total))
    streams = [(TRANSACTIONS, _chunks(transactions, batch_size)), (CLAIMS, _chunks(claims, claim_batch))]
    while streams:
        for entry in list(streams):
            event_type, chunks = entry
            chunk = next(chunks, None)
            if chunk is None:
                streams.remove(entry)
            else:
                yield event_type, chunk


MAX_CONSECUTIVE_FAILURES = 5


def send_events(
    target: Target,
    transactions: pa.Table,
    claims: pa.Table,
    *,
    rate: float | None = None,
    batch_size: int = 500,
    on_progress: Callable[[SendReport], None] | None = None,
    max_consecutive_failures: int = MAX_CONSECUTIVE_FAILURES,
) -> SendReport:
    """Send both event streams through ``target``, at most ``rate`` events per second (None: flat out).

    Stops after ``max_consecutive_failures`` sends in a row that delivered nothing (the target already
    retried each): the broker or API is down, and going on would only count failures for minutes. The
    report says why (``stopped``) and which events went through (``delivered_ids``)."""
    report = SendReport()
    if rate:  # about ten sends a second, so that a low rate is a steady flow rather than bursts
        batch_size = max(1, min(batch_size, int(rate / 10)))
    started = time.perf_counter()
    sent, failing = 0, 0
    for event_type, payloads in interleaved(transactions, claims, batch_size):
        if rate:
            ahead = started + sent / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        outcome = target.send(event_type, payloads)
        report.add(event_type, len(payloads), outcome)
        sent += len(payloads)
        if outcome.accepted_ids:
            report.delivered_ids.update(outcome.accepted_ids)
        elif outcome.accepted == len(payloads):
            report.delivered_ids |= _event_ids(payloads)
        failing = failing + 1 if outcome.failed == len(payloads) else 0
        if on_progress is not None:
            on_progress(report)
        if failing >= max_consecutive_failures:
            last = outcome.reasons[-1] if outcome.reasons else "no reason given"
            report.stopped = f"{failing} sends in a row delivered nothing (last: {last})"
            break
    report.seconds = time.perf_counter() - started
    return report


def _event_ids(payloads: list[bytes]) -> set[str]:
    ids = set()
    for payload in payloads:
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        if isinstance(document, dict) and isinstance(document.get("event_id"), str):
            ids.add(document["event_id"])
    return ids
