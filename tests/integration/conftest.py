"""What the consumption tests share: one small lake built by the pipeline, read (never written) by the SQL,
notebook and console tests, so the run builds it once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
