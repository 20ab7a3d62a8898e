"""Incremental silver and gold equal a full refresh of the same bronze, row for row, whatever the batches
held (duplicates, late events, rejected rows, new labels, policy renewals, a reference change), and a
pipeline killed in the middle of an increment heals on its next run."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import CommitProperties, write_deltalake

from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads import reference
from mdslab.workloads.bronze_landing import land_events, land_labels
from mdslab.workloads.contracts import Claim, Transaction
from mdslab.workloads.file_drop_feed import batch_id_for
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.runner import PipelineReport, run_pipeline
from mdslab.workloads.pipeline.steps import STEPS
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import SimulatedData, simulate
from tests.conftest import fresh_lake
from tests.lake_asserts import assert_same

pytestmark = pytest.mark.integration

BUILT = [name for step in STEPS if step.layer in ("silver", "gold") for name in step.outputs]
QUARANTINE_ORDER = ("payload", "source", "ingested_at", "kafka_offset")


@dataclass
class Lab:
    settings: Settings
    lake: Lakehouse
    first: SimulatedData | None = None  # the module lab's first batch
    first_build: PipelineReport | None = None


def _land(
    lab: Lab, data: SimulatedData, batch: str, *, part: tuple[float, float] | None = None, with_reference: bool = True
) -> None:
    """Events (or the share ``part`` of each stream, in arrival order) as one landing batch, and the
    labels when the whole run is landed; the run's reference data first (its policy renewals), as the
    simulator's feed does, unless ``with_reference`` is False (events that arrive before their master data)."""
    if with_reference:
        reference.upsert(lab.settings.postgres, data.reference_tables())
    for table, events, contract in (
        ("bronze.transactions", data.transactions, Transaction),
        ("bronze.claims", data.claims, Claim),
    ):
        start, stop = (0, len(events)) if part is None else (int(part[0] * len(events)), int(part[1] * len(events)))
        land_events(
            lab.lake,
            table,
            events.slice(start, stop - start),
            batch_id=batch,
            source="simulator",
            contract_version=contract.CONTRACT_VERSION,
        )
    if part is None:
        land_labels(lab.lake, data.fraud_labels, batch_id=batch)


def _land_copies(lab: Lab, transactions: pa.Table, batch: str) -> None:
    """Transactions landed again as a batch of their own: copies of events silver already holds."""
    land_events(
        lab.lake,
        "bronze.transactions",
        transactions,
        batch_id=batch,
        source="simulator",
        contract_version=Transaction.CONTRACT_VERSION,
    )


def _settle(lab: Lab, data: SimulatedData, spark_provider: Any) -> None:
    """The world as ``data`` was simulated, built: undoes what earlier tests changed (a customer moved,
    renewals held back), whatever order they ran in. What they force is rebuilt here (rightly in full),
    so the test that follows sees only its own window's renewals."""
    issued_before = data.policies.filter(pc.field("start_date") < data.config.start.date())
    reference.upsert(lab.settings.postgres, {**data.reference_tables(), "policies": issued_before})
    run_pipeline(lab.settings, spark=spark_provider)


def _snapshot(lake: Lakehouse) -> dict[str, pa.Table]:
    return {name: lake.read_table(name) for name in BUILT}


def _assert_equal(incremental: dict[str, pa.Table], full: dict[str, pa.Table], lake: Lakehouse) -> None:
    for name in BUILT:
        keys = lake.spec(name).key or QUARANTINE_ORDER
        assert_same(full[name], incremental[name], keys)


def _modes(report: PipelineReport) -> dict[str, str | None]:
    return {result.step: result.mode for result in report.results}


@pytest.fixture(scope="module")
def lab(services: Settings, spark_provider: Any) -> Lab:
    """A lake with a first batch built: each test adds its own batches, in whatever order they run."""
    settings = fresh_lake(services, "inc")
    lab = Lab(settings, lakehouse(settings))
    pg = settings.postgres
    first = simulate(next_run(pg, transactions=4_000, seed=21).config)
    _land(lab, first, batch_id_for(first.config))
    lab.first, lab.first_build = first, run_pipeline(settings, spark=spark_provider)
    return lab


