"""The ceiling of bench/ingest.py: a raw confluent-kafka producer with the API publisher's settings,
sending the same payloads to a topic of its own, flat out and at a fixed rate.

It shows what the broker alone allows on this machine, the floor under the API's throughput and
latency figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _ingest_events import Events
from _percentiles import percentiles
from confluent_kafka import Producer

from mdslab import eventbus
from mdslab.settings import Settings
from mdslab.workloads.ingestion.events import TRANSACTIONS


def ceiling_producer(settings: Settings) -> Producer:
    """A raw producer with the API publisher's settings (``EventPublisher``), connected and ready."""
    producer = Producer(
        eventbus.client_config(
            settings.kafka,
            **{
                "client.id": "mdslab-bench-ceiling",
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 500_000,
            },
        )
    )
    return producer


def raw_throughput(
    producer: Producer, topic: str, events: Events, on_progress: Callable[[int], None]
) -> dict[str, Any]:
    """The same payloads, keys and headers as the API publishes, flat out; timed from the first
    produce until the last acknowledgement."""
    failed = [0]

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            failed[0] += 1

    headers = TRANSACTIONS.headers
    producer.produce(topic, events.payloads[0], events.keys[0], headers=headers, on_delivery=report)
    producer.flush(30)  # connection, metadata and the idempotent producer id: not part of the figure
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
            on_progress(10_000)
    remaining = producer.flush(120)
    seconds = time.perf_counter() - started
    on_progress(len(events.payloads) % 10_000)
    acked = len(events.payloads) - failed[0] - remaining
    return {
        "events": len(events.payloads),
        "acknowledged": acked,
        "failed": failed[0] + remaining,
        "seconds": round(seconds, 3),
        "events_per_s": round(acked / seconds) if seconds else 0,
    }


def raw_rate(
    producer: Producer, topic: str, events: Events, rate: float, on_progress: Callable[[int], None]
) -> dict[str, Any]:
    """One message every 1/``rate`` s on a fixed schedule; latency from the scheduled time to the
    delivery report (the broker's acknowledgement): the floor under the API's fixed-rate latency."""
    headers = TRANSACTIONS.headers
    count = len(events.payloads)
    acked = np.full(count, np.nan)
    failed = [0]

    def reporter(index: int) -> Callable[[Any, Any], None]:
        def report(err: Any, _msg: Any) -> None:
            if err is None:
                acked[index] = time.perf_counter()
            else:
                failed[0] += 1
            on_progress(1)

        return report

    start = time.perf_counter() + 0.05
    scheduled = start + np.arange(count) / rate
    for index, (key, value) in enumerate(zip(events.keys, events.payloads, strict=True)):
        while (wait := scheduled[index] - time.perf_counter()) > 0:
            if wait < 0.002:  # poll() counts in whole milliseconds: 0 would spin
                time.sleep(wait)
            else:
                producer.poll(wait - 0.001)  # serves delivery reports while it waits
        producer.produce(topic, value, key, headers=headers, on_delivery=reporter(index))
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
