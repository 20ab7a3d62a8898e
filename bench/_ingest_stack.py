"""One ingest run's own world and what it sends: isolated settings (topics, consumer group, buckets, API
key of its own, so its figures never mix with other data), the ``mdslab`` subprocesses (API, stream
consumer), the simulated events, and the raw producer that gives the ceiling the API is compared with.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from _harness import Advance, drop_lab, lab, percentiles
from confluent_kafka import Producer
from pydantic import SecretStr

from mdslab import eventbus
from mdslab.settings import Settings
from mdslab.workloads.ingestion.events import TRANSACTIONS, Topics


def isolated(base: Settings, tag: str) -> Settings:
    """Settings whose topics, consumer group, buckets and API key belong to this run only."""
    settings = lab(base, tag, own_database=False)
    return settings.model_copy(
        update={
            "kafka": base.kafka.model_copy(update={"topic_prefix": f"{tag}."}),
            "stream": base.stream.model_copy(update={"group_id": f"{tag}-bronze", "metrics_port": 0}),
            "api": base.api.model_copy(update={"api_key": SecretStr(secrets.token_urlsafe(24))}),
        }
    )


def cleanup(settings: Settings, *more_topics: str) -> list[str]:
    """Delete the run's topics and buckets; returns what could not be deleted."""
    names = Topics(settings.kafka.topic_prefix)
    topics, problems = [*names.events, names.dead_letters, *more_topics], []
    admin = eventbus.admin_client(settings.kafka)  # held until every future resolved: its end cancels them
    try:
        for name, future in admin.delete_topics(topics, operation_timeout=15).items():
            try:
                future.result()
            except Exception as exc:
                problems.append(f"topic {name}: {exc}")
    except Exception as exc:
        problems.append(f"topics: {exc}")
    return problems + drop_lab(settings, own_database=False)


@dataclass
class Service:
    """A ``mdslab`` subprocess (``serve`` or ``stream``) with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, name: str, args: list[str], env: dict[str, str], logs: Path) -> Service:
        log = logs / f"{name}.log"
        with log.open("wb") as out:
            command = [str(Path(sys.executable).parent / "mdslab"), *args]
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return cls(name, process, log)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")

    def wait_ready(self, url: str, timeout_s: float = 60.0) -> None:
        """Poll the API's ``/readyz`` until it answers 200."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the API at {url} was not ready within {timeout_s:.0f} s:\n{self.tail()}")

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (the consumer writes the batch in hand, uvicorn drains), SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@dataclass
class Events:
    """Simulated valid transactions (no planted defects): payloads and partition keys. The raw producer and
    the API get the same ones, so the two are compared on equal events."""

    payloads: list[bytes]
    keys: list[bytes]

    @classmethod
    def simulate(cls, count: int, seed: int) -> Events:
        from mdslab.workloads.simulator import SimulationConfig, simulate

        data = simulate(SimulationConfig(transactions=max(count, 1_000), seed=seed, invalid_share=0.0))
        payloads = [value.encode() for value in data.transactions.column("payload").to_pylist()[:count]]
        return cls(payloads, [str(orjson.loads(payload)[TRANSACTIONS.key_field]).encode() for payload in payloads])

    def take(self, count: int) -> Events:
        taken = Events(self.payloads[:count], self.keys[:count])
        del self.payloads[:count], self.keys[:count]
        return taken


def ceiling_producer(settings: Settings) -> Producer:
    """A raw producer with the API publisher's settings (``EventPublisher``)."""
    config = {"client.id": "mdslab-bench-ceiling", "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    config |= {"compression.type": "lz4", "queue.buffering.max.messages": 500_000}
    return Producer(eventbus.client_config(settings.kafka, **config))


def raw_throughput(producer: Producer, topic: str, events: Events, advance: Advance) -> dict[str, Any]:
    """The API's payloads, keys and headers, flat out: from the first produce to the last acknowledgement
    (connection, metadata and the idempotent producer id set up before, not part of the figure)."""
    failed = [0]

    def report(err: Any, _msg: Any) -> None:
        failed[0] += err is not None

    headers = TRANSACTIONS.headers
    producer.produce(topic, events.payloads[0], events.keys[0], headers=headers, on_delivery=report)
    producer.flush(30)
    failed[0] = 0
    started = time.perf_counter()
    for index, (key, value) in enumerate(zip(events.keys, events.payloads, strict=True), start=1):
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.005)
        if index % 10_000 == 0:
            producer.poll(0)
            advance(10_000)
    remaining = producer.flush(120)
    seconds = time.perf_counter() - started
    advance(len(events.payloads) % 10_000)
    acked = len(events.payloads) - failed[0] - remaining
    return {
        "events": len(events.payloads),
        "acknowledged": acked,
        "failed": failed[0] + remaining,
        "seconds": round(seconds, 3),
        "events_per_s": round(acked / seconds) if seconds else 0,
    }


def raw_rate(producer: Producer, topic: str, events: Events, rate: float, advance: Advance) -> dict[str, Any]:
    """One message every 1/``rate`` s on a fixed schedule; latency from the scheduled time to the delivery
    report: the broker's acknowledgement, the floor under the API's fixed-rate latency."""
    count = len(events.payloads)
    acked = np.full(count, np.nan)
    failed = [0]

    def reporter(index: int) -> Callable[[Any, Any], None]:
        def report(err: Any, _msg: Any) -> None:
            if err is None:
                acked[index] = time.perf_counter()
            else:
                failed[0] += 1
            advance(1)

        return report

    scheduled = time.perf_counter() + 0.05 + np.arange(count) / rate
    for index, (key, value) in enumerate(zip(events.keys, events.payloads, strict=True)):
        while (wait := scheduled[index] - time.perf_counter()) > 0:
            if wait < 0.002:  # poll() counts in whole milliseconds: 0 would spin
                time.sleep(wait)
            else:
                producer.poll(wait - 0.001)  # serves delivery reports while it waits
        producer.produce(topic, value, key, headers=TRANSACTIONS.headers, on_delivery=reporter(index))
        producer.poll(0)
    producer.flush(60)
    done = ~np.isnan(acked)
    return {
        "rate": rate,
        "messages": count,
        "acknowledged": int(done.sum()),
        "failed": failed[0] + int(count - done.sum()),
        "latency_ms": percentiles((acked[done] - scheduled[done]) * 1000.0),
    }