def test_increments_equal_a_full_refresh(lab: Lab, spark_provider: Any) -> None:
    pg = lab.settings.postgres
    first = lab.first
    assert first is not None and lab.first_build is not None
    assert set(_modes(lab.first_build).values()) == {"full"}, "the first build is a full one"

    # a continuation, its later half first: the second batch then holds events *earlier* than the first
    later = simulate(next_run(pg, transactions=3_000, seed=22).config)
    _settle(lab, later, spark_provider)
    visible = {table: lab.lake.row_count(table) for table in ("silver.transactions", "silver.claims")}
    terms = lab.lake.row_count("bronze.policies")
    _land(lab, later, "later-second-half", part=(0.5, 1.0))
    step = run_pipeline(lab.settings, spark=spark_provider)
    newly_visible = sum(lab.lake.row_count(table) - rows for table, rows in visible.items())
    assert len(step.waits) == newly_visible > 0 and min(step.waits) >= 0  # one wait per event readers now see
    assert _modes(step)["silver_transactions"] == "incremental" and _modes(step)["gold_fraud_features"] == "incremental"
    # the continuation renewed policies: new terms appended to bronze, followed by the claims increments
    assert lab.lake.row_count("bronze.policies") > terms and _modes(step)["reference_customers"] is None
    assert _modes(step)["silver_claims"] == _modes(step)["gold_claims_features"] == "incremental", _modes(step)
    assert step.published, step.gate_line()
    bronze_before = lab.lake.row_count("bronze.transactions")
    _land(lab, later, "later-first-half", part=(0.0, 0.5))
    land_labels(lab.lake, later.fraud_labels, batch_id=batch_id_for(later.config))  # labels for old events
    # a replay of events silver already holds: every copy is a duplicate
    _land_copies(lab, first.transactions.slice(0, 800), "replayed")
    step = run_pipeline(lab.settings, spark=spark_provider)
    assert set(_modes(step).values()) - {None} == {"incremental"}, _modes(step)
    silver = next(result for result in step.results if result.step == "silver_transactions")
    assert silver.rows_in == lab.lake.row_count("bronze.transactions") - bronze_before  # only the new rows
    assert step.published, step.gate_line()

    # a batch of copies only: silver gains a version and no row; gold records it and changes nothing
    gold_rows = lab.lake.row_count("gold.fraud_features")
    _land_copies(lab, later.transactions.slice(0, 50), "copies-only")
    step = run_pipeline(lab.settings, spark=spark_provider)
    fraud = next(result for result in step.results if result.step == "gold_fraud_features")
    assert (fraud.mode, fraud.rows_out) == ("incremental", {"gold.fraud_features": 0}), fraud
    assert lab.lake.row_count("gold.fraud_features") == gold_rows and step.published, step.gate_line()

    incremental = _snapshot(lab.lake)
    full = run_pipeline(lab.settings, spark=spark_provider, force=True)
    assert set(_modes(full).values()) == {"full"}
    _assert_equal(incremental, _snapshot(lab.lake), lab.lake)


def test_a_reference_change_rebuilds_silver_in_full_then_increments_resume(lab: Lab, spark_provider: Any) -> None:
    pg = lab.settings.postgres
    customers = reference.read(pg, reference.REFERENCE_TABLES[0], lab.lake.spec("bronze.customers").schema)
    segment = customers.schema.get_field_index("segment")
    moved = ["premium" if i % 7 == 0 else s for i, s in enumerate(customers.column("segment").to_pylist())]
    more = simulate(next_run(pg, transactions=2_000, seed=23).config)
    _land(lab, more, batch_id_for(more.config))
    reference.upsert(pg, {"customers": customers.set_column(segment, "segment", pa.array(moved))})
    changed = run_pipeline(lab.settings, spark=spark_provider)
    assert _modes(changed)["silver_transactions"] == "full", "a customer change must re-conform every transaction"
    assert _modes(changed)["gold_daily_spend"] == "full"  # silver was rewritten

    more = simulate(next_run(pg, transactions=2_000, seed=24).config)
    _land(lab, more, batch_id_for(more.config), with_reference=False)  # the simulator's would undo the change
    resumed = run_pipeline(lab.settings, spark=spark_provider)
    assert _modes(resumed)["silver_transactions"] == "incremental"
    incremental = _snapshot(lab.lake)
    run_pipeline(lab.settings, spark=spark_provider, force=True)
    _assert_equal(incremental, _snapshot(lab.lake), lab.lake)


def test_policy_terms_that_arrive_after_their_claims_rebuild_the_claims_in_full(lab: Lab, spark_provider: Any) -> None:
    pg = lab.settings.postgres
    more = simulate(next_run(pg, transactions=3_000, seed=25).config)
    _land(lab, more, batch_id_for(more.config), with_reference=False)  # the renewals are not issued yet
    early = run_pipeline(lab.settings, spark=spark_provider)
    assert _modes(early)["silver_claims"] == "incremental"
    outside_before = _outside_a_term(lab.lake)
    assert outside_before > 0, "claims in the renewal terms should wait in quarantine, outside any known term"

    reference.upsert(pg, {"policies": more.policies})
    late = run_pipeline(lab.settings, spark=spark_provider)
    assert _modes(late)["silver_claims"] == "full", "claims built before now fall in a new term: rebuild them"
    assert _outside_a_term(lab.lake) < outside_before
    incremental = _snapshot(lab.lake)
    run_pipeline(lab.settings, spark=spark_provider, force=True)
    _assert_equal(incremental, _snapshot(lab.lake), lab.lake)


