"""`mdslab run snowflake` on a built lake: every step's Snowflake query gives the lab's rows on the tables the
lake's readers see, at the versions it names; on a lake with nothing built it says what to run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mdslab.settings import Settings
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.steps import PLANS
from tests.conftest import fresh_lake, invoke_cli
from tests.integration.conftest import Built

pytestmark = pytest.mark.integration


def test_the_deep_dive_checks_every_step_on_the_lakes_published_tables(built: Built, tmp_path: Path) -> None:
    done = invoke_cli(built.settings, "run", "snowflake", "--json", "--out", str(tmp_path))
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    outputs = [output for factory in PLANS.values() for output in factory(DUCKDB).outputs]
    assert [check["table"] for check in summary["checks"]] == outputs
    assert all(check["equal"] and check["expected_rows"] > 0 for check in summary["checks"]), summary["checks"]
    read = summary["checked_on_lake_versions"]
    assert {"bronze.transactions", "silver.transactions", "silver.claims"} <= set(read)
    assert all(built.lake.current_version(table) == version for table, version in read.items())
    assert sorted(path.name for path in tmp_path.iterdir()) == [Path(p).name for p in summary["files"]]


def test_on_an_empty_lake_it_says_what_to_run(services: Settings, tmp_path: Path) -> None:
    empty = fresh_lake(services, "sfempty")
    refused = invoke_cli(empty, "run", "snowflake", "--out", str(tmp_path))
    assert refused.exit_code == 1
    assert "the lake has no published bronze.transactions to check against: run `mdslab demo`" in refused.output
    assert "--no-check" in refused.output
    # the files are written first, so the person can read them anyway
    assert (tmp_path / "02_silver.sql").is_file()
