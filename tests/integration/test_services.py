"""The embedded-service supervisor: start, idempotent start, status, clear errors, stop only ours."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from pydantic import SecretStr

from mdslab import documentstore, eventbus, objectstore
from mdslab.errors import ConfigurationError, ServiceUnavailableError
from mdslab.services import embedded
from mdslab.services.secrets import ensure_secrets
from mdslab.settings import Settings, load_settings

from ..conftest import _free_base

pytestmark = pytest.mark.integration


def _settings(state: Path, base: int) -> Settings:
    overrides = {
        "state_dir": state,
        "embedded": {"port_base": base},
        "s3": {"endpoint_url": f"http://127.0.0.1:{base + 10}"},
        "kafka": {"bootstrap_servers": f"127.0.0.1:{base + 11}"},
        "postgres": {"port": base + 12},
        "mongo": {"url": f"mongodb://127.0.0.1:{base + 14}"},
    }
    settings = load_settings(**overrides)
    if ensure_secrets(settings):
        settings = load_settings(**overrides)
    return settings


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Settings]:
    """A second, private stack (the session one keeps running for the other tests)."""
    settings = _settings(tmp_path / "state", _free_base())
    try:
        yield settings
    finally:
        embedded.down(settings)


def test_up_is_idempotent_and_down_stops_only_its_processes(stack: Settings) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        first = embedded.up(stack)
        assert [r.service for r in first] == ["s3", "kafka", "postgres", "mongo"]
        assert all(r.healthy and r.state == "RUNNING" and r.pid for r in first)
        assert (stack.state_dir / "services.json").is_file()

        again = embedded.up(stack)
        assert [r.pid for r in again] == [r.pid for r in first]  # nothing restarted

        pids = [r.pid for r in first]
        assert sorted(embedded.down(stack)) == ["kafka", "mongo", "postgres", "s3"]
        assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids)
        assert bystander.poll() is None  # a process we did not start is untouched
        assert not any(r.healthy for r in embedded.status(stack))
        assert embedded.down(stack) == []
    finally:
        bystander.kill()


def test_data_and_topics_survive_a_restart(stack: Settings) -> None:
    embedded.up(stack)
    client = objectstore.s3_client(stack.s3)
    client.make_bucket("survivor")
    eventbus.ensure_topics(eventbus.admin_client(stack.kafka), [eventbus.TopicSpec("kept", 2)])
    with documentstore.connect(stack.mongo) as mongo:
        mongo["kept"]["files"].insert_one({"_id": "CL1", "lines": [{"item": "bumper", "quantity": 2}]})
    embedded.down(stack)

    embedded.up(stack)
    assert client.bucket_exists("survivor")
    assert eventbus.list_topics(eventbus.admin_client(stack.kafka)).get("kept") == 2
    with documentstore.connect(stack.mongo) as mongo:
        assert mongo["kept"]["files"].find_one({"_id": "CL1"}) == {
            "_id": "CL1",
            "lines": [{"item": "bumper", "quantity": 2}],
        }


def test_taken_port_fails_fast_naming_the_port_and_the_fix(stack: Settings) -> None:
    host, port = stack.s3.host_port
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((host, port))
        squatter.listen()
        with pytest.raises(ServiceUnavailableError, match=rf"port {port} on 127.0.0.1 \(s3\) is taken.*mdslab config"):
            embedded.up(stack)


def test_s3_enforces_credentials(services: Settings) -> None:
    wrong = services.s3.model_copy(update={"secret_key": SecretStr("wrong")})
    with pytest.raises(Exception, match=r"SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId"):
        objectstore.s3_client(wrong, retries=0).list_buckets()


def test_postgres_enforces_its_password(services: Settings) -> None:
    import psycopg

    from mdslab import database

    wrong = services.postgres.model_copy(update={"password": SecretStr("wrong")})
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        database.connect(wrong)


def test_up_refuses_the_services_profile_and_remote_endpoints(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"nix run \.#services"):
        embedded.up(load_settings(state_dir=tmp_path, profile="services"))
    with pytest.raises(ConfigurationError, match=r"serves on 127\.0\.0\.1"):
        embedded.up(load_settings(state_dir=tmp_path, s3={"endpoint_url": "http://minio.example:9000"}))


def test_status_reports_healthy_session_services(services: Settings) -> None:
    reports = embedded.status(services)
    assert {r.service: r.healthy for r in reports} == {"s3": True, "kafka": True, "postgres": True, "mongo": True}
    postgres = next(r for r in reports if r.service == "postgres")
    assert postgres.detail.startswith("PostgreSQL 18")
    mongo = next(r for r in reports if r.service == "mongo")
    assert mongo.state == "RUNNING" and mongo.detail.endswith("databases")


def test_the_object_store_takes_writes_in_many_buckets(services: Settings) -> None:
    """Every bucket is a SeaweedFS collection with its own volume; the auto-configured volume limit let
    about 26 buckets take writes, and the 27th answered 500 (found when the suite grew)."""
    import io
    import uuid

    client = objectstore.s3_client(services.s3)
    names = [f"many-{uuid.uuid4().hex[:8]}-{i}" for i in range(40)]
    objectstore.ensure_buckets(client, names)
    try:
        for name in names:
            client.put_object(name, "probe", io.BytesIO(b"ok"), 2)
        assert all(client.get_object(name, "probe").read() == b"ok" for name in names)
    finally:
        for name in names:
            client.remove_object(name, "probe")
            client.remove_bucket(name)