def test_a_claim_rejected_for_its_own_fields_does_not_rebuild_the_claims_when_its_policy_renews(
    lab: Lab, spark_provider: Any
) -> None:
    """A planted bad date is rejected for its contract whatever the terms say: a renewal of its policy
    must not cost a full rebuild (it did at 5M rows, every batch, when every earlier claim was checked)."""
    pg = lab.settings.postgres
    more = simulate(next_run(pg, transactions=2_000, seed=27).config)
    _settle(lab, more, spark_provider)
    terms = reference.read(pg, reference.REFERENCE_TABLES[2], lab.lake.spec("bronze.policies").schema)
    issued = set(zip(terms.column("policy_id").to_pylist(), terms.column("start_date").to_pylist(), strict=True))
    renewing = next(
        row["policy_id"] for row in more.policies.to_pylist() if (row["policy_id"], row["start_date"]) not in issued
    )
    planted = set(more.defects.column("event_id").to_pylist())
    claim = next(json.loads(r["payload"]) for r in more.claims.to_pylist() if r["event_id"] not in planted)
    bad = claim | {"event_id": str(uuid.uuid4()), "policy_id": renewing, "incident_date": "last tuesday"}
    land_events(
        lab.lake,
        "bronze.claims",
        pa.table({"event_id": [bad["event_id"]], "payload": [json.dumps(bad)]}),
        batch_id="bad-date",
        source="simulator",
        contract_version=Claim.CONTRACT_VERSION,
    )
    assert _modes(run_pipeline(lab.settings, spark=spark_provider))["silver_claims"] == "incremental"

    _land(lab, more, batch_id_for(more.config))  # the renewal of its policy, and the window's events
    renewed = run_pipeline(lab.settings, spark=spark_provider)
    assert _modes(renewed)["reference_policies"] == "full" and lab.lake.row_count("bronze.policies") > len(terms)
    assert _modes(renewed)["silver_claims"] == _modes(renewed)["gold_claims_features"] == "incremental"


