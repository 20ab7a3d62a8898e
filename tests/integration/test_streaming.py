"""The streaming path on the real embedded broker and lake: API -> Kafka -> bronze, exactly once.

Each test has its own topics, consumer group and buckets (the ``streaming`` fixture).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from confluent_kafka import Consumer

from mdslab import eventbus
from mdslab.api.app import create_app
from mdslab.api.server import background_server
from mdslab.eventbus import EventPublisher
from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads.ingestion.consumer import DEAD_LETTER_TABLE, StreamConsumer
from mdslab.workloads.ingestion.events import CLAIMS, TRANSACTIONS, Topics
from mdslab.workloads.ingestion.sender import ApiTarget, KafkaTarget, send_events
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.ingest_runs import STREAM_JOB
from mdslab.workloads.lineage.store import read_events
from mdslab.workloads.simulator import SimulationConfig, simulate
from tests.conftest import valid_transaction

pytestmark = pytest.mark.integration
ADDRESS = ["kafka_topic", "kafka_partition", "kafka_offset"]


def consume(settings: Settings, lake: Lakehouse | None = None) -> Any:
    return StreamConsumer(settings, lake or lakehouse(settings)).run(until_caught_up=True)


def addresses(table: pa.Table) -> list[tuple[str, int, int]]:
    return list(zip(*(table.column(name).to_pylist() for name in ADDRESS), strict=True))


def read_topic(settings: Settings, topic: str, expected: int, timeout_s: float = 30.0) -> list[Any]:
    consumer = Consumer(
        eventbus.client_config(
            settings.kafka, **{"group.id": f"reader-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest"}
        )
    )
    consumer.subscribe([topic])
    found: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < expected and time.monotonic() < deadline:
            found += [m for m in consumer.consume(100, timeout=0.5) if m.error() is None]
    finally:
        consumer.close()
    return found


def test_every_accepted_event_lands_in_bronze_exactly_once(streaming: Settings) -> None:
    data = simulate(SimulationConfig(transactions=3000, seed=11, invalid_share=0.03))
    with background_server(create_app(streaming)) as url:
        target = ApiTarget(url, streaming.api.api_key.get_secret_value())
        sent = send_events(target, data.transactions, data.claims, batch_size=400)
        target.close()
    assert sent.total("failed") == 0
    assert sent.total("rejected") > 0, "the planted defects must be refused by the API"
    assert sent.total("accepted") + sent.total("rejected") == data.transactions.num_rows + data.claims.num_rows

    lake = lakehouse(streaming)
    report = consume(streaming, lake)
    bronze = {e.name: lake.read_table(e.bronze_table) for e in (TRANSACTIONS, CLAIMS)}
    assert {name: table.num_rows for name, table in bronze.items()} == sent.accepted
    assert report.dead_letters == 0  # the API let only valid events through
    all_ids = bronze["transactions"].column("event_id").to_pylist() + bronze["claims"].column("event_id").to_pylist()
    assert Counter(all_ids) == Counter(sent.accepted_ids)
    for table in bronze.values():
        assert len(set(addresses(table))) == table.num_rows, "a Kafka message was written twice"
        assert set(table.column("source").to_pylist()) == {"kafka"}

    versions = {e.bronze_table: lake.version(e.bronze_table) for e in (TRANSACTIONS, CLAIMS)}
    again = consume(streaming, lake)
    assert again.total == 0
    assert {table: lake.version(table) for table in versions} == versions

    # each consumer run is an OpenLineage run: topic -> bronze, at the versions written, rows counted
    runs: dict[str, list[Any]] = {}
    for event in read_events(streaming.postgres, job=STREAM_JOB):
        runs.setdefault(event["run"]["runId"], []).append(event)
    assert [[e["eventType"] for e in run] for run in runs.values()] == [["START", "COMPLETE"]] * 2
    complete = next(iter(runs.values()))[-1]
    topic = naming.kafka_topic(streaming.kafka, Topics(streaming.kafka.topic_prefix).of(TRANSACTIONS))
    output = next(
        d for d in complete["outputs"] if (d["namespace"], d["name"]) == naming.lake_table(lake, "bronze.transactions")
    )
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == sent.accepted["transactions"]
    assert output["facets"]["version"]["datasetVersion"] == str(versions["bronze.transactions"])
    (source,) = output["facets"]["columnLineage"]["fields"]["payload"]["inputFields"]
    assert (source["namespace"], source["name"], source["field"]) == (*topic, "value")


def test_api_publishes_keyed_messages_with_the_contract_version(streaming: Settings) -> None:
    event = valid_transaction(customer_id="C0000042")
    with background_server(create_app(streaming)) as url:
        target = ApiTarget(url, streaming.api.api_key.get_secret_value())
        outcome = target.send(TRANSACTIONS, [orjson.dumps(event)])
        target.close()
    assert outcome.accepted_ids == [event["event_id"]]
    (message,) = read_topic(streaming, Topics(streaming.kafka.topic_prefix).of(TRANSACTIONS), 1)
    assert message.key() == b"C0000042"
    assert orjson.loads(message.value()) == event
    assert dict(message.headers()) == {"contract": b"transaction", "contract_version": b"1.0.0"}


def test_the_ingest_lambda_publishes_as_the_api_does_and_its_events_reach_bronze(streaming: Settings) -> None:
    """infra/sam's handler on API Gateway events against the embedded Kafka: accepted -> in bronze once,
    with the contract headers (keys: the API's own kafka_messages); a refused batch publishes nothing."""
    from mdslab.api.lambda_ingest import LambdaIngest

    key = streaming.api.api_key.get_secret_value()
    publisher = EventPublisher(streaming.kafka, client_id="test-lambda")
    handler = LambdaIngest(streaming, publisher)
    batch = [valid_transaction(customer_id="C0000042"), valid_transaction()]

    def post(events: list[dict[str, Any]]) -> dict[str, Any]:
        body = orjson.dumps(events).decode()
        return handler({"httpMethod": "POST", "path": "/v1/transactions", "headers": {"X-API-Key": key}, "body": body})

    try:
        accepted = post(batch)
        refused = post([valid_transaction(), valid_transaction(amount=-1)])  # all or nothing, as the API
    finally:
        publisher.close()
    assert accepted["statusCode"] == 202, accepted
    assert orjson.loads(accepted["body"]) == {"accepted": 2, "event_ids": [e["event_id"] for e in batch]}
    assert refused["statusCode"] == 422 and orjson.loads(refused["body"])["detail"][0]["loc"][:2] == ["body", 1]
    lake = lakehouse(streaming)
    consume(streaming, lake)
    bronze = lake.read_table(TRANSACTIONS.bronze_table).to_pylist()
    assert sorted(row["event_id"] for row in bronze) == sorted(e["event_id"] for e in batch)
    assert {row["event_id"]: orjson.loads(row["payload"]) for row in bronze} == {e["event_id"]: e for e in batch}
    assert {row["contract_version"] for row in bronze} == {"1.0.0"}  # the contract headers the API sends


def test_poison_messages_go_to_dead_letters_and_the_valid_ones_around_them_to_bronze(streaming: Settings) -> None:
    topics = Topics(streaming.kafka.topic_prefix)
    first, last = valid_transaction(), valid_transaction()
    poison = [b"{not json", orjson.dumps(valid_transaction(amount=-1)), b"[1, 2]"]
    messages = [(b"C0000001", value) for value in [orjson.dumps(first), *poison, orjson.dumps(last)]]
    publisher = EventPublisher(streaming.kafka)
    publisher.publish_blocking(topics.of(TRANSACTIONS), messages, TRANSACTIONS.headers)
    publisher.close()

    lake = lakehouse(streaming)
    report = consume(streaming, lake)
    assert report.dead_letters == 3
    bronze = lake.read_table("bronze.transactions")
    assert bronze.column("event_id").to_pylist() == [first["event_id"], last["event_id"]]
    dead = lake.read_table(DEAD_LETTER_TABLE).sort_by("kafka_offset").to_pylist()
    assert [row["error_type"] for row in dead] == ["not_json", "contract_violation", "not_an_object"]
    assert dead[1]["error"] == "amount: Input should be greater than 0"
    assert [row["kafka_offset"] for row in dead] == [1, 2, 3]
    letters = read_topic(streaming, topics.dead_letters, 3)
    assert sorted(orjson.loads(m.value())["error_type"] for m in letters) == sorted(r["error_type"] for r in dead)


def test_a_crash_between_the_dead_letter_and_bronze_commits_repeats_neither(streaming: Settings) -> None:
    topics = Topics(streaming.kafka.topic_prefix)
    values = [orjson.dumps(valid_transaction()) for _ in range(3)] + [
        b"oops",
        orjson.dumps(valid_transaction(currency="XXX")),
    ]
    publisher = EventPublisher(streaming.kafka)
    publisher.publish_blocking(topics.of(TRANSACTIONS), [(b"C0000001", v) for v in values], TRANSACTIONS.headers)
    publisher.close()

    crashing = lakehouse(streaming)
    write = crashing.write_table

    def crash_before_bronze(name: str, *args: Any, **kwargs: Any) -> int:
        if name == "bronze.transactions":
            raise RuntimeError("simulated crash after the dead-letter commit")
        return write(name, *args, **kwargs)

    crashing.write_table = crash_before_bronze  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="simulated crash"):
        consume(streaming, crashing)
    lake = lakehouse(streaming)
    assert lake.row_count(DEAD_LETTER_TABLE) == 2
    assert not lake.exists("bronze.transactions")

    report = consume(streaming, lake)
    assert lake.row_count(DEAD_LETTER_TABLE) == 2, "dead letters were written twice"
    assert lake.row_count("bronze.transactions") == 3
    assert report.dead_letters == 0


