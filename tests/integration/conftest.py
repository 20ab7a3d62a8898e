"""Fixtures shared by integration modules that read the same small lake (a build costs a minute of the
suite's budget: built once per run, not once per module)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from tests.conftest import fresh_lake

SPEND = "gold.daily_spend"


@dataclass
class BuiltTwice:
    settings: Settings
    lake: Lakehouse
    first_spend_version: int  # gold.daily_spend as the first build published it


@pytest.fixture(scope="session")
def built_twice(services: Settings, spark_provider: Any) -> BuiltTwice:
    """A small lake built and published twice (a first batch, then a continuation), so every silver and
    gold table has two published versions. Readers only: SQL, and notebooks that add tables of their own."""
    from mdslab.workloads.file_drop_feed import drop_batch
    from mdslab.workloads.lake import lakehouse
    from mdslab.workloads.pipeline.runner import run_pipeline
    from mdslab.workloads.simulation_runs import next_run
    from mdslab.workloads.simulator import simulate

    settings = fresh_lake(services, "sql")
    lake = lakehouse(settings)
    first = None
    for seed in (71, 72):
        drop_batch(settings, lake, simulate(next_run(settings.postgres, transactions=1_500, seed=seed).config))
        report = run_pipeline(settings, spark=spark_provider)
        assert report.published, report.gate_line()
        if seed == 71:
            first = lake.current_version(SPEND)
    assert first is not None and lake.current_version(SPEND) != first
    return BuiltTwice(settings, lake, first)
