"""Nothing the lab starts listens beyond loopback: Ray (GCS, raylet, workers, agents), the Spark driver
and executors, and the embedded services. Seen before: ~20 sockets on every interface and on the
host's LAN address after one pipeline run."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import psutil
import pytest

from mdslab.settings import Settings

pytestmark = pytest.mark.integration


def _listeners_of_this_process_tree() -> list[tuple[str, int, str]]:
    tree = {os.getpid(), *(child.pid for child in psutil.Process().children(recursive=True))}
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
    listeners = _listeners_of_this_process_tree()
    names = {name for _ip, _port, name in listeners}
    assert {"gcs_server", "raylet", "java"} <= names, names  # the test sees what it is about
    exposed = [listener for listener in listeners if not _loopback(listener[0])]
    assert not exposed, exposed
