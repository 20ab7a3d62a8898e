"""Kafka clients (confluent-kafka), configured from one place.

The same code talks to the embedded Tansu broker and to a real Kafka cluster; only
``bootstrap_servers`` differs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from mdslab.errors import MdslabError
from mdslab.settings import KafkaSettings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] | None = None


logger = logging.getLogger(__name__)
_librdkafka_log = logging.getLogger("mdslab.kafka.client")


def client_config(kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """Base config; librdkafka's own log goes to Python logging instead of raw stderr lines."""
    return {"bootstrap.servers": kafka.bootstrap_servers, "logger": _librdkafka_log, **extra}


def admin_client(kafka: KafkaSettings) -> AdminClient:
    return AdminClient(client_config(kafka, **{"socket.timeout.ms": 5000}))


def list_topics(admin: AdminClient, *, timeout_s: float = 5.0) -> dict[str, int]:
    """Topic name -> partition count, as the broker reports it."""
    metadata = admin.list_topics(timeout=timeout_s)
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


def ensure_topics(admin: AdminClient, specs: list[TopicSpec], *, timeout_s: float = 15.0) -> list[str]:
    """Create the topics that do not exist yet; returns the ones it created.

    A topic that exists with fewer partitions than asked is left alone: shrinking or growing a
    topic changes key -> partition routing, which is an operator's decision, not a side effect.
    """
    existing = list_topics(admin, timeout_s=timeout_s)
    missing = [s for s in specs if s.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, num_partitions=s.partitions, config=s.config or {}) for s in missing],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created


class BrokerUnavailableError(MdslabError):
    """The broker did not acknowledge in time; nothing the caller sent may be assumed stored."""


Headers = list[tuple[str, str | bytes | None]]
OutgoingMessage = tuple[bytes | None, bytes]  # (key, value)


# Errors after which an idempotent producer never publishes again: its producer id or epoch is no longer
# the broker's (a broker killed under in-flight batches comes back with newer producer state, and answers
# PRODUCER_FENCED to every later batch; seen with Tansu), or librdkafka declared the instance fatal.
QUEUE_FULL_WAIT_S = 0.01  # how long a publish waits for the broker to drain a full local queue before retrying
_PRODUCER_STATE_ERRORS = frozenset(
    {
        KafkaError.PRODUCER_FENCED,
        KafkaError._FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
    }
)


def _needs_new_producer(error: KafkaError) -> bool:
    return bool(error.fatal()) or error.code() in _PRODUCER_STATE_ERRORS


class _Acks:
    """Counts the delivery reports of one publish call and remembers the first error."""

    def __init__(self, expected: int, done: Callable[[], None]) -> None:
        self.remaining = expected
        self.error: KafkaError | None = None
        self._done = done
        self._lock = threading.Lock()

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        with self._lock:
            if err is not None and self.error is None:
                self.error = err
            self.remaining -= 1
            finished = self.remaining == 0
        if finished:
            self._done()


