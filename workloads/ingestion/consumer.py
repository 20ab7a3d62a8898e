"""The stream consumer: Kafka topics -> bronze Delta tables, exactly once, with dead letters.

Exactly once comes from the table, not from the consumer's memory or the group's committed offsets:
every bronze commit records, per partition, the next offset to read as a Delta app transaction
(``kafka:<topic>:<partition>``) in the same commit as the rows. On (re)assignment the consumer seeks
to what the table says. A micro-batch is written in this order, each step skipping what its table
already holds (offsets below its recorded transaction):

1. dead letters to the dead-letter topic (at least once: a crash before step 2 repeats them there),
2. dead letters to ``bronze.dead_letters`` with their partitions' transactions,
3. valid events to the topic's bronze table with the transactions of every partition in the batch
   (also when no valid event is left, so the resume point always moves).

A ``kill -9`` between any two steps repeats only the steps not committed. The group's offsets are
committed to Kafka afterwards for monitoring (lag in Kafka tools); they are never read back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mdslab import eventbus
from mdslab.errors import MdslabError
from mdslab.eventbus import EventPublisher
from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads.ingestion.events import DEAD_LETTER_TABLE, Topics
from mdslab.workloads.ingestion.records import Received, TopicBatch
from mdslab.workloads.lineage.ingest_runs import StreamLineage

log = logging.getLogger(__name__)


def app_id(topic: str, partition: int) -> str:
    return f"kafka:{topic}:{partition}"


class StreamError(MdslabError):
    """The consumer cannot go on (e.g. the broker rejected the subscription)."""


class OffsetsWentBackwardsError(StreamError):
    """A partition's log is behind what bronze recorded: new messages would be taken for written ones."""


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "mdslab_stream_messages",
            "Messages the consumer wrote, by topic and outcome (bronze, dead_letter).",
            ["topic", "outcome"],
            registry=registry,
        )
        self.lag = Gauge(
            "mdslab_stream_consumer_lag",
            "Messages in the partition not yet in bronze (high watermark - next offset).",
            ["topic", "partition"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "mdslab_stream_batch_duration_seconds",
            "Time to validate and commit one micro-batch to the lake.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=registry,
        )
        self.last_commit = Gauge(
            "mdslab_stream_last_commit_timestamp_seconds", "Unix time of the last bronze commit.", registry=registry
        )


@dataclass
class StreamReport:
    batches: int = 0
    bronze_rows: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    skipped_already_written: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.bronze_rows.values()) + self.dead_letters


def _written(report: StreamReport) -> dict[str, int]:
    return {**report.bronze_rows, DEAD_LETTER_TABLE: report.dead_letters}


