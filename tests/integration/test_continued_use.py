"""The lab used again and again: the simulator continues its world, and silver and gold reach readers
only through the quality gate (write-audit-publish), so breaking the data on purpose leaves what
readers see untouched."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from mdslab import database
from mdslab.lakehouse import Lakehouse, NotPublishedError
from mdslab.llm.lake_documents import claim_documents
from mdslab.settings import Settings
from mdslab.workloads import reference
from mdslab.workloads.bronze_landing import land_events
from mdslab.workloads.contracts import Transaction
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.quality import GOLD_TABLES, QUARANTINES, rejections
from mdslab.workloads.simulation_runs import UnknownRunError, next_run, recorded_runs, replay
from mdslab.workloads.simulator import simulate
from tests.conftest import fresh_lake

pytestmark = pytest.mark.integration

AUDITED = (*GOLD_TABLES, *QUARANTINES, *QUARANTINES.values())


def test_simulating_again_continues_the_world_and_rewrites_no_reference_row(isolated: Any) -> None:
    settings = isolated()
    lake = lakehouse(settings)
    first = next_run(settings.postgres, transactions=3_000, seed=42)
    fed = drop_batch(settings, lake, simulate(first.config))
    assert first.new and first.config.run == 0 and sum(fed.reference_changed.values()) > 0
    policy_terms = reference.REFERENCE_TABLES[2]
    schema = lake.spec("bronze.policies").schema
    terms_before = reference.read(settings.postgres, policy_terms, schema).to_pandas()
    # another size and seed, as `mdslab simulate --rate 2000 --duration 15` after `make demo`
    second = next_run(settings.postgres, transactions=2_000, seed=7)
    again = drop_batch(settings, lake, simulate(second.config))
    assert second.new and second.config.run == 1
    assert again.reference_changed["customers"] == again.reference_changed["merchants"] == 0
    # policies gain the renewals that begin in the new window, as new terms; no term is rewritten
    terms_after = reference.read(settings.postgres, policy_terms, schema).to_pandas()
    assert again.reference_changed["policies"] == len(terms_after) - len(terms_before) > 0
    kept = terms_before.merge(terms_after, how="inner", on=list(terms_before.columns))
    assert len(kept) == len(terms_before), "an existing policy term changed"
    assert second.config.start == first.config.start + timedelta(days=first.config.days)
    assert again.batch_id != fed.batch_id and not any(landed.skipped for landed in again.landed)
    ids = lake.read_table("bronze.transactions", columns=["event_id", "batch_id"]).to_pandas().dropna()
    by_batch = ids.groupby("batch_id")["event_id"].apply(set)
    assert not by_batch[fed.batch_id] & by_batch[again.batch_id], "the continuation re-sent event ids"
    # the demo's rule: the same parameters are the recorded run (not sent again); a replay is on request
    same = next_run(settings.postgres, transactions=3_000, seed=42, reuse_same=True)
    assert not same.new and same.config == first.config
    assert replay(settings.postgres, 1).config == second.config
    assert [run.run for run in recorded_runs(settings.postgres)] == [0, 1]
    with pytest.raises(UnknownRunError, match=r"run 9 does not exist in this lab \(runs 0 to 1\)"):
        replay(settings.postgres, 9)


def test_a_lab_made_before_policy_terms_widens_its_key_and_takes_renewals(isolated: Any) -> None:
    """``reference.policies`` of an older lab is keyed by policy_id alone; a renewal (same policy_id, a
    later start_date) could not be inserted. The key is widened in place and no row is lost."""
    settings = isolated()
    pg = settings.postgres
    policies = reference.REFERENCE_TABLES[2]
    first = simulate(next_run(pg, transactions=2_000, seed=3).config)
    with database.connect(pg) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS reference")
        conn.execute(reference.ddl(dataclasses.replace(policies, key=("policy_id",))))  # the older shape
    assert reference.upsert(pg, {"policies": first.policies})["policies"] == first.policies.num_rows
    later = simulate(next_run(pg, transactions=2_000, seed=4).config)
    renewals = later.policies.num_rows - first.policies.num_rows
    assert renewals > 0 and reference.upsert(pg, {"policies": later.policies})["policies"] == renewals
    with database.connect(pg) as conn:
        key = conn.execute(
            "SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'reference.policies'::regclass "
            "AND i.indisprimary"
        ).fetchone()
    assert key is not None and sorted(key[0]) == ["policy_id", "start_date"]


def test_reference_snapshots_read_back_exactly_what_postgres_holds(isolated: Any) -> None:
    """The snapshot is read as CSV (COPY): every value that CSV quotes, escapes or could take for NULL
    must come back as it was, and an empty table is an empty snapshot with the schema."""
    settings = isolated()
    lake = lakehouse(settings)
    customers = reference.REFERENCE_TABLES[0]
    schema = lake.spec("bronze.customers").schema
    reference.upsert(settings.postgres, {})  # the tables exist, empty
    empty = reference.read(settings.postgres, customers, schema)
    assert empty.num_rows == 0 and set(empty.column_names) == set(customers.columns)
    data = simulate(next_run(settings.postgres, transactions=1_000, seed=8).config).customers.slice(0, 6)
    awkward = ['O\'Brien, "Jr"', "two\nlines", "", "t", "NULL", "Zoë Ünal"]
    data = data.set_column(data.schema.get_field_index("full_name"), "full_name", pa.array(awkward))
    reference.upsert(settings.postgres, {"customers": data})
    snapshot = reference.read(settings.postgres, customers, schema)
    assert snapshot.to_pylist() == data.sort_by("customer_id").select(snapshot.column_names).to_pylist()
    assert snapshot.column("full_name").null_count == 0
    assert snapshot.schema.field("signup_date").type == pa.date32() and snapshot.column("home_lat").type == pa.float64()


def test_simulate_replay_of_an_unknown_run_is_one_line(isolated: Any) -> None:
    from mdslab.cli.main import app

    settings = isolated()
    result = CliRunner().invoke(app, ["simulate", "--target", "lake", "--replay", "5"], env=settings.environment())
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: simulation run 5 does not exist in this lab (no run yet): nothing to replay"
    ]


@dataclass
class Lab:
    settings: Settings
    lake: Lakehouse


def _published_lab(services: Settings, spark_provider: Any) -> Lab:
    settings = fresh_lake(services, "wap")
    lake = lakehouse(settings)
    drop_batch(settings, lake, simulate(next_run(settings.postgres, transactions=4_000, seed=13).config))
    report = run_pipeline(settings, spark=spark_provider)
    assert report.published, report.gate_line()
    return Lab(settings, lake)


@pytest.fixture(scope="module")
def lab(services: Settings, spark_provider: Any) -> Lab:
    return _published_lab(services, spark_provider)


def _published(lake: Lakehouse) -> dict[str, int]:
    return {name: publication.version for name, publication in lake.publications().items()}


def test_a_passing_build_is_what_readers_see(lab: Lab) -> None:
    published = _published(lab.lake)
    assert set(published) == set(AUDITED)
    assert published == {name: lab.lake.version(name) for name in AUDITED}
    assert lab.lake.current_version("bronze.transactions") == lab.lake.version("bronze.transactions")


def test_duplicates_are_reported_apart_and_do_not_fail_the_gate(lab: Lab, spark_provider: Any) -> None:
    """A replayed batch is all duplicates: silver removes them, and the gate does not count them."""
    sent = lab.lake.read_table("bronze.transactions", columns=["event_id", "payload"]).slice(0, 1_500)
    land_events(
        lab.lake,
        "bronze.transactions",
        sent,
        batch_id="replayed-on-purpose",
        source="simulator",
        contract_version=Transaction.CONTRACT_VERSION,
    )
    report = run_pipeline(lab.settings, spark=spark_provider)
    assert report.gate is not None and report.published, report.gate_line()
    rejected, duplicates = rejections(lab.lake, "silver.quarantine_transactions")
    assert duplicates >= 1_400  # the copies (a few of the 1,500 were invalid, and stay rejections)
    share = next(c for c in report.gate.checks if c.table == "silver.transactions" and c.name == "quarantine share")
    assert share.passed and f"{duplicates:,} duplicate copies removed, not counted" in share.detail
    assert rejected / (lab.lake.row_count("silver.transactions") + rejected) < 0.05


def test_a_failed_gate_leaves_readers_on_the_previous_build(services: Settings, spark_provider: Any) -> None:
    """The break seen in the field: the source rewrites every policy's currency, silver quarantines
    nearly every claim, gold shrinks; none of it may reach scoring, the RAG corpus or the published tables.
    On a lab of its own: the module's lab must stay publishable for the other tests, in any order."""
    lab = _published_lab(services, spark_provider)
    lake = lab.lake
    before = _published(lake)
    monthly = lake.read_current("gold.claims_monthly")
    documents = claim_documents(lake)
    policies = reference.read(lab.settings.postgres, reference.REFERENCE_TABLES[2], lake.spec("bronze.policies").schema)
    rotate = {"USD": "EUR", "EUR": "GBP", "GBP": "USD"}
    currency = pa.array([rotate[c] for c in policies.column("currency").to_pylist()])
    reference.upsert(
        lab.settings.postgres,
        {"policies": policies.set_column(policies.schema.get_field_index("currency"), "currency", currency)},
    )

    report = run_pipeline(lab.settings, spark=spark_provider)

    assert report.gate is not None and not report.gate.passed and not report.published
    failed = {(c.table, c.name) for c in report.gate.failures}
    assert ("silver.claims", "quarantine share") in failed
    assert report.gate_line().startswith("NOT published, readers keep the previous versions")
    assert _published(lake) == before
    assert lake.read_current("gold.claims_monthly").equals(monthly)
    assert claim_documents(lake) == documents  # what the RAG index would embed
    assert lake.current_version("gold.fraud_features") == before["gold.fraud_features"]  # what scoring reads
    # the rejected build is kept for inspection: it is the latest version
    assert lake.version("silver.claims") > before["silver.claims"]
    inconsistent = pc.list_element(lake.read_table("silver.quarantine_claims").column("reason_codes"), 0)
    assert pc.sum(pc.equal(inconsistent, "inconsistent")).as_py() > 0.5 * lake.row_count("silver.quarantine_claims")

    from mdslab.cli.main import app

    cli = CliRunner().invoke(app, ["pipeline", "check", "--json"], env=lab.settings.environment())
    assert cli.exit_code == 1 and "nothing was published" in cli.output
    assert _published(lake) == before
    tables = CliRunner().invoke(app, ["tables", "--json"], env=lab.settings.environment())
    listed = {t["name"]: t for t in json.loads(tables.stdout)}
    assert listed["silver.claims"]["published"] == before["silver.claims"] < listed["silver.claims"]["version"]
    status = CliRunner().invoke(app, ["status", "--json"], env=lab.settings.environment())
    gate = json.loads(status.stdout)["figures"]["gate"]  # was: every step `up_to_date`, nothing about the gate
    assert gate["passed"] is False and "silver.claims quarantine share" in gate["reason"]
    text = CliRunner().invoke(app, ["status"], env=lab.settings.environment() | {"COLUMNS": "300"})
    assert "quality gate, 0 min ago: FAILED, readers keep the previous versions" in text.output


def test_a_table_never_published_is_refused_to_readers_with_the_reason(services: Settings) -> None:
    settings = fresh_lake(services, "np")
    lake = lakehouse(settings)
    lake.write_table("gold.claims_monthly", lake.spec("gold.claims_monthly").schema.empty_table())
    with pytest.raises(NotPublishedError, match="no build of it has passed the quality gate yet"):
        lake.read_current("gold.claims_monthly")
    assert lake.current_version("gold.claims_monthly") is None
