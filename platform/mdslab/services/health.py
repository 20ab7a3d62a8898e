"""Health probes that speak each service's real protocol; they work for every profile."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from mdslab import database, documentstore, eventbus, objectstore
from mdslab.settings import Settings


@dataclass(frozen=True)
class Health:
    service: str
    endpoint: str
    ok: bool
    detail: str
    latency_ms: float


_REASONS = (
    (
        ("Connection refused", "transport failure", "Max retries exceeded", "does not answer at"),
        "not reachable (nothing listening)",
    ),
    (("timed out", "Timeout"), "timed out"),
    (
        ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "password authentication"),
        "credentials rejected",
    ),
)


def short_reason(exc: BaseException) -> str:
    """A few words a person can act on, instead of a client library's nested exception text."""
    text = str(exc)
    for needles, reason in _REASONS:
        if any(needle in text for needle in needles):
            return reason
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:100]}"


def _probe(service: str, endpoint: str, check: Callable[[], str]) -> Health:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:  # a probe reports every failure; it never raises
        detail, ok = short_reason(exc), False
    return Health(service, endpoint, ok, detail, (time.perf_counter() - started) * 1000)


def probe_s3(settings: Settings, *, timeout_s: float = 2.0) -> Health:
    def check() -> str:
        client = objectstore.s3_client(settings.s3, timeout_s=timeout_s, retries=0)
        return f"{len(client.list_buckets())} buckets"

    return _probe("s3", settings.s3.endpoint_url, check)


def probe_kafka(settings: Settings, *, timeout_s: float = 2.0) -> Health:
    def check() -> str:
        topics = eventbus.list_topics(eventbus.admin_client(settings.kafka), timeout_s=timeout_s)
        return f"{len(topics)} topics"

    return _probe("kafka", settings.kafka.bootstrap_servers, check)


def probe_postgres(settings: Settings, *, timeout_s: int = 2) -> Health:
    def check() -> str:
        with database.connect(settings.postgres, database="postgres", timeout_s=timeout_s) as conn:
            row = conn.execute("SELECT current_setting('server_version')").fetchone()
        return f"PostgreSQL {row[0] if row else '?'}"

    pg = settings.postgres
    return _probe("postgres", f"{pg.host}:{pg.port}/{pg.database}", check)


def probe_mongo(settings: Settings, *, timeout_s: float = 2.0) -> Health:
    def check() -> str:
        with documentstore.connect(settings.mongo, timeout_s=timeout_s) as client:
            return f"{len(client.list_database_names())} databases"

    host, port = settings.mongo.host_port
    return _probe("mongo", f"{host}:{port}/{settings.mongo.database}", check)


def probe_all(settings: Settings) -> list[Health]:
    return [probe_s3(settings), probe_kafka(settings), probe_postgres(settings), probe_mongo(settings)]