class StreamConsumer:
    """Consumes the event topics into bronze until stopped (or until caught up)."""

    def __init__(
        self,
        settings: Settings,
        lake: Lakehouse,
        *,
        metrics: StreamMetrics | None = None,
        dead_letter_publisher: EventPublisher | None = None,
    ) -> None:
        self.settings = settings
        self.lake = lake
        self.topics = Topics(settings.kafka.topic_prefix)
        self.metrics = metrics or StreamMetrics(CollectorRegistry())
        self._publisher = dead_letter_publisher
        self._owns_publisher = dead_letter_publisher is None
        self._consumer: Consumer | None = None
        self._assigned: set[tuple[str, int]] = set()
        self._positions: dict[tuple[str, int], int] = {}  # next offset to read, from the table
        self._partitions: set[tuple[str, int]] = set()  # every partition of the topics (until-caught-up)
        self._ends: dict[tuple[str, int], int] = {}  # where an assigned partition ended when we reached it
        self._pending: list[Received] = []
        self._last_lag_update = 0.0

    # --- assignment: resume from the table ---------------------------------------------------

    def _resume_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        table = self.topics.event_type(topic).bronze_table
        recorded = self.lake.transaction_versions(table, [app_id(topic, p) for p in partitions])
        return {p: recorded[app_id(topic, p)] for p in partitions if app_id(topic, p) in recorded}

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        by_topic: dict[str, list[int]] = {}
        for tp in partitions:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        for topic, numbers in by_topic.items():
            resume = self._resume_offsets(topic, numbers)
            for tp in partitions:
                if tp.topic == topic:
                    # Offset 0, not OFFSET_BEGINNING: Tansu's ListOffsets answers are not reliable (its
                    # "latest" is 1 on any topic); a deleted range makes the broker answer out-of-range
                    # and auto.offset.reset moves to the earliest offset it still has.
                    tp.offset = resume.get(tp.partition, 0)
                    key = (tp.topic, tp.partition)
                    self._assigned.add(key)
                    self._positions[key] = tp.offset
        consumer.assign(partitions)
        log.info("assigned %s", ", ".join(f"{t}[{p}]@{self._positions[(t, p)]}" for t, p in sorted(self._assigned)))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        # Unwritten messages of revoked partitions are dropped: the next owner reads them from the table's offsets.
        self._pending = [m for m in self._pending if (m.topic, m.partition) not in gone]
        self._assigned -= gone
        for key in gone:
            self._positions.pop(key, None)
            self._ends.pop(key, None)
        consumer.unassign()

    # --- the loop -------------------------------------------------------------------------------

    def _connect(self) -> Consumer:
        config = eventbus.client_config(
            self.settings.kafka,
            **{
                "group.id": self.settings.stream.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": True,  # how until-caught-up learns where each partition ends
                "fetch.wait.max.ms": 100,
                "session.timeout.ms": 10_000,  # a killed consumer's partitions move on after 10 s
                # also bounds a rebalance's wait for members that do not rejoin; a batch commit takes ~1 s
                "max.poll.interval.ms": 30_000,
            },
        )
        return Consumer(config)

    def _list_partitions(self, consumer: Consumer) -> None:
        metadata = consumer.list_topics(timeout=10)
        for topic in self.topics.events:
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                raise StreamError(
                    f"topic {topic} does not exist on {self.settings.kafka.bootstrap_servers}: run `mdslab up`"
                )
            self._partitions |= {(topic, partition) for partition in found.partitions}

    def caught_up(self) -> bool:
        """Every partition of the topics was assigned to this consumer, read to its end (the broker's
        end-of-partition event, whose offset comes from fetch responses) and written to bronze.

        The end is learned by reading, not asked for: Tansu's ListOffsets does not give it. After a
        restart the group may still count the dead member; its partitions come here once its session
        times out, so a run waits for them rather than stopping early.
        """
        return bool(self._partitions) and all(
            key in self._ends and self._positions.get(key, 0) >= self._ends[key] for key in self._partitions
        )

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        until_caught_up: bool = False,
        on_batch: Callable[[StreamReport], None] | None = None,
        assignment_timeout_s: float = 90.0,
    ) -> StreamReport:
        """Consume until ``stop`` is set (the batch in hand is written first) or, with
        ``until_caught_up``, until bronze holds every partition up to its end as last read (see
        :meth:`caught_up`)."""
        stop = stop or threading.Event()
        report = StreamReport()
        started = time.perf_counter()
        stream = self.settings.stream
        if self._owns_publisher:
            self._publisher = EventPublisher(self.settings.kafka, client_id="mdslab-dead-letters")
        consumer = self._consumer = self._connect()
        batch_started: float | None = None
        lineage = StreamLineage(self.settings, self.lake)
        lineage.started()
        try:
            if until_caught_up:
                self._list_partitions(consumer)
            consumer.subscribe(self.topics.events, on_assign=self._on_assign, on_revoke=self._on_revoke)
            while not stop.is_set():
                if until_caught_up and not self._pending and self.caught_up():
                    break
                if until_caught_up and not self._assigned and time.perf_counter() - started > assignment_timeout_s:
                    raise StreamError(
                        f"no partition of {', '.join(self.topics.events)} was assigned within "
                        f"{assignment_timeout_s:.0f} s and bronze is not caught up: is another consumer of group "
                        f"{stream.group_id} stuck?"
                    )
                wait = (
                    stream.batch_max_seconds
                    if batch_started is None
                    else max(0.0, batch_started + stream.batch_max_seconds - time.perf_counter())
                )
                messages = consumer.consume(
                    num_messages=max(1, stream.batch_max_messages - len(self._pending)), timeout=min(wait, 0.5)
                )
                self._take(messages)
                if self._pending and batch_started is None:
                    batch_started = time.perf_counter()
                full = len(self._pending) >= stream.batch_max_messages
                due = batch_started is not None and time.perf_counter() - batch_started >= stream.batch_max_seconds
                if self._pending and (full or due or (until_caught_up and self._reached_ends())):
                    self._write_batch(report)
                    batch_started = None
                    lineage.committed(_written(report))
                    if on_batch is not None:
                        on_batch(report)
                self._update_lag()
            if self._pending:
                self._write_batch(report)
        except KafkaException as exc:
            failure = StreamError(f"Kafka at {self.settings.kafka.bootstrap_servers}: {exc}")
            lineage.finished(_written(report), failure)
            raise failure from exc
        except BaseException as exc:
            lineage.finished(_written(report), exc)
            raise
        else:
            lineage.finished(_written(report))
        finally:
            consumer.close()
            self._consumer = None
            if self._owns_publisher and self._publisher is not None:
                self._publisher.close()
        report.seconds = time.perf_counter() - started
        return report

    def _take(self, messages: list[Message]) -> None:
        """Add what was fetched to the batch in hand: records of assigned partitions, in order; a
        partition's end is noted (for ``until_caught_up``), other broker errors are logged."""
        for message in messages:
            error = message.error()
            key = (message.topic(), message.partition())
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    if key in self._assigned:
                        self._check_log_not_behind(key)
                        self._ends[key] = message.offset() or 0
                else:
                    log.warning("Kafka: %s", error.str())
                continue
            if key not in self._assigned:
                continue
            if (message.offset() or 0) < self._positions.get(key, 0):
                # we only ever fetch from the next offset bronze lacks: an earlier one means the
                # broker moved us back (out of range, reset to its earliest) over a new log
                raise self._went_backwards(key, message.offset() or 0)
            self._pending.append(_copy(message))

    def _reached_ends(self) -> bool:
        """Whether every assigned partition has reached its end (then write the batch without waiting)."""
        return bool(self._assigned) and all(key in self._ends for key in self._assigned)

    # --- writing one micro-batch exactly once ---------------------------------------------------

    def _write_batch(self, report: StreamReport) -> None:
        started = time.perf_counter()
        received_at = datetime.now(UTC)
        batches: dict[str, TopicBatch] = {}
        for message in self._pending:
            batch = batches.get(message.topic)
            if batch is None:
                batch = batches[message.topic] = TopicBatch(self.topics.event_type(message.topic), received_at)
            batch.add(message)
        dead_written = self._write_dead_letters(batches)
        report.dead_letters += dead_written
        for topic, batch in batches.items():
            table = batch.event_type.bronze_table
            ids = {p: app_id(topic, p) for p in batch.ends}
            recorded = self.lake.transaction_versions(table, ids.values())
            written = {p: recorded[ids[p]] for p in batch.ends if ids[p] in recorded}
            rows = batch.bronze_rows(written)
            report.skipped_already_written += len(batch.bronze) - rows.num_rows
            moving = {ids[p]: end for p, end in batch.ends.items() if end > written.get(p, -1)}
            if moving:
                self.lake.write_table(
                    table,
                    rows,
                    metadata={"operation": "stream", "rows": rows.num_rows, "offsets": moving},
                    app_transactions=moving,
                )
            report.bronze_rows[table] = report.bronze_rows.get(table, 0) + rows.num_rows
            self.metrics.messages.labels(topic, "bronze").inc(rows.num_rows)
            for p, end in batch.ends.items():
                self._positions[(topic, p)] = end
        self._commit_group_offsets(batches)
        self._pending = []
        report.batches += 1
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.last_commit.set(time.time())

    def _write_dead_letters(self, batches: dict[str, TopicBatch]) -> int:
        dead = {topic: batch for topic, batch in batches.items() if batch.dead}
        if not dead:
            return 0
        ids = {(topic, p): app_id(topic, p) for topic, batch in dead.items() for p in batch.ends}
        recorded = self.lake.transaction_versions(DEAD_LETTER_TABLE, ids.values())
        tables = []
        moving: dict[str, int] = {}
        for topic, batch in dead.items():
            written = {p: recorded[ids[(topic, p)]] for p in batch.ends if ids[(topic, p)] in recorded}
            rows = batch.dead_letter_rows(written)
            if rows.num_rows:
                tables.append(rows)
                moving.update({ids[(topic, p)]: end for p, end in batch.ends.items() if end > written.get(p, -1)})
                self.metrics.messages.labels(topic, "dead_letter").inc(rows.num_rows)
        if not tables:
            return 0
        rows = pa.concat_tables(tables)
        self._publish_dead_letters(rows)
        self.lake.write_table(
            DEAD_LETTER_TABLE,
            rows,
            metadata={"operation": "stream dead letters", "rows": rows.num_rows, "offsets": moving},
            app_transactions=moving,
        )
        log.warning(
            "%d messages failed their contract: see %s and topic %s",
            rows.num_rows,
            DEAD_LETTER_TABLE,
            self.topics.dead_letters,
        )
        return int(rows.num_rows)

    def _publish_dead_letters(self, rows: pa.Table) -> None:
        assert self._publisher is not None
        messages = []
        for row in rows.to_pylist():
            source = f"{row['kafka_topic']}/{row['kafka_partition']}/{row['kafka_offset']}"
            value = {
                "source": source,
                "error_type": row["error_type"],
                "error": row["error"],
                "payload": row["payload"],
                "contract": row["contract"],
                "contract_version": row["contract_version"],
            }
            messages.append((source.encode(), orjson.dumps(value)))
        self._publisher.publish_blocking(self.topics.dead_letters, messages, [("error_source", b"mdslab-stream")])

    def _commit_group_offsets(self, batches: dict[str, TopicBatch]) -> None:
        if self._consumer is None:
            return
        offsets = [TopicPartition(topic, p, end) for topic, batch in batches.items() for p, end in batch.ends.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # only monitoring depends on it
            log.info("could not commit group offsets (bronze holds the truth): %s", exc)

    def _check_log_not_behind(self, key: tuple[str, int]) -> None:
        """Stop when the partition's log ends before the offset bronze has written up to.

        The topic was recreated or the broker's data wiped while bronze kept its offsets: the new
        messages get offsets bronze already holds, and would be skipped as written (Tansu answers a fetch
        past its log's end with nothing, so no error reveals it). The high watermark is the one the last
        fetch response carried (a ListOffsets request is not reliable on Tansu)."""
        if self._consumer is None:
            return
        try:
            _, high = self._consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
        except KafkaException:
            return
        if 0 <= high < self._positions.get(key, 0):
            raise self._went_backwards(key, high)

    def _went_backwards(self, key: tuple[str, int], broker_offset: int) -> OffsetsWentBackwardsError:
        topic, partition = key
        table = self.topics.event_type(topic).bronze_table
        return OffsetsWentBackwardsError(
            f"{topic}[{partition}]: the broker is at offset {broker_offset} but {table} already holds this "
            f"partition up to offset {self._positions.get(key, 0) - 1}: the topic was recreated or the broker's "
            "data wiped. Nothing was written; new messages would have been taken for ones already in bronze. "
            "Start a new lake (or new topics: MDSLAB_KAFKA__TOPIC_PREFIX) for the new log"
        )

    def _update_lag(self) -> None:
        now = time.monotonic()
        if self._consumer is None or now - self._last_lag_update < 1.0:
            return
        self._last_lag_update = now
        for topic, partition in sorted(self._assigned):
            try:
                # cached: the high watermark of the last fetch response (a ListOffsets request is not reliable on Tansu)
                _, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            except KafkaException:
                continue
            position = self._positions.get((topic, partition), 0)
            if 0 <= high < position:
                raise self._went_backwards((topic, partition), high)
            self.metrics.lag.labels(topic, str(partition)).set(max(0, high - position))


def _copy(message: Any) -> Received:
    kind, stamp = message.timestamp()
    return Received(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        timestamp_ms=stamp if kind else None,
        key=message.key(),
        value=message.value(),
        headers=message.headers(),
    )
