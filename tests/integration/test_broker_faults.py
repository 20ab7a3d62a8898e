"""The broker killed (kill -9) under steady publishing and brought back: the API's producer publishes
again by itself, and every acknowledged event is in the topic exactly once (a real Tansu of its own,
on a free port, its log in the run's S3)."""

from __future__ import annotations

import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from mdslab import objectstore
from mdslab.eventbus import BrokerUnavailableError, EventPublisher, TopicSpec, admin_client, ensure_topics
from mdslab.services.binaries import tansu_binary
from mdslab.services.layout import EmbeddedLayout
from mdslab.services.programs import tansu_program
from mdslab.settings import KafkaSettings, Settings
from tests.conftest import free_port

pytestmark = pytest.mark.integration
TOPIC = "faults"


@dataclass
class Broker:
    settings: Settings
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        layout = EmbeddedLayout.from_settings(self.settings)
        spec = tansu_program(self.settings, layout)  # the embedded broker's own command, on its own port
        command = [str(tansu_binary(layout.run_dir / "bin")), *spec.command[1:]]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=spec.env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no goodbye to the clients
        self.process.wait()


@pytest.fixture
def broker(services: Settings, tmp_path: Path) -> Iterator[Broker]:
    bucket = f"broker-{uuid.uuid4().hex[:8]}"
    objectstore.ensure_buckets(objectstore.s3_client(services.s3), [bucket])
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", broker_bucket=bucket)
    own = Broker(services.model_copy(update={"kafka": kafka}), tmp_path / "tansu.log")
    own.start()
    ensure_topics(admin_client(kafka), [TopicSpec(TOPIC, 1)], timeout_s=30)
    yield own
    if own.process is not None and own.process.poll() is None:
        own.kill()


@dataclass
class Publishing:
    """Publishes batches of uniquely keyed events back to back, remembering which were acknowledged."""

    publisher: EventPublisher
    acknowledged: list[str] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            ids = [uuid.uuid4().hex for _ in range(20)]
            try:
                self.publisher.publish_blocking(TOPIC, [(i.encode(), i.encode()) for i in ids], [])
            except BrokerUnavailableError as exc:
                self.failures.append((time.monotonic(), str(exc)))
                time.sleep(0.2)  # a client's back-off
                continue
            self.acknowledged.extend(ids)
            self.successes.append(time.monotonic())