def test_silver_of_an_older_design_is_rebuilt_in_full_once_then_increments_resume(
    lab: Lab, spark_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A lake built before silver.transactions was partitioned by month (by day, without event_month):
    the next run rebuilds it in the new design instead of appending to the old one, then increments."""
    name = "silver.transactions"
    built = lab.lake.read_table(name).drop_columns(["event_month"])
    write_deltalake(
        lab.lake.delta(name),
        built,
        mode="overwrite",
        partition_by=["event_date"],
        schema_mode="overwrite",
        commit_properties=CommitProperties(custom_metadata={"mdslab": json.dumps(lab.lake.commit_metadata(name))}),
    )
    assert "column event_month is new" in lab.lake.layout_changes(name)
    more = simulate(next_run(lab.settings.postgres, transactions=1_500, seed=26).config)
    _land(lab, more, batch_id_for(more.config), with_reference=False)
    with caplog.at_level("INFO", logger="mdslab.workloads.pipeline.step_runtime"):
        migrated = run_pipeline(lab.settings, spark=spark_provider)
    assert _modes(migrated)["silver_transactions"] == "full" and migrated.published, migrated.gate_line()
    assert "the lab changed the design of silver.transactions (partitioned by event_date, registered event_month" in (
        caplog.text
    )
    assert lab.lake.layout_changes(name) == [] and lab.lake.delta(name).metadata().partition_columns == ["event_month"]

    more = simulate(next_run(lab.settings.postgres, transactions=1_500, seed=28).config)
    _land(lab, more, batch_id_for(more.config), with_reference=False)
    resumed = run_pipeline(lab.settings, spark=spark_provider)
    assert _modes(resumed)["silver_transactions"] == _modes(resumed)["gold_fraud_features"] == "incremental"
    incremental = _snapshot(lab.lake)
    run_pipeline(lab.settings, spark=spark_provider, force=True)
    _assert_equal(incremental, _snapshot(lab.lake), lab.lake)


def _outside_a_term(lake: Lakehouse) -> int:
    reasons = lake.read_table("silver.quarantine_claims", columns=["reasons"]).column("reasons").to_pylist()
    return sum(any("outside the policy term" in reason for reason in row) for row in reasons)


KILL_BETWEEN_OUTPUTS = textwrap.dedent(
    """
    import os, signal
    from mdslab.lakehouse.tables import Lakehouse
    from mdslab.settings import load_settings
    from mdslab.workloads.pipeline.runner import run_pipeline

    write = Lakehouse.write_table

    def write_then_die(self, name, data, **options):
        version = write(self, name, data, **options)
        if name == "silver.transactions" and (options.get("metadata") or {}).get("mode") == "incremental":
            os.kill(os.getpid(), signal.SIGKILL)  # after silver's commit, before quarantine's
        return version

    Lakehouse.write_table = write_then_die
    run_pipeline(load_settings(), steps=["silver_transactions"])
    """
)


def test_a_pipeline_killed_between_two_outputs_of_an_increment_heals(services: Settings, spark_provider: Any) -> None:
    settings = fresh_lake(services, "kill")
    lab = Lab(settings, lakehouse(settings))
    pg = settings.postgres
    first = simulate(next_run(pg, transactions=3_000, seed=31).config)
    _land(lab, first, "first")
    run_pipeline(settings, spark=spark_provider)
    more = simulate(next_run(pg, transactions=2_000, seed=32).config)
    _land(lab, more, "more")
    quarantine_before = lab.lake.version("silver.quarantine_transactions")

    env = {**os.environ, **settings.environment()}
    killed = subprocess.run([sys.executable, "-c", KILL_BETWEEN_OUTPUTS], env=env, capture_output=True, timeout=600)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert lab.lake.version("silver.quarantine_transactions") == quarantine_before, "the kill came too late"

    healed = run_pipeline(settings, spark=spark_provider)
    assert _modes(healed)["silver_transactions"] == "full", "outputs that disagree must be rebuilt whole"
    assert healed.published, healed.gate_line()
    after_heal = _snapshot(lab.lake)
    run_pipeline(settings, spark=spark_provider, force=True)
    _assert_equal(after_heal, _snapshot(lab.lake), lab.lake)
    ids = lab.lake.read_table("silver.transactions", columns=["event_id"]).column("event_id")
    assert len(ids) == len(set(ids.to_pylist())), "the killed batch was applied twice"


def test_watch_builds_what_arrives_and_stops_on_sigterm(lab: Lab, spark_provider: Any) -> None:
    """`pipeline run --watch` on a built lab: a new batch is picked up incrementally (no Spark session)
    and published; a customer change is rebuilt in full on Spark; SIGTERM ends it cleanly (exit 0, also
    once Ray, which replaces the driver's SIGTERM handler with an exit 15, has started)."""
    more = simulate(next_run(lab.settings.postgres, transactions=1_500, seed=41).config)
    reference.upsert(lab.settings.postgres, more.reference_tables())  # the world as simulated, renewals too
    run_pipeline(lab.settings, spark=spark_provider)  # whatever an earlier test changed or left unbuilt
    env = {**os.environ, **lab.settings.environment(), "COLUMNS": "400"}
    watch = subprocess.Popen(
        [str(Path(sys.executable).parent / "mdslab"), "pipeline", "run", "--watch", "--interval", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in watch.stdout or []], daemon=True).start()
    try:
        assert "nothing new" in _next_line_with(lines, ("nothing new", "built"))
        _land(lab, more, batch_id_for(more.config), with_reference=False)
        built = _next_line_with(lines, ("built",))
        assert "silver_transactions (incremental, +" in built and "published (quality gate passed)" in built, built
        assert "events waited p50" in built
        segment = more.customers.schema.get_field_index("segment")
        moved = ["premium" if i % 5 == 0 else s for i, s in enumerate(more.customers.column("segment").to_pylist())]
        reference.upsert(
            lab.settings.postgres, {"customers": more.customers.set_column(segment, "segment", pa.array(moved))}
        )
        rebuilt = _next_line_with(lines, ("built",), timeout_s=300)
        assert "silver_transactions (full, +" in rebuilt, rebuilt
    finally:
        watch.send_signal(signal.SIGTERM)
        assert watch.wait(timeout=60) == 0


def _next_line_with(lines: queue.Queue[str], words: tuple[str, ...], timeout_s: float = 180) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if any(word in line for word in words):
            return line
    raise AssertionError(f"no line with {words} within {timeout_s:.0f} s")


def test_watch_refuses_a_zero_interval() -> None:
    from typer.testing import CliRunner

    from mdslab.cli.main import app

    result = CliRunner().invoke(app, ["pipeline", "run", "--watch", "--interval", "0"])
    assert result.exit_code == 2 and "Invalid value for '--interval'" in result.output
