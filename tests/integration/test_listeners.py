"""Nothing the lab starts listens beyond loopback: Ray (GCS, raylet, workers, agents, its dashboard), the Spark
driver, its live UI and executors, the embedded services, and the servers its commands open (the API, Spark's
History Server, JupyterLab). Seen before: ~20 sockets on every interface and on the host's LAN address after one
pipeline run.

Each serving command is started as a person would (a subprocess on a free port), checked once its port
listens, and stopped. The default suite keeps the cheap ones: the live Spark UI (in the suite's own session,
free) and Spark's History Server (a JVM start: ~6 CPU seconds). The others are `slow` (`make test-all`): the
API (`mdslab serve`, where `POST /v1/sql` lives: ~9 CPU seconds of imports before it listens), JupyterLab
(also checked in the default suite by test_sql's notebook test) and a Ray with its dashboard (10-60 s)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from mdslab.cli.foreground import stop_group
from mdslab.polling import wait_until
from mdslab.settings import Settings
from tests.conftest import free_port

pytestmark = pytest.mark.integration

MDSLAB = str(Path(sys.executable).parent / "mdslab")


def _listeners_of_tree(root: int) -> list[tuple[str, int, str]]:
    """(address, port, process name) of every listening socket of ``root`` and its descendants."""
    try:
        tree = {root, *(child.pid for child in psutil.Process(root).children(recursive=True))}
    except psutil.NoSuchProcess:
        return []
    found = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in tree and conn.laddr:
            with_name = psutil.Process(conn.pid).name() if psutil.pid_exists(conn.pid) else "?"
            found.append((conn.laddr.ip, conn.laddr.port, with_name))
    return found


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def test_ray_and_spark_listen_on_loopback_only(services: Settings, spark: Any) -> None:
    spark.range(50_000).selectExpr("id % 7 AS k").groupBy("k").count().collect()  # executors at work
    listeners = _listeners_of_tree(os.getpid())
    names = {name for _ip, _port, name in listeners}
    assert {"gcs_server", "raylet", "java"} <= names, names  # the test sees what it is about
    exposed = [listener for listener in listeners if not _loopback(listener[0])]
    assert not exposed, exposed
    ui = urlsplit(spark.sparkContext.uiWebUrl or "")  # the live Spark UI, on by default, is one of them
    assert ui.hostname == "127.0.0.1" and ui.port in {port for _ip, port, name in listeners if name == "java"}, ui


@dataclass(frozen=True)
class Server:
    """A command that serves on the port it is given, started as a person starts it."""

    args: tuple[str, ...] = ()  # `mdslab` arguments; `--port N` is added
    python: str = ""  # or this code, run by the lab's Python (a server that has no command of its own)
    env: dict[str, str] = field(default_factory=dict)  # on top of the lab's settings; "{port}" is the port
    banner: str = ""  # a line it prints once fully up, when its port opens before it is


def _command(server: Server, port: int) -> list[str]:
    if server.python:
        return [sys.executable, "-c", server.python]
    return [MDSLAB, *server.args, "--port", str(port)]


RAY_WITH_DASHBOARD = Server(
    python=textwrap.dedent(
        """
        import sys
        from mdslab.compute.ray_runtime import dashboard_url, ensure_ray
        from mdslab.settings import load_settings
        ensure_ray(load_settings().compute)
        print("ready", dashboard_url(), flush=True)
        sys.stdin.read()  # until stopped
        """
    ),
    env={
        "MDSLAB_COMPUTE__RAY_DASHBOARD": "true",
        "MDSLAB_COMPUTE__RAY_DASHBOARD_PORT": "{port}",
        "MDSLAB_COMPUTE__RAY_METRICS_PORT": "0",  # the suite's Ray holds the configured one
    },
    banner="ready http://127.0.0.1:",
)

# The lab's serving commands, one line each; the slow ones have a loopback test of their own in the default
# suite (the console's and JupyterLab's) or cost seconds of imports it does not have (the API's)
SERVERS = [
    pytest.param(Server(("console",)), id="console", marks=pytest.mark.slow),
    pytest.param(Server(("serve",)), id="serve", marks=pytest.mark.slow),
    pytest.param(Server(("spark", "history")), id="spark-history"),
    pytest.param(Server(("notebook",)), id="notebook", marks=pytest.mark.slow),
    pytest.param(RAY_WITH_DASHBOARD, id="ray-dashboard", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("server", SERVERS)
def test_a_serving_command_listens_on_loopback_only(server: Server, services: Settings, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    extra = {name: value.format(port=port) for name, value in server.env.items()}
    env = os.environ | services.environment() | extra | {"COLUMNS": "300"}
    with log.open("w") as output:
        process = subprocess.Popen(
            _command(server, port), env=env, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:

        def up() -> bool:
            listening = port in {listener[1] for listener in _listeners_of_tree(process.pid)}
            return process.poll() is not None or (listening and server.banner in log.read_text())

        assert wait_until(up, timeout_s=180, interval_s=0.2) and process.poll() is None, log.read_text()[-3000:]
        listeners = _listeners_of_tree(process.pid)
        assert listeners and all(_loopback(ip) for ip, _port, _name in listeners), listeners
    finally:
        stop_group(process, grace_s=15)
