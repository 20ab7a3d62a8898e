"""Shared fixtures: one set of real embedded services and one Spark-on-Ray session per test run.

The services run from a temporary state dir on free loopback ports, so a test run never touches a
developer's own `mdslab up` stack. Tests that write tables get their own buckets and database.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mdslab import database, objectstore
from mdslab.services.ports import port_in_use
from mdslab.settings import LakeSettings, Settings, load_settings

SERVICE_PORTS = 16  # base .. base+8 internal, +10 S3, +11 Kafka, +12 PostgreSQL, +13 Ray metrics, +14 MongoDB


# Below Linux's ephemeral port range (32768-60999), where client sockets take ports at random.
_next_base = [12000 + (os.getpid() % 100) * 80]


def _free_base() -> int:
    """A block of ports no stack of this run used before: a stopped server's ports can linger in
    TIME_WAIT, and SeaweedFS then wanders to a neighbouring port that another of its listeners needs."""
    while _next_base[0] < 22000:  # + 10008 stays below 32768
        base = _next_base[0]
        _next_base[0] += SERVICE_PORTS + 4
        ports = [*range(base, base + SERVICE_PORTS), base + 8 + 10000]
        if not any(port_in_use("127.0.0.1", port) for port in ports):
            return base
    raise RuntimeError("no free port block for the test services")


@pytest.fixture(scope="session")
def services() -> Iterator[Settings]:
    """Real SeaweedFS, Tansu and PostgreSQL, started once for the whole run (environment set too, so
    CLI commands invoked in tests see the same stack).

    The state dir is not under pytest's temporary root: every pytest session resets that root to mode
    0700, and PostgreSQL (run as the unprivileged `pgserver` account when we are root) then loses its
    data directory mid-run whenever a second test session starts on the machine (seen: PANIC, all tests
    after it failing)."""
    from mdslab.services import embedded
    from mdslab.workloads.bootstrap import ensure_platform

    base = _free_base()
    state_dir = Path(tempfile.mkdtemp(prefix="mdslab-test-state-"))
    env = {
        "MDSLAB_STATE_DIR": str(state_dir),
        "MDSLAB_EMBEDDED__PORT_BASE": str(base),
        "MDSLAB_S3__ENDPOINT_URL": f"http://127.0.0.1:{base + 10}",
        "MDSLAB_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{base + 11}",
        "MDSLAB_POSTGRES__PORT": str(base + 12),
        "MDSLAB_MONGO__URL": f"mongodb://127.0.0.1:{base + 14}",
        "MDSLAB_COMPUTE__RAY_METRICS_PORT": str(base + 13),  # the run's Ray, scraped by the Prometheus test
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    settings = load_settings()
    try:
        ensure_platform(settings, on_step=lambda _msg: None)
        settings = load_settings()
        yield settings
    finally:
        embedded.down(settings)
        shutil.rmtree(state_dir, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def fresh_lake(services: Settings, prefix: str = "t") -> Settings:
    """``services`` with new lake buckets, a new database and a new document-store database (the claims
    system's case files), named ``<prefix><random tag>``."""
    tag = f"{prefix}{uuid.uuid4().hex[:10]}"
    lake = LakeSettings(raw_bucket=f"{tag}-raw", curated_bucket=f"{tag}-curated")
    objectstore.ensure_buckets(objectstore.s3_client(services.s3), [lake.raw_bucket, lake.curated_bucket])
    pg = services.postgres.model_copy(update={"database": tag})
    database.ensure_database(pg, pg.database)
    mongo = services.mongo.model_copy(update={"database": tag})
    return services.model_copy(update={"lake": lake, "postgres": pg, "mongo": mongo})


@pytest.fixture
def isolated(services: Settings) -> Callable[[], Settings]:
    """Settings with fresh lake buckets and a fresh database, so tests never see each other's tables."""
    return lambda: fresh_lake(services)


def valid_transaction(**changes: Any) -> dict[str, Any]:
    """A transaction event that meets its contract, with a fresh event id; ``changes`` override fields."""
    return {
        "event_id": str(uuid.uuid4()),
        "customer_id": "C0000001",
        "merchant_id": "M000001",
        "amount": 12.5,
        "currency": "USD",
        "event_time": "2026-11-20T10:00:00Z",
        "channel": "online",
        "card_last4": "1234",
    } | changes


def own_topics(settings: Settings, **stream: Any) -> Settings:
    """``settings`` (from :func:`fresh_lake`) with topics and a consumer group named after its lake,
    created on the shared broker; ``stream`` overrides other stream settings."""
    from mdslab.workloads.bootstrap import ensure_resources

    tag = settings.lake.raw_bucket.removesuffix("-raw")
    settings = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"topic_prefix": f"{tag}."}),
            "stream": settings.stream.model_copy(update={"group_id": f"{tag}-bronze", **stream}),
        }
    )
    ensure_resources(settings)
    return settings


def whole_lab(services: Settings, prefix: str) -> Settings:
    """A fresh lake with its own topics and its own registered-model names: for tests that run the
    whole pipeline (stream, Spark, training, scoring) without seeing each other's data or champions."""
    settings = own_topics(fresh_lake(services, prefix))
    tag = settings.lake.raw_bucket.removesuffix("-raw")
    return settings.model_copy(update={"ml": settings.ml.model_copy(update={"registry_prefix": f"{tag}-"})})


def invoke_cli(settings: Settings, *args: str) -> Any:
    """``mdslab ARGS`` in this process (Typer's runner) on the lake and database of ``settings`` (a test's
    own buckets and database; the services are the session's)."""
    from typer.testing import CliRunner

    from mdslab.cli.main import app

    env = {
        "MDSLAB_LAKE__RAW_BUCKET": settings.lake.raw_bucket,
        "MDSLAB_LAKE__CURATED_BUCKET": settings.lake.curated_bucket,
        "MDSLAB_POSTGRES__DATABASE": settings.postgres.database,
        "MDSLAB_MONGO__DATABASE": settings.mongo.database,
        "COLUMNS": "250",
    }
    return CliRunner().invoke(app, list(args), env=env)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def streaming(isolated: Callable[[], Settings]) -> Settings:
    """Isolated settings with their own topics and consumer group, and small micro-batches so that a
    few thousand events make several commits."""
    return own_topics(isolated(), batch_max_messages=2000, batch_max_seconds=0.3)


@pytest.fixture(scope="session")
def spark_provider(services: Settings) -> Iterator[Any]:
    """The run's one Spark session (RayDP on a local Ray), started on first use."""
    from mdslab.workloads.pipeline.step_runtime import SparkProvider

    provider = SparkProvider(services)
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture(scope="session")
def spark(spark_provider: Any) -> Any:
    return spark_provider.get()
