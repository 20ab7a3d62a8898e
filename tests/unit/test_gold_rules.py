"""Gold logic (same SQL as the Spark steps) on DuckDB: point-in-time features and the marts."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.gold_sql import (
    claims_features_plan,
    claims_monthly_plan,
    daily_spend_plan,
    fraud_features_plan,
)
from mdslab.workloads.pipeline.silver_sql import silver_claims_plan
from mdslab.workloads.simulator import SimulatedData, SimulationConfig, simulate

from .test_silver_rules import INGESTED, bronze, silver_transactions


@pytest.fixture(scope="module")
def data() -> SimulatedData:
    return simulate(SimulationConfig(transactions=15_000, seed=11))


@pytest.fixture(scope="module")
def silver(data: SimulatedData) -> pa.Table:
    return silver_transactions(data)["silver.transactions"]


def labels(data: SimulatedData) -> pa.Table:
    n = data.fraud_labels.num_rows
    return data.fraud_labels.append_column("ingested_at", pa.array([INGESTED] * n, pa.timestamp("us", tz="UTC")))


def features(silver: pa.Table, data: SimulatedData) -> pa.Table:
    inputs = {"silver_transactions": silver, "fraud_labels": labels(data)}
    return run_duckdb(fraud_features_plan(DUCKDB), inputs)["gold.fraud_features"].sort_by("event_id")


FEATURES = [
    "txn_count_1h", "txn_count_24h", "small_online_count_1h", "distinct_merchants_24h", "avg_amount_24h",
    "avg_amount_30d", "amount_to_avg_30d", "seconds_since_prev", "km_from_prev_located", "is_new_merchant",
]  # fmt: skip


def test_features_do_not_see_the_future(silver: pa.Table, data: SimulatedData) -> None:
    """Planting later transactions (huge, far away, at new merchants) changes no earlier row's features."""
    before = features(silver, data)
    cutoff = pc.max(silver.column("event_time")).as_py() - dt.timedelta(days=10)
    later = silver.filter(pc.greater(silver.column("event_time"), pa.scalar(cutoff)))
    planted = later.set_column(
        later.schema.get_field_index("amount_usd"), "amount_usd", pc.multiply(later.column("amount_usd"), 1000.0)
    )
    planted = planted.set_column(
        planted.schema.get_field_index("event_id"),
        "event_id",
        pa.array([f"future-{i}" for i in range(planted.num_rows)]),
    )
    after = features(pa.concat_tables([silver, planted]), data)
    after = after.filter(pc.invert(pc.starts_with(after.column("event_id"), "future-")))
    early = pc.less_equal(before.column("event_time"), pa.scalar(cutoff))
    assert pc.sum(early).as_py() > 1000
    for name in FEATURES:
        old, new = before.filter(early).column(name).to_pylist(), after.filter(early).column(name).to_pylist()
        # floats: window sums may be added in another order, so compare to rounding precision
        assert (
            new == pytest.approx(old, abs=1e-3, nan_ok=True)
            if pa.types.is_floating(before.schema.field(name).type)
            else new == old
        ), name


def test_counts_match_a_brute_force_over_strictly_earlier_rows(silver: pa.Table, data: SimulatedData) -> None:
    table = features(silver, data).to_pylist()
    by_customer: dict[str, list[dt.datetime]] = {}
    for row in silver.select(["customer_id", "event_time"]).to_pylist():
        by_customer.setdefault(row["customer_id"], []).append(row["event_time"])
    for row in table[::97]:
        times = by_customer[row["customer_id"]]
        t = row["event_time"]
        expected_1h = sum(1 for other in times if t - dt.timedelta(hours=1) <= other < t)
        expected_24h = sum(1 for other in times if t - dt.timedelta(hours=24) <= other < t)
        assert (row["txn_count_1h"], row["txn_count_24h"]) == (expected_1h, expected_24h)


def test_planted_fraud_stands_out_in_the_features(silver: pa.Table, data: SimulatedData) -> None:
    table = features(silver, data)
    fraud = table.filter(pc.equal(table.column("label_pattern"), "card_testing"))
    legit = table.filter(pc.equal(table.column("label_is_fraud"), False))
    assert fraud.num_rows > 0
    assert (
        pc.mean(fraud.column("small_online_count_1h")).as_py()
        > 5 * pc.mean(legit.column("small_online_count_1h")).as_py()
    )
    assert pc.sum(pc.is_null(table.column("label_is_fraud"))).as_py() == 0  # every valid transaction has a label