def _topic_values(kafka: KafkaSettings) -> list[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": uuid.uuid4().hex,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.assign([TopicPartition(TOPIC, 0, OFFSET_BEGINNING)])
    values: list[str] = []
    idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < 15:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            values.append(message.value().decode())
            idle_since = time.monotonic()
    finally:
        consumer.close()
    return values


def test_a_killed_broker_coming_back_is_published_to_again_and_nothing_acknowledged_is_lost(broker: Broker) -> None:
    publisher = EventPublisher(broker.settings.kafka, delivery_timeout_s=5.0)
    publishing = Publishing(publisher)
    worker = threading.Thread(target=publishing.run, daemon=True)
    worker.start()
    try:
        time.sleep(3)
        before_kill = len(publishing.acknowledged)
        assert before_kill > 0
        broker.kill()
        killed_at = time.monotonic()
        time.sleep(5)
        broker.start()
        back_at = time.monotonic()
        deadline = back_at + 120
        while time.monotonic() < deadline and not [t for t in publishing.successes if t > back_at]:
            time.sleep(0.2)
        resumed = [t for t in publishing.successes if t > back_at]
        assert resumed, f"nothing published in 120 s after the broker came back: {publishing.failures[-1:]}"
        time.sleep(3)  # steady again
    finally:
        publishing.stop.set()
        worker.join(30)
        publisher.close()
    assert publisher.broker_reachable() or publisher.fatal_error is None
    print(  # the figures for the closing note and docs/reliability.md
        f"\nbroker down {back_at - killed_at:.1f} s; publishing resumed {resumed[0] - back_at:.1f} s after it was "
        f"back; {len(publishing.acknowledged):,} acknowledged; {len(publishing.failures)} failed batches; "
        f"producer replaced {publisher.recreated} time(s)"
    )
    stored = Counter(_topic_values(broker.settings.kafka))
    acknowledged = publishing.acknowledged
    assert [i for i in acknowledged if stored[i] == 0] == []  # nothing acknowledged was lost
    assert [i for i in acknowledged if stored[i] > 1] == []  # and nothing acknowledged is there twice


def test_feeding_with_the_broker_down_stops_says_the_counts_and_lands_no_label_for_lost_events(
    services: Settings,
) -> None:
    from mdslab.workloads.ingestion.events import Topics
    from mdslab.workloads.ingestion.sender import MAX_CONSECUTIVE_FAILURES, KafkaTarget
    from mdslab.workloads.ingestion.stream_feed import DeliveryError, already_fed, feed_simulation
    from mdslab.workloads.lake import lakehouse
    from mdslab.workloads.simulation_runs import next_run
    from mdslab.workloads.simulator import simulate
    from tests.conftest import fresh_lake

    settings = fresh_lake(services, "down")
    lake = lakehouse(settings)
    data = simulate(next_run(settings.postgres, transactions=3_000, seed=3).config)
    nobody = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")  # nothing listens there
    target = KafkaTarget(EventPublisher(nobody, delivery_timeout_s=1.0), Topics(""))
    try:
        with pytest.raises(DeliveryError) as raised:
            feed_simulation(settings, lake, data, target, batch_size=100)
    finally:
        target.close()  # a producer left open logs its connection errors into every later test's output
    message = str(raised.value)
    assert f"stopped: {MAX_CONSECUTIVE_FAILURES} sends in a row delivered nothing" in message
    counts = re.search(r"0 of (\d+) events sent were accepted, (\d+) failed, ([\d,]+) not sent", message)
    assert counts is not None, message
    sent, failed, unsent = int(counts[1]), int(counts[2]), int(counts[3].replace(",", ""))
    # it stopped after a few sends instead of counting failures through all 3,000 transactions
    assert sent == failed <= MAX_CONSECUTIVE_FAILURES * 100 and sent + unsent == data.transactions.num_rows + len(
        data.claims
    )
    assert not already_fed(lake, data)  # a re-run sends it again
    landed = lake.read_table("bronze.fraud_labels") if lake.exists("bronze.fraud_labels") else None
    assert landed is None or landed.num_rows == 0  # no label for a transaction that never arrived


def test_a_wiped_broker_log_behind_bronze_stops_the_consumer_instead_of_skipping_new_messages(
    services: Settings, broker: Broker
) -> None:
    """The broker's data lost (here: Tansu restarted on an empty bucket) while bronze holds offsets
    0..19: the new log hands out offsets 0.. again, which the consumer used to take for messages already
    in bronze and drop in silence."""
    import orjson

    from mdslab.workloads.bootstrap import ensure_resources
    from mdslab.workloads.ingestion.consumer import OffsetsWentBackwardsError, StreamConsumer
    from mdslab.workloads.ingestion.events import TRANSACTIONS, Topics
    from mdslab.workloads.lake import lakehouse
    from tests.conftest import fresh_lake, valid_transaction

    lab = fresh_lake(services, "wipe")
    kafka = broker.settings.kafka.model_copy(update={"topic_prefix": "wipe."})
    settings = lab.model_copy(update={"kafka": kafka})
    ensure_resources(settings)
    topic = Topics(kafka.topic_prefix).of(TRANSACTIONS)

    def publish(count: int) -> list[str]:
        events = [valid_transaction() for _ in range(count)]
        publisher = EventPublisher(kafka)
        try:  # one key: one partition, offsets 0.. in order
            publisher.publish_blocking(topic, [(b"C0000001", orjson.dumps(e)) for e in events], TRANSACTIONS.headers)
        finally:
            publisher.close()
        return [e["event_id"] for e in events]

    lake = lakehouse(settings)
    publish(20)
    StreamConsumer(settings, lake).run(until_caught_up=True)
    assert lake.row_count("bronze.transactions") == 20

    broker.kill()
    wiped = f"wiped-{uuid.uuid4().hex[:8]}"
    objectstore.ensure_buckets(objectstore.s3_client(services.s3), [wiped])
    broker.settings = broker.settings.model_copy(
        update={"kafka": broker.settings.kafka.model_copy(update={"broker_bucket": wiped})}
    )
    broker.start()
    ensure_resources(settings)  # the topics again, on the empty log
    new = publish(5)

    with pytest.raises(OffsetsWentBackwardsError) as raised:
        StreamConsumer(settings, lake).run(until_caught_up=True, assignment_timeout_s=60)
    message = str(raised.value)
    assert f"{topic}[" in message and "already holds this partition up to offset 19" in message
    assert "the topic was recreated or the broker's data wiped" in message
    assert lake.row_count("bronze.transactions") == 20  # nothing written
    assert not set(new) & set(lake.read_table("bronze.transactions", columns=["event_id"]).column(0).to_pylist())
