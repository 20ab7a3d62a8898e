"""Silver's contract checks (SQL derived from the Pydantic contracts), evaluated by DuckDB here; the
Spark run of the same SQL is checked against DuckDB in the integration tests."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from mdslab.workloads.contracts import Transaction
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.silver_sql import silver_claims_plan, silver_transactions_plan
from mdslab.workloads.simulator import SimulatedData, SimulationConfig, simulate

INGESTED = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def bronze(raw: pa.Table) -> pa.Table:
    n = raw.num_rows
    return pa.table(
        {
            "event_id": raw.column("event_id"),
            "payload": raw.column("payload"),
            "source": pa.array(["batch:test"] * n),
            "ingested_at": pa.array([INGESTED] * n, pa.timestamp("us", tz="UTC")),
            "kafka_topic": pa.nulls(n, pa.string()),
            "kafka_partition": pa.nulls(n, pa.int32()),
            "kafka_offset": pa.nulls(n, pa.int64()),
        }
    )


@pytest.fixture(scope="module")
def data() -> SimulatedData:
    return simulate(SimulationConfig(transactions=20_000, seed=7))


def silver_transactions(data: SimulatedData, raw: pa.Table | None = None) -> dict[str, pa.Table]:
    inputs = {
        "bronze_events": bronze(raw or data.transactions),
        "customers": data.customers,
        "merchants": data.merchants,
    }
    return run_duckdb(silver_transactions_plan(DUCKDB), inputs)


VALID = {
    "event_id": "0f0e0d0c-0b0a-4908-8706-050403020100",
    "customer_id": "C0000001",
    "merchant_id": "M000001",
    "amount": 12.5,
    "currency": "EUR",
    "event_time": "2026-10-02T10:00:00.000Z",
    "channel": "card_present",
    "card_last4": "1234",
    "lat": 48.1,
    "lon": 11.5,
    "device_id": None,
}


def check_one(data: SimulatedData, payload: Any) -> list[tuple[str, str]]:
    """Quarantine (code, reason) pairs for a single payload, against the simulated reference data."""
    document = payload if isinstance(payload, str) else json.dumps(payload)
    schema = pa.schema([("event_id", pa.string()), ("payload", pa.string())])
    raw = pa.table({"event_id": [None], "payload": [document]}, schema=schema)
    out = silver_transactions(data, raw)
    quarantine = out["silver.quarantine_transactions"].to_pylist()
    return [pair for row in quarantine for pair in zip(row["reason_codes"], row["reasons"], strict=True)]


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"amount": -3}, "out_of_range", "amount: -3 is out of range (> 0, <= 50000)"),
        ({"amount": "12,50"}, "bad_type", "amount: '12,50' is not a valid number"),
        ({"currency": "JPY"}, "not_allowed", "currency: 'JPY' is not one of USD, EUR, GBP"),
        ({"card_last4": "12a4"}, "bad_format", "card_last4: '12a4' does not match"),
        (
            {"event_time": "2026-10-02T10:00:00"},
            "bad_type",
            "event_time: '2026-10-02T10:00:00' is not a valid timestamp",
        ),
        ({"event_time": "1970-01-01T00:00:00Z"}, "out_of_range", "event_time: 1970-01-01T00:00:00Z is out of range"),
        ({"lat": 123.0}, "out_of_range", "lat: 123.0 is out of range (>= -90, <= 90)"),
        ({"surprise": 1}, "unexpected_field", "surprise: not in the contract"),
    ],
)
def test_each_rule_names_field_and_value(data: SimulatedData, change: dict[str, Any], code: str, words: str) -> None:
    problems = check_one(data, {**VALID, **change})
    assert [c for c, _ in problems] == [code]
    assert words in problems[0][1]
    with pytest.raises(ValidationError):  # the contract agrees that the event is invalid
        Transaction.model_validate({**VALID, **change})


def test_missing_required_field_is_reported(data: SimulatedData) -> None:
    payload = {key: value for key, value in VALID.items() if key != "card_last4"}
    assert check_one(data, payload) == [("missing_field", "card_last4: required field is missing")]


def test_several_problems_are_all_reported(data: SimulatedData) -> None:
    problems = check_one(data, {**VALID, "amount": 0, "currency": "XXX", "channel": None})
    assert sorted(code for code, _ in problems) == ["missing_field", "not_allowed", "out_of_range"]


@pytest.mark.parametrize("payload", ["{'event_id': 'x'}", '{"amount": 1', "<html>502</html>", "", "[1, 2]"])
def test_non_json_objects_are_malformed(data: SimulatedData, payload: str) -> None:
    assert [code for code, _ in check_one(data, payload)] == ["malformed_json"]


def test_valid_event_passes_silver_and_pydantic(data: SimulatedData) -> None:
    assert check_one(data, VALID) == []
    Transaction.model_validate(VALID)


def test_quarantine_matches_every_planted_defect(data: SimulatedData) -> None:
    out = silver_transactions(data)
    silver, quarantine = out["silver.transactions"], out["silver.quarantine_transactions"]
    assert silver.num_rows + quarantine.num_rows == data.transactions.num_rows  # nothing lost
    assert len(set(silver.column("event_id").to_pylist())) == silver.num_rows  # deduplicated
    planted = Counter(row["kind"] for row in data.defects.to_pylist() if row["event_type"] == "transaction")
    found = Counter(codes[0] for codes in quarantine.column("reason_codes").to_pylist())
    # the quarantine's first reason code is the planted defect's kind, for every kind
    assert dict(found) == dict(planted)


def test_duplicates_keep_the_first_copy_in_silver(data: SimulatedData) -> None:
    out = silver_transactions(data)
    duplicated = {
        row["event_id"]
        for row in data.defects.to_pylist()
        if row["kind"] == "duplicate" and row["event_type"] == "transaction"
    }
    silver_ids = set(out["silver.transactions"].column("event_id").to_pylist())
    assert duplicated and duplicated <= silver_ids


def test_every_silver_row_is_valid_under_the_pydantic_contract(data: SimulatedData) -> None:
    silver = silver_transactions(data)["silver.transactions"]
    fields = list(Transaction.model_fields)
    for row in silver.select(fields).slice(0, 2_000).to_pylist():
        Transaction.model_validate(row)


def test_claims_quarantine_matches_planted_defects_and_conformance(data: SimulatedData) -> None:
    inputs = {"bronze_events": bronze(data.claims), "customers": data.customers, "policies": data.policies}
    out = run_duckdb(silver_claims_plan(DUCKDB), inputs)
    silver, quarantine = out["silver.claims"], out["silver.quarantine_claims"]
    assert silver.num_rows + quarantine.num_rows == data.claims.num_rows
    planted = Counter(row["kind"] for row in data.defects.to_pylist() if row["event_type"] == "claim")
    found = Counter(codes[0] for codes in quarantine.column("reason_codes").to_pylist())
    assert dict(found) == dict(planted)
    months = silver.column("incident_month").to_pylist()
    assert all(month.day == 1 for month in months)
    assert min(silver.column("report_lag_days").to_pylist()) >= 0