def test_daily_spend_totals_reconcile_with_silver(silver: pa.Table) -> None:
    spend = run_duckdb(daily_spend_plan(DUCKDB), {"silver_transactions": silver})["gold.daily_spend"]
    assert pc.sum(spend.column("txn_count")).as_py() == silver.num_rows
    assert pc.sum(spend.column("total_usd")).as_py() == pytest.approx(
        pc.sum(silver.column("amount_usd")).as_py(), rel=1e-6
    )


def test_claims_monthly_counts_every_claim_once(data: SimulatedData) -> None:
    inputs = {"bronze_events": bronze(data.claims), "customers": data.customers, "policies": data.policies}
    claims = run_duckdb(silver_claims_plan(DUCKDB), inputs)["silver.claims"]
    monthly = run_duckdb(claims_monthly_plan(DUCKDB), {"silver_claims": claims})["gold.claims_monthly"]
    assert pc.sum(monthly.column("claims_count")).as_py() == claims.num_rows
    decided = pc.add(monthly.column("approved_count"), monthly.column("rejected_count"))
    undecided_rates = monthly.filter(pc.equal(decided, 0)).column("approval_rate")
    assert undecided_rates.null_count == len(undecided_rates)


def test_a_claim_is_judged_and_featured_with_the_policy_term_its_incident_falls_in(data: SimulatedData) -> None:
    planted = set(data.defects.column("event_id").to_pylist())
    document = next(json.loads(row["payload"]) for row in data.claims.to_pylist() if row["event_id"] not in planted)
    policies = data.policies.to_pandas().set_index("policy_id")
    first = policies.loc[document["policy_id"]]
    # a renewal after a 30-day gap, at twice the premium
    second = {**first.to_dict(), "policy_id": document["policy_id"], "annual_premium": first["annual_premium"] * 2}
    second["start_date"] = first["end_date"] + dt.timedelta(days=31)
    second["end_date"] = second["start_date"] + dt.timedelta(days=364)
    terms = pa.concat_tables([data.policies, pa.Table.from_pylist([second], schema=data.policies.schema)])
    incidents = {
        "in_first_term": first["start_date"] + dt.timedelta(days=10),
        "in_the_gap": first["end_date"] + dt.timedelta(days=5),
        "in_the_renewal": second["start_date"] + dt.timedelta(days=40),
        "before_the_first_term": first["start_date"] - dt.timedelta(days=5),
    }
    raw = []
    for n, (case, incident) in enumerate(incidents.items()):
        reported = dt.datetime.combine(incident + dt.timedelta(days=1), dt.time(10), dt.UTC)
        claim = {**document, "event_id": f"00000000-0000-4000-8000-00000000000{n}", "claim_id": f"CL9999999{n}"}
        claim |= {"incident_date": incident.isoformat(), "reported_at": reported.isoformat().replace("+00:00", "Z")}
        raw.append({"event_id": claim["event_id"], "payload": json.dumps(claim), "case": case})
    events = pa.Table.from_pylist(raw).drop_columns(["case"])
    inputs = {"bronze_events": bronze(events), "customers": data.customers, "policies": terms}
    out = run_duckdb(silver_claims_plan(DUCKDB), inputs)
    case_of = {row["event_id"]: row["case"] for row in raw}
    valid = {case_of[i] for i in out["silver.claims"].column("event_id").to_pylist()}
    assert valid == {"in_first_term", "in_the_renewal"}, "each claim is judged once, against its own term"
    rejected = {case_of[row["event_id"]]: row["reasons"] for row in out["silver.quarantine_claims"].to_pylist()}
    assert set(rejected) == {"in_the_gap", "before_the_first_term"}
    assert all(
        reasons == [f"incident_date: {incidents[case]} is outside the policy term"]
        for case, reasons in rejected.items()
    )
    features = run_duckdb(claims_features_plan(DUCKDB), {"silver_claims": out["silver.claims"], "policies": terms})
    premium = {case_of[r["event_id"]]: r["annual_premium_usd"] for r in features["gold.claims_features"].to_pylist()}
    assert premium["in_the_renewal"] == pytest.approx(2 * premium["in_first_term"], rel=1e-3)
