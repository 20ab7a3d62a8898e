"""The simulator: deterministic, valid where it should be, broken exactly where it says, and realistic."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pydantic import BaseModel, ValidationError

from mdslab.workloads.contracts import (
    CLAIM_TYPES_BY_PRODUCT,
    Claim,
    Customer,
    FraudLabel,
    Merchant,
    Policy,
    Product,
    Transaction,
)
from mdslab.workloads.simulator import DefectKind, DefectMix, SimulatedData, SimulationConfig, simulate
from mdslab.workloads.simulator.defects import allocate
from mdslab.workloads.simulator.geo import haversine_km

CONFIG = SimulationConfig(transactions=20_000, seed=7)
TABLES = ("customers", "merchants", "policies", "transactions", "claims", "fraud_labels", "defects")
PARSING_ERRORS = re.compile(r".*_(parsing|type)$")
RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


@pytest.fixture(scope="module")
def data() -> SimulatedData:
    return simulate(CONFIG)


@pytest.fixture(scope="module")
def transactions(data: SimulatedData) -> pd.DataFrame:
    """Valid transactions, parsed, with their labels and reference attributes joined."""
    frame = _valid_documents(data, "transaction")
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    labels = data.fraud_labels.to_pandas()
    customers = data.customers.to_pandas().set_index("customer_id")
    merchants = data.merchants.to_pandas().set_index("merchant_id")
    frame = frame.merge(labels[["event_id", "is_fraud", "fraud_pattern"]], on="event_id", how="left")
    frame = frame.join(customers[["home_lat", "home_lon", "timezone", "country"]], on="customer_id")
    return frame.join(merchants[["category", "is_online", "country"]].add_prefix("merchant_"), on="merchant_id")


def _defects(data: SimulatedData, event_type: str) -> pd.DataFrame:
    defects: pd.DataFrame = data.defects.to_pandas()
    return defects[defects["event_type"] == event_type]


def _valid_documents(data: SimulatedData, event_type: str) -> pd.DataFrame:
    raw = data.transactions if event_type == "transaction" else data.claims
    broken = set(_defects(data, event_type)["row_index"])
    payloads = raw.column("payload").to_pylist()
    return pd.DataFrame([json.loads(p) for i, p in enumerate(payloads) if i not in broken])


def _fingerprint(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def test_same_config_gives_identical_bytes(data: SimulatedData) -> None:
    again = simulate(CONFIG)
    for name in TABLES:
        assert _fingerprint(getattr(again, name)) == _fingerprint(getattr(data, name)), name


def test_another_seed_gives_other_data(data: SimulatedData) -> None:
    other = simulate(SimulationConfig(transactions=20_000, seed=8))
    for name in ("customers", "transactions", "claims", "fraud_labels"):
        assert _fingerprint(getattr(other, name)) != _fingerprint(getattr(data, name)), name


def test_invalid_configs_are_refused_with_the_fix_named() -> None:
    with pytest.raises(ValueError, match="transactions in"):
        SimulationConfig(transactions=10)
    with pytest.raises(ValueError, match="timezone-aware"):
        SimulationConfig(start=datetime(2026, 10, 1))
    with pytest.raises(ValueError, match="DefectMix"):
        DefectMix(duplicate=-1.0)


def test_defects_are_allocated_exactly_with_every_kind_present() -> None:
    counts = allocate(8, DefectMix())
    assert sum(counts.values()) == 8 and min(counts.values()) >= 1
    only_bad_types = DefectMix(
        bad_type=1, missing_field=0, out_of_range=0, duplicate=0, unknown_reference=0, malformed_json=0
    )
    assert allocate(1_000, only_bad_types)[DefectKind.BAD_TYPE] == 1_000


def test_row_counts_follow_the_config(data: SimulatedData) -> None:
    assert data.transactions.num_rows == CONFIG.transactions
    assert data.claims.num_rows == CONFIG.n_claims == 400
    assert (data.customers.num_rows, data.merchants.num_rows, data.policies.num_rows) == (
        CONFIG.n_customers,
        CONFIG.n_merchants,
        CONFIG.n_policies,
    )
    tx_defects = len(_defects(data, "transaction"))
    assert tx_defects == round(CONFIG.transactions * CONFIG.invalid_share)
    assert len(_defects(data, "claim")) == round(CONFIG.n_claims * CONFIG.invalid_share)
    assert data.fraud_labels.num_rows == CONFIG.transactions - tx_defects
    for event_type in ("transaction", "claim"):
        assert set(_defects(data, event_type)["kind"]) == {kind.value for kind in DefectKind}, event_type


@pytest.mark.parametrize(("table", "model"), [("customers", Customer), ("merchants", Merchant), ("policies", Policy)])
def test_reference_tables_are_typed_and_every_row_is_valid(
    data: SimulatedData, table: str, model: type[BaseModel]
) -> None:
    reference: pa.Table = getattr(data, table)
    assert reference.column_names == list(model.model_fields)
    for field in reference.schema:
        if field.name.endswith("_date"):
            assert field.type == pa.date32(), field.name
    for row in reference.to_pylist():
        model.model_validate(row)
    key = reference.column_names[0]
    assert len(set(reference.column(key).to_pylist())) == reference.num_rows


def test_raw_streams_have_the_source_shape(data: SimulatedData) -> None:
    for raw in (data.transactions, data.claims):
        assert raw.schema.names == ["event_id", "payload"]
        assert raw.schema.field("event_id").type == pa.string()
        assert raw.schema.field("payload").type == pa.string()
    assert data.fraud_labels.schema.field("reported_at").type == pa.timestamp("us", tz="UTC")
    assert data.defects.schema.field("row_index").type == pa.int64()


@pytest.mark.parametrize(("event_type", "model"), [("transaction", Transaction), ("claim", Claim)])
def test_valid_payloads_validate_with_exactly_the_contract_fields(
    data: SimulatedData, event_type: str, model: type[BaseModel]
) -> None:
    raw = data.transactions if event_type == "transaction" else data.claims
    broken = set(_defects(data, event_type)["row_index"])
    valid_rows = [i for i in range(raw.num_rows) if i not in broken]
    sample = np.random.default_rng(0).choice(valid_rows, size=min(2_000, len(valid_rows)), replace=False)
    ids, payloads = raw.column("event_id").to_pylist(), raw.column("payload").to_pylist()
    for i in sample.tolist():
        document = json.loads(payloads[i])
        assert list(document) == list(model.model_fields)
        assert document["event_id"] == ids[i]
        time_field = "event_time" if event_type == "transaction" else "reported_at"
        assert document[time_field].endswith("Z")
        model.model_validate_json(payloads[i])


def test_valid_events_are_unique_and_reference_known_entities(data: SimulatedData) -> None:
    customers = set(data.customers.column("customer_id").to_pylist())
    merchants = set(data.merchants.column("merchant_id").to_pylist())
    policies = set(data.policies.column("policy_id").to_pylist())
    tx = _valid_documents(data, "transaction")
    assert tx["event_id"].is_unique
    assert set(tx["customer_id"]) <= customers and set(tx["merchant_id"]) <= merchants
    assert (tx["amount"] > 0).all()
    claims = _valid_documents(data, "claim")
    assert claims["event_id"].is_unique and claims["claim_id"].is_unique
    assert set(claims["policy_id"]) <= policies and set(claims["customer_id"]) <= customers
    assert (claims["amount_claimed"] > 0).all()


@pytest.mark.parametrize(("event_type", "model"), [("transaction", Transaction), ("claim", Claim)])
def test_every_planted_defect_fails_for_its_stated_reason(
    data: SimulatedData, event_type: str, model: type[BaseModel]
) -> None:
    raw = data.transactions if event_type == "transaction" else data.claims
    ids, payloads = raw.column("event_id").to_pylist(), raw.column("payload").to_pylist()
    references = {
        "customer_id": set(data.customers.column("customer_id").to_pylist()),
        "merchant_id": set(data.merchants.column("merchant_id").to_pylist()),
        "policy_id": set(data.policies.column("policy_id").to_pylist()),
    }
    broken = set(_defects(data, event_type)["row_index"])
    for defect in data.defects.filter(pc.equal(data.defects["event_type"], event_type)).to_pylist():
        row, field = defect["row_index"], defect["field"]
        payload = payloads[row]
        assert ids[row] == defect["event_id"]
        kind = DefectKind(defect["kind"])
        if kind is DefectKind.MALFORMED_JSON:
            assert ids[row] is None
            with pytest.raises(ValueError):
                json.loads(payload)
            continue
        if kind is DefectKind.DUPLICATE:
            earlier = [i for i in range(row) if ids[i] == ids[row]]
            assert len(earlier) == 1 and earlier[0] not in broken
            assert payloads[earlier[0]] == payload
            model.model_validate_json(payload)
            continue
        if kind is DefectKind.UNKNOWN_REFERENCE:
            document = model.model_validate_json(payload)
            assert getattr(document, field) not in references[field]
            continue
        with pytest.raises(ValidationError) as caught:
            model.model_validate_json(payload)
        errors = caught.value.errors()
        if kind is DefectKind.MISSING_FIELD:
            assert [(e["type"], e["loc"]) for e in errors] == [("missing", (field,))]
            assert field not in json.loads(payload)
        elif kind is DefectKind.BAD_TYPE:
            assert [e["loc"] for e in errors] == [(field,)]
            assert PARSING_ERRORS.match(errors[0]["type"]), errors
        elif kind is DefectKind.OUT_OF_RANGE:
            assert len(errors) == 1, errors
            if errors[0]["type"] == "value_error":  # the model validator: reported before the incident
                assert "before incident_date" in errors[0]["msg"] and field == "reported_at"
            else:
                assert errors[0]["type"] in RANGE_ERRORS and errors[0]["loc"] == (field,)


def test_labels_cover_every_valid_transaction_with_the_configured_fraud_share(data: SimulatedData) -> None:
    labels = data.fraud_labels.to_pandas()
    valid_ids = set(_valid_documents(data, "transaction")["event_id"])
    assert set(labels["event_id"]) == valid_ids and labels["event_id"].is_unique
    assert labels["is_fraud"].mean() == pytest.approx(CONFIG.fraud_share, abs=0.001)
    assert (labels["is_fraud"] == labels["fraud_pattern"].notna()).all()
    counts = Counter(labels["fraud_pattern"].dropna())
    assert set(counts) == {"card_testing", "geo_jump", "night_spree", "merchant_burst"}
    assert max(counts.values()) - min(counts.values()) <= 1
    for row in labels.sample(200, random_state=0).to_dict("records"):
        FraudLabel.model_validate(row | {"reported_at": row["reported_at"].to_pydatetime()})


def test_labels_arrive_after_their_transactions(data: SimulatedData, transactions: pd.DataFrame) -> None:
    labels = data.fraud_labels.to_pandas().set_index("event_id")
    issued = labels.loc[transactions["event_id"], "reported_at"].to_numpy()
    assert (issued > transactions["event_time"].to_numpy()).all()
    assert pd.Series(labels["reported_at"]).is_monotonic_increasing


def test_fraud_patterns_have_their_signatures(transactions: pd.DataFrame) -> None:
    fraud = transactions[transactions["is_fraud"]]
    testing = fraud[fraud["fraud_pattern"] == "card_testing"]
    assert (testing["channel"] == "online").all()
    assert (testing["amount"] < 5).mean() > 0.6 and testing["amount"].max() > 150
    burst = fraud[fraud["fraud_pattern"] == "merchant_burst"]
    assert burst.groupby("customer_id")["merchant_id"].nunique().max() >= 5
    spree = fraud[fraud["fraud_pattern"] == "night_spree"]
    assert (_local_hours(spree, "timezone") < 5).all()
    assert set(spree["merchant_category"]) <= {"electronics", "jewelry"}
    typical = transactions[~transactions["is_fraud"]].groupby("customer_id")["amount"].mean()
    assert (spree["amount"].to_numpy() >= 4.9 * typical.reindex(spree["customer_id"]).to_numpy()).mean() > 0.9
    jump = fraud[fraud["fraud_pattern"] == "geo_jump"]
    distance = haversine_km(jump["home_lat"].to_numpy(), jump["home_lon"].to_numpy(),
                            jump["lat"].to_numpy(), jump["lon"].to_numpy())  # fmt: skip
    assert (distance > 1_000).all()


def test_a_geo_jump_follows_a_purchase_at_home_within_two_hours(transactions: pd.DataFrame) -> None:
    ordered = transactions.sort_values(["customer_id", "event_time"])
    previous = ordered.groupby("customer_id").shift(1)
    jumps = ordered["fraud_pattern"] == "geo_jump"
    first_of_incident = jumps & (previous["fraud_pattern"] != "geo_jump")
    gap = ordered.loc[first_of_incident, "event_time"] - previous.loc[first_of_incident, "event_time"]
    assert (gap <= pd.Timedelta(hours=2)).mean() > 0.9
    assert not previous.loc[first_of_incident, "is_fraud"].any()


def test_fraud_is_separable_with_features_from_each_customers_past(transactions: pd.DataFrame) -> None:
    """A hand-made score over past-only features already ranks fraud well; a trained model does better."""
    con = duckdb.connect()
    columns = transactions[["customer_id", "event_time", "amount", "timezone"]]
    con.register("tx", columns.assign(row=np.arange(len(columns))))
    past = con.sql(
        """
        SELECT
            count(*) OVER (PARTITION BY customer_id ORDER BY event_time
                RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING) AS n_prev_1h,
            avg(amount) OVER (PARTITION BY customer_id ORDER BY event_time
                RANGE BETWEEN INTERVAL 24 HOUR PRECEDING
                AND INTERVAL 1 MICROSECOND PRECEDING) AS avg_prev_24h,
            hour(timezone(timezone, event_time)) AS local_hour
        FROM tx
        ORDER BY row
        """
    ).df()
    lat = transactions["lat"].fillna(transactions["home_lat"]).to_numpy()
    lon = transactions["lon"].fillna(transactions["home_lon"]).to_numpy()
    far = haversine_km(transactions["home_lat"].to_numpy(), transactions["home_lon"].to_numpy(), lat, lon) > 800
    ratio = (transactions["amount"] / past["avg_prev_24h"]).fillna(1.0).to_numpy()
    night_splurge = (past["local_hour"].to_numpy() < 5) & (ratio > 3)
    score = past["n_prev_1h"].to_numpy() + 3 * far + 3 * night_splurge + 0.5 * np.log1p(ratio)
    assert _roc_auc(transactions["is_fraud"].to_numpy(dtype=bool), score) > 0.85


def _roc_auc(positive: np.ndarray[Any, np.dtype[np.bool_]], score: np.ndarray[Any, Any]) -> float:
    """Mann-Whitney form of ROC AUC, ties counted half."""
    ranks = pd.Series(score).rank().to_numpy()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_most_purchases_happen_near_home_in_local_currency(transactions: pd.DataFrame) -> None:
    stores = transactions[transactions["lat"].notna() & ~transactions["is_fraud"]]
    distance = haversine_km(stores["home_lat"].to_numpy(), stores["home_lon"].to_numpy(),
                            stores["lat"].to_numpy(), stores["lon"].to_numpy())  # fmt: skip
    assert 0.85 < (distance < 50).mean() < 0.99  # some trips and nearby cities, but mostly home
    currency = {"US": "USD", "GB": "GBP"}
    expected = stores["merchant_country"].map(lambda country: currency.get(country, "EUR"))
    assert (stores["currency"] == expected).all()
    online = transactions[transactions["channel"] == "online"]
    assert online["lat"].isna().all() and online["device_id"].notna().all()
    assert (transactions["merchant_is_online"] == (transactions["channel"] == "online")).all()


def test_amounts_depend_on_the_category(transactions: pd.DataFrame) -> None:
    median = transactions[~transactions["is_fraud"]].groupby("merchant_category")["amount"].median()
    assert median["fast_food"] < median["grocery"] < median["clothing"] < median["electronics"] < median["jewelry"]
    assert 15 < median["grocery"] < 60
    cents = (transactions["amount"] * 100).round(6)
    assert (cents == cents.round()).all()


def test_time_of_day_follows_a_daily_rhythm(transactions: pd.DataFrame) -> None:
    legit = transactions[~transactions["is_fraud"]]
    hours = _local_hours(legit, "timezone")
    night, day = (hours < 5).mean(), ((hours >= 9) & (hours < 18)).mean()
    assert night < 0.06
    assert day > 0.4
    per_hour = np.bincount(hours, minlength=24) / len(hours)
    assert per_hour.max() > 2.5 * per_hour.min()


def test_events_arrive_mostly_but_not_strictly_in_time_order(data: SimulatedData) -> None:
    times = pd.to_datetime(_valid_documents(data, "transaction")["event_time"], utc=True)
    in_order = (times.diff().dropna() >= pd.Timedelta(0)).mean()
    assert 0.9 < in_order < 1.0
    start = CONFIG.start
    end = pd.Timestamp(start) + pd.Timedelta(days=CONFIG.days)
    assert times.min() >= pd.Timestamp(start) and times.max() < end + pd.Timedelta(hours=3)


def test_claims_fit_their_policies(data: SimulatedData) -> None:
    claims = _valid_documents(data, "claim")
    policies = data.policies.to_pandas().set_index("policy_id")
    joined = claims.join(policies, on="policy_id", rsuffix="_policy")
    assert (joined["customer_id"] == joined["customer_id_policy"]).all()
    assert (joined["currency"] == joined["currency_policy"]).all()
    for product, claim_type in zip(joined["product"], joined["claim_type"], strict=True):
        assert claim_type in CLAIM_TYPES_BY_PRODUCT[Product(product)]
    incident = pd.to_datetime(joined["incident_date"]).dt.date
    assert (incident >= joined["start_date"]).all() and (incident <= joined["end_date"]).all()
    lag = pd.to_datetime(joined["reported_at"], utc=True).dt.tz_localize(None).dt.normalize() - pd.to_datetime(
        joined["incident_date"]
    )
    assert lag.between(pd.Timedelta(0), pd.Timedelta(days=30)).all()
    assert joined["status"].nunique() == 4


def test_adjuster_notes_are_varied_and_factual(data: SimulatedData) -> None:
    claims = _valid_documents(data, "claim")
    notes = claims["adjuster_notes"]
    assert notes.nunique() == len(notes)
    sentences = notes.str.count(r"[.!?](?:\s|$)")
    assert sentences.between(2, 5).all()
    assert all(incident in note for incident, note in zip(claims["incident_date"], notes, strict=True))
    text = " ".join(notes)
    assert re.search(r"Police report PR-\d{4}-\d{6}", text)
    assert re.search(r"(BuildRight Ltd|AquaFix Plumbing|Northside Auto Body|Riverside Medical Center)", text)
    suspicious = notes.str.contains("inconsistent|same item|altered|older than", regex=True)
    assert 0.01 < suspicious.mean() < 0.2


def _local_hours(frame: pd.DataFrame, zone_column: str) -> np.ndarray[Any, np.dtype[np.int64]]:
    hours = pd.Series(0, index=frame.index, dtype="int64")
    for zone, rows in frame.groupby(zone_column):
        hours[rows.index] = rows["event_time"].dt.tz_convert(str(zone)).dt.hour
    return np.asarray(hours.to_numpy(), dtype=np.int64)


def test_dates_are_anchored_to_the_config_not_the_clock(data: SimulatedData) -> None:
    signup = data.customers.column("signup_date").to_pylist()
    assert max(signup) < CONFIG.start.date() and min(signup) >= date(2012, 1, 1)
    assert CONFIG.start == datetime(2026, 10, 1, tzinfo=UTC)
