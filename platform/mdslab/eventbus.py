"""Kafka clients (confluent-kafka), configured from one place.

The same code talks to the embedded Tansu broker and to a real Kafka cluster; only
``bootstrap_servers`` differs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from mdslab.settings import KafkaSettings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] | None = None


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