def _wait_for(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_kill_9_mid_stream_then_restart_leaves_no_duplicate_and_no_gap(streaming: Settings) -> None:
    data = simulate(SimulationConfig(transactions=30_000, seed=3, invalid_share=0.02))
    target = KafkaTarget(EventPublisher(streaming.kafka), Topics(streaming.kafka.topic_prefix))
    sent = send_events(target, data.transactions, data.claims, batch_size=5000)
    target.close()
    total = sent.total("accepted")
    assert total == data.transactions.num_rows + data.claims.num_rows

    lake = lakehouse(streaming)
    env = os.environ | streaming.environment() | {"MDSLAB_STREAM__METRICS_PORT": "0"}
    command = [str(Path(sys.executable).parent / "mdslab"), "stream"]
    for kill_after_commits in (2, 6):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_for(
                lambda n=kill_after_commits: (lake.version("bronze.transactions") or 0) >= n,
                120,
                f"{kill_after_commits} bronze commits",
            )
        finally:
            process.kill()  # SIGKILL: no cleanup, no final batch
            _, stderr = process.communicate(timeout=30)
        assert process.returncode == -9, stderr.decode()[-2000:]
    written = sum(lake.info(table).rows for table in ("bronze.transactions", "bronze.claims"))
    assert written < total, "the consumer finished before it was killed; the test proves nothing"

    finish = subprocess.run(
        [*command, "--until-caught-up"], env=env | {"MDSLAB_LOG_LEVEL": "INFO"}, capture_output=True, timeout=300
    )
    assert finish.returncode == 0, finish.stderr.decode()[-2000:]

    rows = [lake.read_table(t, columns=ADDRESS) for t in ("bronze.transactions", "bronze.claims", DEAD_LETTER_TABLE)]
    seen = [address for table in rows for address in addresses(table)]
    assert len(seen) == len(set(seen)), "a message was written twice"
    assert len(seen) == total, f"a message is missing; the consumer said: {finish.stderr.decode()[-3000:]}"
    by_partition: dict[tuple[str, int], list[int]] = {}
    for topic, partition, offset in seen:
        by_partition.setdefault((topic, partition), []).append(offset)
    for offsets in by_partition.values():
        assert sorted(offsets) == list(range(len(offsets))), "offsets have a gap"
    assert rows[2].num_rows > 0  # the planted malformed payloads were dead-lettered


def test_demo_streams_through_the_api_and_a_rerun_sends_nothing(services: Settings, spark_provider: Any) -> None:
    import json

    from typer.testing import CliRunner

    from mdslab.cli.main import app

    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--rows", "2000", "--seed", "23", "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    sent = summary["sent"]
    assert not sent["skipped"] and sent["failed"] == 0 and sent["rejected"] > 0
    tables = {t["name"]: t for t in summary["tables"]}
    assert summary["streamed"]["bronze_rows"]["bronze.transactions"] == sent["by_type"]["transactions"]["accepted"]
    rerun = runner.invoke(app, ["demo", "--rows", "2000", "--seed", "23", "--json"])
    assert rerun.exit_code == 0, rerun.output
    again = json.loads(rerun.stdout)
    assert again["sent"] == {"skipped": True}
    assert again["streamed"]["bronze_rows"] == {}
    assert {step["step"]: step["status"] for step in again["steps"]} == {
        step["step"]: "up_to_date" for step in summary["steps"]
    }
    assert {t["name"]: t["version"] for t in again["tables"]} == {name: t["version"] for name, t in tables.items()}


def test_sigterm_writes_the_batch_in_hand_and_the_lag_is_exported(streaming: Settings) -> None:
    import signal

    import httpx

    from mdslab.services.ports import port_in_use

    topics = Topics(streaming.kafka.topic_prefix)
    values = [orjson.dumps(valid_transaction()) for _ in range(500)]
    publisher = EventPublisher(streaming.kafka)
    publisher.publish_blocking(topics.of(TRANSACTIONS), [(b"C0000007", v) for v in values], TRANSACTIONS.headers)
    publisher.close()
    port = next(p for p in range(23400, 23500) if not port_in_use("127.0.0.1", p))
    env = (
        os.environ
        | streaming.environment()
        | {
            "MDSLAB_STREAM__METRICS_PORT": str(port),
            "MDSLAB_STREAM__BATCH_MAX_SECONDS": "30",  # nothing is written before the signal
        }
    )
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "mdslab"), "stream"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    lake = lakehouse(streaming)
    try:

        def lag_exported() -> bool:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                return False
            return "mdslab_stream_consumer_lag{" in text

        _wait_for(lag_exported, 60, "the consumer lag metric")
        assert not lake.exists("bronze.transactions")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert lake.row_count("bronze.transactions") == 500
    assert "wrote bronze.transactions 500" in stdout.decode()
