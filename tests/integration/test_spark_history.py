"""Spark's own UI for the lab's runs: a pipeline run writes its event log, and Spark's History Server,
started from PySpark's jars as `mdslab spark history` starts it, shows that application with its jobs and
stages through its REST API, listening on the loopback interface only."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from mdslab.cli.foreground import stop_group
from mdslab.compute.java import find_java_home
from mdslab.compute.spark_history import history_server_command, history_server_environment
from mdslab.polling import wait_until
from mdslab.settings import Settings
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import simulate
from tests.conftest import free_port, fresh_lake

pytestmark = pytest.mark.integration

MDSLAB = str(Path(sys.executable).parent / "mdslab")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address itself, or the one an IPv4-mapped IPv6 address carries (Java's dual-stack sockets)."""
    return address if isinstance(address, ipaddress.IPv4Address) else address.ipv4_mapped


@pytest.mark.slow  # a Spark session of its own in a subprocess (~2 min): `make test-all` runs it
def test_the_history_server_shows_a_pipeline_run_with_its_jobs_and_stages(services: Settings, tmp_path: Path) -> None:
    settings = fresh_lake(services, "hist")
    events = tmp_path / "spark-events"
    settings = settings.model_copy(
        update={"compute": settings.compute.model_copy(update={"spark_event_log_dir": events})}
    )
    drop_batch(settings, lakehouse(settings), simulate(next_run(settings.postgres, transactions=1_000, seed=81).config))
    run = subprocess.run(
        [MDSLAB, "pipeline", "run"], env=os.environ | settings.environment(), capture_output=True, text=True,
        timeout=900, check=False,
    )  # fmt: skip
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "Spark UI http://127.0.0.1:" in run.stdout  # where to watch it live, said while it ran
    (log,) = list(events.iterdir())  # one application: the run's Spark session, ended
    assert not log.name.endswith(".inprogress"), log.name

    port = free_port()
    command = history_server_command(find_java_home(settings.compute.java_home), settings, port=port)
    output = (tmp_path / "history-server.log").open("w")
    server = subprocess.Popen(
        command, env=history_server_environment(dict(os.environ)), stdout=output, stderr=output, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}/api/v1/applications"
    try:
        listed: list[Any] = []

        def application_listed() -> bool:
            try:
                listed[:] = _get(base)
            except OSError:  # not listening yet, or still replaying the logs
                return False
            return bool(listed)

        assert wait_until(application_listed, timeout_s=120, interval_s=1), (
            tmp_path / "history-server.log"
        ).read_text()
        (application,) = listed
        assert application["name"] == "mdslab" and application["attempts"][-1]["completed"]
        jobs = _get(f"{base}/{application['id']}/jobs")
        stages = _get(f"{base}/{application['id']}/stages")
        assert jobs and {job["status"] for job in jobs} == {"SUCCEEDED"}, jobs
        assert len(stages) >= len(jobs) and sum(stage["numCompleteTasks"] for stage in stages) > 0
        listening = {
            conn.laddr.ip
            for proc in [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
            for conn in proc.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN
        }
        addresses = [ipaddress.ip_address(address) for address in listening]
        assert addresses and all(_ipv4(address) == ipaddress.IPv4Address("127.0.0.1") for address in addresses), (
            listening
        )
    finally:
        stop_group(server, grace_s=10)
        output.close()
