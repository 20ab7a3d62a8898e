"""What the consumption tests share: one small lake built by the pipeline, read (its tables never written)
by the SQL, notebook and console tests, so the run builds it once; and the listening sockets of a server
they start (each must listen on loopback only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import simulate
from tests.conftest import fresh_lake

SPEND = "gold.daily_spend"


@dataclass
class Built:
    settings: Settings
    lake: Lakehouse
    first_spend_version: int  # gold.daily_spend as the first build published it


@pytest.fixture(scope="session")
def built(services: Settings, spark_provider: Any) -> Built:
    """A lake built and published twice (a first batch, then a continuation), so gold has two versions.
    Its readers must not write to it."""
    settings = fresh_lake(services, "sql")
    lake = lakehouse(settings)
    for seed in (71, 72):
        drop_batch(settings, lake, simulate(next_run(settings.postgres, transactions=1_500, seed=seed).config))
        report = run_pipeline(settings, spark=spark_provider)
        assert report.published, report.gate_line()
        if seed == 71:
            first = lake.current_version(SPEND)
    assert first is not None and lake.current_version(SPEND) != first
    return Built(settings, lake, first)


def psutil_connections(pid: int) -> list[Any]:
    """Listening sockets of a process and its children."""
    parent = psutil.Process(pid)
    return [
        conn
        for proc in [parent, *parent.children(recursive=True)]
        for conn in proc.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
