"""Resources the workloads need on top of running services: Kafka topics (buckets and the database
are created by the service layer). Safe to call again."""

from __future__ import annotations

from mdslab import eventbus
from mdslab.settings import Settings

TRANSACTIONS_TOPIC = "transactions"
CLAIMS_TOPIC = "claims"
DEAD_LETTER_TOPIC = "dead-letters"


def topic_specs(settings: Settings) -> list[eventbus.TopicSpec]:
    partitions, prefix = settings.kafka.default_partitions, settings.kafka.topic_prefix
    return [
        eventbus.TopicSpec(prefix + TRANSACTIONS_TOPIC, partitions),
        eventbus.TopicSpec(prefix + CLAIMS_TOPIC, partitions),
        eventbus.TopicSpec(prefix + DEAD_LETTER_TOPIC, 1),
    ]


def ensure_resources(settings: Settings) -> list[str]:
    """Create missing topics; returns one line per thing created, for the caller to show."""
    created = eventbus.ensure_topics(eventbus.admin_client(settings.kafka), topic_specs(settings))
    return [f"created topic {name}" for name in created]