class EventPublisher:
    """An idempotent producer (``acks=all``) whose publish calls return only once the broker has
    acknowledged every message, which is what lets the API answer 202 for events it will not lose.

    A background thread serves the delivery reports, so many requests (coroutines or threads) can
    publish at once through the one producer. ``delivery_timeout_s`` bounds how long a message may
    wait for the broker: past it the call fails with :class:`BrokerUnavailableError`.
    """

    def __init__(self, kafka: KafkaSettings, *, delivery_timeout_s: float = 10.0, client_id: str = "mdslab") -> None:
        self.delivery_timeout_s = delivery_timeout_s
        self._bootstrap = kafka.bootstrap_servers
        self._config = client_config(
            kafka,
            **{
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.timeout.ms": int(delivery_timeout_s * 1000),
                "queue.buffering.max.messages": 500_000,
                "error_cb": self._on_error,
            },
        )
        self._fatal: KafkaError | None = None  # the error that made the current producer unusable
        self.recreated = 0  # producers replaced after a fatal error
        self._swap = threading.Lock()
        self._producer = self._new_producer()
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._serve_reports, name="kafka-delivery-reports", daemon=True)
        self._poller.start()

    def _new_producer(self) -> Producer:
        return Producer(self._config)

    def _on_error(self, err: KafkaError) -> None:
        """librdkafka's client-level errors: see :func:`_needs_new_producer`."""
        if _needs_new_producer(err):
            self._fatal = err

    @property
    def fatal_error(self) -> str | None:
        """Why the producer cannot publish right now (it is being replaced), or None."""
        return None if self._fatal is None else self._fatal.str()

    def _recreate(self) -> None:
        """Replace a fatally failed producer. Its queued messages fail now (their requests answer 503 and
        are retried by the client); what the broker acknowledged before stays stored exactly once."""
        with self._swap:
            failed, error = self._producer, self._fatal
            if error is None:
                return
            self._producer, self._fatal = self._new_producer(), None
            self.recreated += 1
        failed.purge()
        failed.poll(0)  # the purged messages' delivery reports: their publish calls fail at once
        logger.warning(
            "Kafka producer replaced after a fatal error (%s); acknowledged events are unaffected", error.str()
        )

    def _serve_reports(self) -> None:
        while not self._closed.is_set():
            if self._fatal is not None:
                self._recreate()
            self._producer.poll(0.05)

    def _produce_from(
        self, start: int, topic: str, messages: Sequence[OutgoingMessage], headers: Headers, acks: _Acks
    ) -> int:
        """Queue messages from index ``start`` until done or librdkafka's local queue is full; returns the
        index of the first message not queued (the caller waits for the broker to drain, then resumes)."""
        for index in range(start, len(messages)):
            key, value = messages[index]
            try:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=acks)
            except BufferError:
                return index
            except KafkaException as exc:  # a fatal producer refuses everything until it is replaced
                error = exc.args[0]
                if isinstance(error, KafkaError) and _needs_new_producer(error):
                    self._fatal = error
                raise BrokerUnavailableError(
                    f"Kafka at {self._bootstrap} refused the messages for topic {topic}: {exc}; retry shortly"
                ) from None
        return len(messages)

    def _queue_all(
        self, topic: str, messages: Sequence[OutgoingMessage], headers: Headers, acks: _Acks
    ) -> Iterator[None]:
        """Queue every message, yielding each time librdkafka's local queue is full (the caller waits,
        its own way, for the broker to drain it); refused once that lasts ``delivery_timeout_s``. The one
        produce path of :meth:`publish` and :meth:`publish_blocking`."""
        deadline, queued = time.monotonic() + self.delivery_timeout_s, 0
        while (queued := self._produce_from(queued, topic, messages, headers, acks)) < len(messages):
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(
                    f"Kafka at {self._bootstrap} is not taking messages (local queue full); retry later"
                )
            yield

    def _raise_for(self, acks: _Acks, topic: str) -> None:
        if acks.error is not None:
            if _needs_new_producer(acks.error):
                self._fatal = acks.error
            raise BrokerUnavailableError(
                f"Kafka at {self._bootstrap} did not store the messages for topic {topic}: {acks.error.str()}"
            )

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage], headers: Headers) -> None:
        """Produce ``messages`` and wait (without blocking the event loop) until all are acknowledged."""
        if not messages:
            return
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not finished.done():
                finished.set_result(None)

        def done() -> None:
            loop.call_soon_threadsafe(settle)

        acks = _Acks(len(messages), done)
        for _full in self._queue_all(topic, messages, headers, acks):
            await asyncio.sleep(QUEUE_FULL_WAIT_S)  # let the broker drain the local queue; other requests go on
        try:
            await asyncio.wait_for(asyncio.shield(finished), timeout=self.delivery_timeout_s + 5)
        except TimeoutError:
            raise BrokerUnavailableError(
                f"Kafka at {self._bootstrap} did not acknowledge topic {topic} in time"
            ) from None
        self._raise_for(acks, topic)

    def publish_blocking(self, topic: str, messages: Sequence[OutgoingMessage], headers: Headers) -> None:
        """The same as :meth:`publish`, for callers without an event loop."""
        if not messages:
            return
        finished = threading.Event()
        acks = _Acks(len(messages), finished.set)
        for _full in self._queue_all(topic, messages, headers, acks):
            time.sleep(QUEUE_FULL_WAIT_S)
        if not finished.wait(self.delivery_timeout_s + 5):
            raise BrokerUnavailableError(f"Kafka at {self._bootstrap} did not acknowledge topic {topic} in time")
        self._raise_for(acks, topic)

    def broker_reachable(self, timeout_s: float = 2.0) -> bool:
        """Whether the cluster answers a metadata request now and the producer can publish (readiness)."""
        if self._fatal is not None:
            return False
        try:
            self._producer.list_topics(timeout=timeout_s)
        except KafkaException:
            return False
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout_s``), then stop the report thread."""
        self._producer.flush(timeout_s)
        self._closed.set()
        self._poller.join(timeout=2)
