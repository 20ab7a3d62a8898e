"""The batch pipeline end to end on real services and Spark on Ray (RayDP), checked against DuckDB."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import build_registry, lakehouse
from mdslab.workloads.lineage.store import read_events
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.runner import PipelineReport, run_pipeline
from mdslab.workloads.pipeline.steps import PLANS, STEPS
from mdslab.workloads.pipeline.warm_up import warm_up_spark
from mdslab.workloads.quality import QualityGateError, check_gold, enforce
from mdslab.workloads.simulator import SimulatedData, SimulationConfig, simulate
from tests.conftest import fresh_lake
from tests.lake_asserts import assert_same
from tests.lineage_asserts import assert_well_formed_runs, parents

pytestmark = pytest.mark.integration

ROWS = 20_000


@dataclass
class Built:
    settings: Settings
    lake: Lakehouse
    data: SimulatedData
    first: PipelineReport


@pytest.fixture(scope="module")
def built(services: Settings, spark_provider: Any) -> Built:
    settings = fresh_lake(services, "p")
    lake = lakehouse(settings)
    data = simulate(SimulationConfig(transactions=ROWS, seed=3))
    drop_batch(settings, lake, data)
    return Built(settings, lake, data, run_pipeline(settings, spark=spark_provider))


def test_first_run_builds_every_step_and_records_its_inputs(built: Built) -> None:
    assert [r.status for r in built.first.results] == ["built"] * len(STEPS)
    silver = next(r for r in built.first.results if r.step == "silver_transactions")
    assert silver.inputs == {"bronze.transactions": 1, "bronze.customers": 1, "bronze.merchants": 1}
    assert silver.rows_in == ROWS
    stamp = built.lake.commit_metadata("silver.transactions")
    assert stamp["step"] == "silver_transactions" and stamp["inputs"] == silver.inputs
    assert built.first.spark_start_s is not None and built.first.lake_to_spark_s > 0


def test_nothing_is_lost_and_every_rejection_has_its_reason(built: Built) -> None:
    lake = built.lake
    for events, silver, quarantine, kind in (
        ("bronze.transactions", "silver.transactions", "silver.quarantine_transactions", "transaction"),
        ("bronze.claims", "silver.claims", "silver.quarantine_claims", "claim"),
    ):
        assert lake.row_count(silver) + lake.row_count(quarantine) == lake.row_count(events)
        planted = Counter(r["kind"] for r in built.data.defects.to_pylist() if r["event_type"] == kind)
        codes = lake.read_table(quarantine, columns=["reason_codes"]).column("reason_codes").to_pylist()
        assert Counter(c[0] for c in codes) == planted
        reasons = lake.read_table(quarantine, columns=["reasons"]).column("reasons").to_pylist()
        assert all(r and ": " in r[0] for r in reasons)  # each names a field


def test_silver_is_deduplicated_by_event_id(built: Built) -> None:
    ids = built.lake.read_table("silver.transactions", columns=["event_id"]).column("event_id")
    assert pc.count_distinct(ids).as_py() == len(ids)
    duplicates = [r["event_id"] for r in built.data.defects.to_pylist() if r["kind"] == "duplicate"]
    assert set(duplicates) <= set(ids.to_pylist()) | set(
        built.lake.read_table("silver.claims", columns=["event_id"]).column("event_id").to_pylist()
    )


def test_rerun_changes_nothing(built: Built, spark_provider: Any) -> None:
    versions = {spec.name: built.lake.version(spec.name) for spec in built.lake.registry}
    again = run_pipeline(built.settings, spark=spark_provider)
    assert [r.status for r in again.results] == ["up_to_date"] * len(STEPS)
    assert {spec.name: built.lake.version(spec.name) for spec in built.lake.registry} == versions
    redrop = drop_batch(built.settings, built.lake, built.data)
    assert all(landed.skipped for landed in redrop.landed)
    assert built.lake.row_count("bronze.transactions") == ROWS


@pytest.mark.parametrize("step", list(PLANS))
def test_spark_and_duckdb_agree_on_the_same_snapshot(built: Built, step: str) -> None:
    plan = PLANS[step](DUCKDB)
    first_output = next(iter(plan.outputs))
    versions = built.lake.commit_metadata(first_output)["inputs"]
    inputs = {view: built.lake.read_table(table, version=versions[table]) for view, table in plan.inputs.items()}
    duck = run_duckdb(plan, inputs)
    for output, table in duck.items():
        keys = built.lake.spec(output).key or ("payload", "source")  # quarantine: rows have no key
        assert_same(built.lake.read_table(output), table, keys)


def test_the_quality_gate_passes_on_a_fresh_build(built: Built) -> None:
    report = enforce(check_gold(built.lake))
    names = {(c.table, c.name) for c in report.checks}
    assert ("gold.daily_spend", "reconciles") in names and ("gold.claims_features", "unique key") in names
    assert ("silver.transactions", "quarantine share") in names
    assert report.reason() == f"all {len(report.checks)} quality checks passed"


def test_demo_command_prints_a_json_summary(services: Settings, spark_provider: Any) -> None:
    from mdslab.cli.main import app

    result = CliRunner().invoke(app, ["demo", "--rows", "3000", "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    tables = {t["name"]: t for t in summary["tables"]}
    sent = summary["sent"]
    if not sent["skipped"]:  # an earlier test of this run may have fed the same simulation
        assert sent["accepted"] + sent["rejected"] == sent["sent"] and sent["rejected"] > 0 and sent["failed"] == 0
    assert tables["bronze.transactions"]["rows"] >= 3000 * 0.9
    assert tables["gold.fraud_features"]["rows"] == tables["silver.transactions"]["rows"] > 0
    assert summary["quarantined"]["silver.quarantine_transactions"] > 0
    steps = {step["step"] for step in summary["steps"]}
    assert steps >= {"reference_policies", "silver_transactions", "gold_daily_spend"}
    seconds = summary["seconds"]
    assert set(seconds) >= {"spark_session_start", "spark_warm_up", "waited_for_spark", "pipeline", "total"}
    assert abs(seconds["pipeline_after_spark"] - (seconds["pipeline"] - seconds["waited_for_spark"])) <= 0.011


def test_the_warm_up_runs_every_spark_plan_and_leaves_nothing_pinned(spark_provider: Any) -> None:
    """Every plan compiles and runs over the placeholder rows (a plan that cannot would fail here, not
    in the background of a demo)."""
    from mdslab.compute.exchange import pinned_input_count

    before = pinned_input_count()
    assert warm_up_spark(spark_provider.get(), build_registry()) > 0
    assert pinned_input_count() == before


def test_tables_and_optimize_commands_after_the_demo(services: Settings, spark_provider: Any) -> None:
    from mdslab.cli.main import app

    runner = CliRunner()
    before = {e["run"]["runId"] for e in read_events(services.postgres)}
    ran = runner.invoke(app, ["demo", "--rows", "3000", "--seed", "5", "--json"])
    assert ran.exit_code == 0, ran.output
    # the whole demo as OpenLineage runs: the API's serving, the consumer, and the pipeline with each step
    # it built and the gate (none of them when an earlier test of this run already built the same demo)
    demo = [e for e in read_events(services.postgres) if e["run"]["runId"] not in before]
    runs = assert_well_formed_runs(demo)
    assert parents(demo) <= set(runs), "a run names a parent that was never reported"
    jobs = {e["job"]["name"] for e in demo}
    built = {f"mdslab.pipeline.{step['step']}" for step in json.loads(ran.stdout)["steps"] if step["status"] == "built"}
    assert {"mdslab.api.ingest", "mdslab.stream_consumer"} <= jobs
    assert {job for job in jobs if job.startswith("mdslab.pipeline.")} == built
    assert ({"mdslab.pipeline", "mdslab.quality_gate"} <= jobs) == bool(built)
    listed = runner.invoke(app, ["tables", "--json"])
    assert listed.exit_code == 0, listed.output
    tables = {t["name"]: t for t in json.loads(listed.output)}
    assert set(tables) == {spec.name for spec in lakehouse(services).registry}
    # the demo builds every table but two: dead letters only exist once a bad message reached Kafka (the
    # API refuses them), fraud scores once a model was trained (`mdslab train fraud`)
    unbuilt = {name for name, t in tables.items() if t["version"] is None}
    assert unbuilt <= {"bronze.dead_letters", "gold.fraud_scores"}
    optimized = runner.invoke(app, ["optimize", "--table", "silver.transactions"], env={"COLUMNS": "200"})
    assert optimized.exit_code == 0, optimized.output
    assert "silver.transactions" in optimized.output
    after = {t["name"]: t for t in json.loads(runner.invoke(app, ["tables", "--json"]).stdout)}
    assert after["silver.transactions"]["rows"] == tables["silver.transactions"]["rows"]
    assert after["silver.transactions"]["files"] <= tables["silver.transactions"]["files"]
    (optimize,) = [e for e in read_events(services.postgres, job="mdslab.optimize") if e["eventType"] == "COMPLETE"][
        -1:
    ]
    assert [d["facets"]["version"]["datasetVersion"] for d in optimize["outputs"]] == [
        str(after["silver.transactions"]["version"])
    ]


def test_a_new_batch_makes_new_versions_time_travel_keeps_the_old_and_the_gate_names_stale_gold(
    services: Settings, spark_provider: Any
) -> None:
    """On a lab of its own: it adds a batch, rebuilds only silver, then breaks a gold table (the other
    tests of this module see the module's lab as first built, in any order)."""
    settings = fresh_lake(services, "stale")
    lake = lakehouse(settings)
    drop_batch(settings, lake, simulate(SimulationConfig(transactions=3_000, seed=7)))
    run_pipeline(settings, spark=spark_provider)
    before = lake.version("silver.transactions")
    old_rows = lake.row_count("silver.transactions")
    drop_batch(settings, lake, simulate(SimulationConfig(transactions=4_000, seed=99)))
    report = run_pipeline(settings, spark=spark_provider, steps=["silver_transactions"])
    assert report.results[0].status == "built"
    assert lake.version("silver.transactions") == (before or 0) + 1
    assert lake.row_count("silver.transactions", version=before) == old_rows
    assert lake.row_count("silver.transactions") > old_rows

    # Repeats of published keys, and a new key twice: the gate counts both from the appended file alone
    # (the published version passed the check), 2 + 1 extra copies.
    monthly = lake.read_table("gold.claims_monthly")
    month = monthly.schema.get_field_index("incident_month")
    unseen = monthly.slice(0, 1).set_column(month, "incident_month", pa.array([date(1999, 1, 1)], pa.date32()))
    unseen = unseen.cast(monthly.schema)
    lake.write_table("gold.claims_monthly", pa.concat_tables([monthly.slice(0, 2), unseen, unseen]))
    gate = check_gold(lake, max_quarantine_share=0.0)
    failed = {(c.table, c.name) for c in gate.failures}
    assert ("gold.daily_spend", "fresh") in failed and ("gold.fraud_features", "fresh") in failed
    assert ("gold.claims_monthly", "unique key") in failed and ("gold.claims_monthly", "reconciles") in failed
    assert ("silver.transactions", "quarantine share") in failed
    with pytest.raises(
        QualityGateError, match=r"gold.daily_spend fresh: built from silver.transactions v\d+, which is now v\d+"
    ):
        enforce(gate)
    from mdslab.cli.main import app

    result = CliRunner().invoke(app, ["pipeline", "check", "--json"], env=settings.environment())
    assert result.exit_code == 1
    assert "gold.claims_monthly unique key: 3 rows repeat a (incident_month, region, product, claim_type) key" in (
        result.output
    )
