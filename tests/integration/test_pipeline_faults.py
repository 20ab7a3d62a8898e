"""Pipeline runs that collide or die: two `mdslab pipeline run` at once on one lake, and a run killed with
kill -9 in the middle of a step. Real CLI processes on the run's services; each ends with the lake equal to
a single clean run's (no duplicate, nothing lost) and every table readable at a committed version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads import reference
from mdslab.workloads.bronze_landing import land_events, land_labels
from mdslab.workloads.contracts import Claim, Transaction
from mdslab.workloads.file_drop_feed import batch_id_for
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.pipeline.steps import STEPS
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import SimulatedData, simulate
from tests.conftest import fresh_lake
from tests.lake_asserts import assert_same

pytestmark = pytest.mark.integration

BUILT = [name for step in STEPS if step.layer in ("silver", "gold") for name in step.outputs]
QUARANTINE_ORDER = ("payload", "source", "ingested_at", "kafka_offset")
MDSLAB = str(Path(sys.executable).parent / "mdslab")


def _land(lake: Lakehouse, data: SimulatedData) -> None:
    batch = batch_id_for(data.config)
    for table, events, contract in (
        ("bronze.transactions", data.transactions, Transaction),
        ("bronze.claims", data.claims, Claim),
    ):
        land_events(lake, table, events, batch_id=batch, source="simulator", contract_version=contract.CONTRACT_VERSION)
    land_labels(lake, data.fraud_labels, batch_id=batch)


def _built_lab(services: Settings, spark_provider: Any, prefix: str, seed: int) -> tuple[Settings, Lakehouse]:
    """A lake built and published once, then a new batch landed: the next run is an increment."""
    settings = fresh_lake(services, prefix)
    lake = lakehouse(settings)
    pg = settings.postgres
    first = simulate(next_run(pg, transactions=3_000, seed=seed).config)
    reference.upsert(pg, first.reference_tables())
    _land(lake, first)
    assert run_pipeline(settings, spark=spark_provider).published
    _land(lake, simulate(next_run(pg, transactions=4_000, seed=seed + 1).config))
    return settings, lake


def _pipeline_run(settings: Settings) -> subprocess.Popen[str]:
    env = {**os.environ, **settings.environment(), "COLUMNS": "400"}
    return subprocess.Popen(
        [MDSLAB, "pipeline", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: kill -9 reaches everything it started
    )


def _assert_equals_a_clean_run(settings: Settings, lake: Lakehouse, spark_provider: Any) -> None:
    """No duplicate event in silver, and the tables equal a full refresh of the same bronze."""
    for table in ("silver.transactions", "silver.claims"):
        ids = lake.read_table(table, columns=["event_id"]).column("event_id").to_pylist()
        assert len(ids) == len(set(ids)), f"{table}: {len(ids) - len(set(ids))} events twice"
    built = {name: lake.read_table(name) for name in BUILT}
    run_pipeline(settings, spark=spark_provider, force=True)
    for name in BUILT:
        assert_same(lake.read_table(name), built[name], lake.spec(name).key or QUARANTINE_ORDER)


def test_two_pipeline_runs_at_once_leave_the_lake_as_one_run_would(services: Settings, spark_provider: Any) -> None:
    settings, lake = _built_lab(services, spark_provider, "twice", seed=51)
    runs = [_pipeline_run(settings), _pipeline_run(settings)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    codes = [run.returncode for run in runs]
    assert 0 in codes, outputs
    for code, output in zip(codes, outputs, strict=True):
        if code != 0:  # the one that lost the race says so in one line, naming the run that holds the lake
            assert code == 1 and "another pipeline run is writing this lake" in output, output
            assert "Traceback" not in output and len(output.strip().splitlines()) == 1, output
    print(f"\ntwo runs at once: exit codes {codes}")  # [0, 1] when they overlapped, as they do here
    _assert_equals_a_clean_run(settings, lake, spark_provider)


def test_a_run_refused_while_another_holds_the_lake_names_the_holder(services: Settings) -> None:
    from mdslab.workloads.pipeline.runner import lake_writer

    settings = fresh_lake(services, "held")
    with lake_writer(settings, "the test holding the lake"):
        refused = _pipeline_run(settings)
        output = refused.communicate(timeout=120)[0]
        gate = subprocess.run(
            [MDSLAB, "pipeline", "check"],
            env={**os.environ, **settings.environment(), "COLUMNS": "400"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert refused.returncode == 1 and "Traceback" not in output, output
    assert output.startswith("error: another pipeline run is writing this lake (the test holding the lake, pid "), (
        output
    )
    assert f"pid {os.getpid()} on " in output and "UTC): wait for it to end, or stop it" in output, output
    assert gate.returncode == 1 and "another pipeline run is writing this lake" in gate.stdout + gate.stderr


def test_a_pipeline_run_killed_mid_step_leaves_committed_tables_and_the_rerun_completes(
    services: Settings, spark_provider: Any
) -> None:
    settings, lake = _built_lab(services, spark_provider, "kill9", seed=61)
    before = {name: lake.version(name) for name in BUILT}
    published = lake.publications()
    run = _pipeline_run(settings)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:  # the run's first commit: it is mid-step now
        if any(lake.version(name) != version for name, version in before.items()):
            break
        time.sleep(0.05)
    assert run.poll() is None, f"the run ended before it could be killed: {run.communicate()[0]}"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(30)
    assert lake.publications() == published, "a killed run published nothing"
    for name in BUILT:  # each table opens and reads at its latest committed version
        assert lake.read_table(name).num_rows == lake.row_count(name)

    rerun = run_pipeline(settings, spark=spark_provider)  # not refused: the killed run's hold on the lake is gone
    assert rerun.published, rerun.gate_line()
    _assert_equals_a_clean_run(settings, lake, spark_provider)
