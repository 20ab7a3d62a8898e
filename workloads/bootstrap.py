"""The platform made ready for the workloads: services running (embedded ones started, external ones
checked) and the Kafka topics created (buckets and the database come from the service layer). Safe to
call again; the CLI's `up`, the demo, the DAG and the flows all go through :func:`ensure_platform`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mdslab import eventbus
from mdslab.compute.java import find_java_home
from mdslab.errors import ServiceUnavailableError
from mdslab.services import embedded, secrets
from mdslab.services.embedded import ServiceReport
from mdslab.settings import Profile, Settings, load_settings
from mdslab.workloads.ingestion.events import CLAIMS_TOPIC, DEAD_LETTER_TOPIC, TRANSACTIONS_TOPIC


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


@dataclass(frozen=True)
class PlatformReport:
    settings: Settings
    """The settings to go on with: the first start of the embedded profile writes its secrets."""
    services: list[ServiceReport]
    created: list[str]


def ensure_platform(settings: Settings, *, on_step: Callable[[str], None] = lambda _msg: None) -> PlatformReport:
    """Start the embedded services (or check the external ones), then create the topics.

    Fails early, with what is down, rather than in the middle of the first pipeline step."""
    find_java_home(settings.compute.java_home)
    if settings.profile is Profile.EMBEDDED:
        if secrets.ensure_secrets(settings):
            settings = load_settings()
        reports = embedded.up(settings, on_step=on_step)
    else:
        reports = embedded.status(settings)
        down = [f"{r.service} at {r.endpoint} ({r.detail})" for r in reports if not r.healthy]
        if down:
            raise ServiceUnavailableError(f"services profile: {'; '.join(down)}: start them (see README)")
    on_step("creating topics")
    return PlatformReport(settings, reports, ensure_resources(settings))
