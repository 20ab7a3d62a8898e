"""Data contracts: valid examples pass, each constraint rejects with the field named, schemas in sync."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mdslab.workloads.contracts import (
    CONTRACTS,
    Claim,
    Customer,
    FieldRule,
    FraudLabel,
    Merchant,
    Policy,
    Transaction,
    export_json_schemas,
    field_rules,
    schema_file_name,
)
from mdslab.workloads.contracts.export import SCHEMAS_DIR

EVENT_ID = "0b6f4bb6-2d2b-4c4e-9d7e-3c7a1f0e9a11"

VALID: dict[type[BaseModel], dict[str, Any]] = {
    Customer: {
        "customer_id": "C0000123",
        "full_name": "Anna Müller",
        "email": "anna.mueller123@gmx.net",
        "city": "Berlin",
        "region": "DE",
        "country": "DE",
        "timezone": "Europe/Berlin",
        "segment": "premium",
        "signup_date": "2019-04-02",
        "home_lat": 52.52,
        "home_lon": 13.405,
    },
    Merchant: {
        "merchant_id": "M000123",
        "name": "FreshWay Boston",
        "category": "grocery",
        "mcc": "5411",
        "city": "Boston",
        "region": "US-Northeast",
        "country": "US",
        "timezone": "America/New_York",
        "lat": 42.36,
        "lon": -71.06,
        "is_online": False,
    },
    Policy: {
        "policy_id": "P0000123",
        "customer_id": "C0000123",
        "product": "home",
        "region": "DE",
        "currency": "EUR",
        "start_date": "2026-01-01",
        "end_date": "2026-12-31",
        "annual_premium": 620.5,
        "coverage_limit": 300_000,
        "deductible": 500,
    },
    Transaction: {
        "event_id": EVENT_ID,
        "customer_id": "C0000123",
        "merchant_id": "M000123",
        "amount": 42.5,
        "currency": "USD",
        "event_time": "2026-10-14T12:34:56.789Z",
        "channel": "contactless",
        "card_last4": "0042",
        "lat": 42.36,
        "lon": -71.06,
        "device_id": None,
    },
    Claim: {
        "event_id": EVENT_ID,
        "claim_id": "CL00000123",
        "policy_id": "P0000123",
        "customer_id": "C0000123",
        "claim_type": "water_damage",
        "amount_claimed": 4250.0,
        "currency": "EUR",
        "incident_date": "2026-10-14",
        "reported_at": "2026-10-15T09:00:00+00:00",
        "region": "DE",
        "status": "under_review",
        "adjuster_notes": "Water damage in the kitchen after a burst pipe on 2026-10-14.",
    },
    FraudLabel: {
        "event_id": EVENT_ID,
        "is_fraud": True,
        "fraud_pattern": "card_testing",
        "reported_at": "2026-10-20T00:00:00Z",
    },
}


def error_fields(error: ValidationError) -> set[str]:
    return {str(part) for item in error.errors() for part in item["loc"]}


def test_every_contract_has_a_name_a_semver_version_and_a_valid_example() -> None:
    assert set(CONTRACTS.values()) == set(VALID)
    for name, model in CONTRACTS.items():
        assert name == model.CONTRACT_NAME
        major, minor, patch = model.CONTRACT_VERSION.split(".")
        assert all(part.isdigit() for part in (major, minor, patch))
        model.model_validate(VALID[model])


def test_contracts_are_frozen_and_closed() -> None:
    transaction = Transaction.model_validate(VALID[Transaction])
    with pytest.raises(ValidationError):
        transaction.amount = 1.0
    with pytest.raises(ValidationError) as caught:
        Transaction.model_validate(VALID[Transaction] | {"merchant_name": "FreshWay"})
    assert "merchant_name" in error_fields(caught.value)


@pytest.mark.parametrize(
    ("model", "changes", "field"),
    [
        (Transaction, {"amount": -5.0}, "amount"),
        (Transaction, {"amount": 0.0}, "amount"),
        (Transaction, {"amount": 50_000.01}, "amount"),
        (Transaction, {"currency": "CHF"}, "currency"),
        (Transaction, {"event_time": "2026-10-14T12:34:56"}, "event_time"),
        (Transaction, {"event_time": "1970-01-01T00:00:00Z"}, "event_time"),
        (Transaction, {"event_time": "2126-01-01T00:00:00Z"}, "event_time"),
        (Transaction, {"channel": "telepathy"}, "channel"),
        (Transaction, {"card_last4": "42"}, "card_last4"),
        (Transaction, {"customer_id": "123"}, "customer_id"),
        (Transaction, {"event_id": "not-a-uuid"}, "event_id"),
        (Transaction, {"lat": 91.0}, "lat"),
        (Transaction, {"amount": "12,50"}, "amount"),
        (Claim, {"amount_claimed": 2_000_000.5}, "amount_claimed"),
        (Claim, {"claim_type": "meteor"}, "claim_type"),
        (Claim, {"adjuster_notes": "x" * 4_001}, "adjuster_notes"),
        (Customer, {"segment": "vip"}, "segment"),
        (Customer, {"email": "not-an-email"}, "email"),
        (Merchant, {"mcc": "541"}, "mcc"),
        (Policy, {"annual_premium": 0}, "annual_premium"),
        (Policy, {"deductible": -1}, "deductible"),
    ],
)
def test_each_constraint_rejects_with_the_field_named(
    model: type[BaseModel], changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(VALID[model] | changes)
    assert field in error_fields(caught.value)


@pytest.mark.parametrize("field", ["customer_id", "amount", "event_time"])
def test_a_missing_required_field_is_named(field: str) -> None:
    payload = {key: value for key, value in VALID[Transaction].items() if key != field}
    with pytest.raises(ValidationError) as caught:
        Transaction.model_validate(payload)
    assert [(item["type"], item["loc"]) for item in caught.value.errors()] == [("missing", (field,))]


def test_a_claim_reported_before_its_incident_is_rejected_naming_both_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        Claim.model_validate(VALID[Claim] | {"reported_at": "2026-10-13T23:59:00Z"})
    message = str(caught.value)
    assert "reported_at" in message and "incident_date" in message


def test_a_claim_reported_the_day_of_its_incident_is_accepted() -> None:
    claim = Claim.model_validate(VALID[Claim] | {"reported_at": "2026-10-14T00:00:00Z"})
    assert claim.reported_at.date() == claim.incident_date


def test_policy_terms_must_be_consistent() -> None:
    with pytest.raises(ValidationError, match="end_date"):
        Policy.model_validate(VALID[Policy] | {"end_date": "2025-12-31"})
    with pytest.raises(ValidationError, match="deductible"):
        Policy.model_validate(VALID[Policy] | {"deductible": 300_000})


def test_a_fraud_pattern_on_a_legitimate_label_is_rejected() -> None:
    with pytest.raises(ValidationError, match="fraud_pattern"):
        FraudLabel.model_validate(VALID[FraudLabel] | {"is_fraud": False})
    assert FraudLabel.model_validate(VALID[FraudLabel] | {"is_fraud": False, "fraud_pattern": None})


def test_timestamps_with_an_offset_are_normalised_to_utc() -> None:
    transaction = Transaction.model_validate(VALID[Transaction] | {"event_time": "2026-10-14T14:34:56+02:00"})
    assert transaction.event_time == datetime(2026, 10, 14, 12, 34, 56, tzinfo=UTC)
    assert transaction.event_time.utcoffset() == timedelta(0)
    offset = datetime(2026, 10, 14, 8, tzinfo=timezone(timedelta(hours=-4)))
    assert Transaction.model_validate(VALID[Transaction] | {"event_time": offset}).event_time.hour == 12


def test_committed_json_schemas_match_a_fresh_export(tmp_path: Path) -> None:
    fresh = export_json_schemas(tmp_path)
    committed = sorted(path.name for path in SCHEMAS_DIR.glob("*.schema.json"))
    assert committed == sorted(path.name for path in fresh), "run: python -m mdslab.workloads.contracts"
    for path in fresh:
        assert (SCHEMAS_DIR / path.name).read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{path.name} is stale; run: python -m mdslab.workloads.contracts"
        )


def test_json_schema_files_carry_identity_and_version() -> None:
    for model in CONTRACTS.values():
        document = json.loads((SCHEMAS_DIR / schema_file_name(model)).read_text(encoding="utf-8"))
        assert document["$id"] == f"urn:mdslab:contract:{model.CONTRACT_NAME}:v{model.CONTRACT_VERSION[0]}"
        assert document["title"] == model.__name__
        assert document["version"] == model.CONTRACT_VERSION
        assert document["additionalProperties"] is False
        assert set(document["properties"]) == set(model.model_fields)


def test_field_rules_cover_every_field_in_order() -> None:
    for model in CONTRACTS.values():
        rules = field_rules(model)
        assert [rule.name for rule in rules] == list(model.model_fields)
        assert all(rule.description for rule in rules), f"{model.__name__} has an undocumented field"


def test_field_rules_of_a_transaction() -> None:
    rules = {rule.name: rule for rule in field_rules(Transaction)}
    assert rules["amount"] == FieldRule(
        name="amount",
        kind="float",
        required=True,
        gt=0.0,
        le=50_000.0,
        description=Transaction.model_fields["amount"].description,
    )
    assert rules["currency"].allowed == ("USD", "EUR", "GBP")
    assert rules["channel"].allowed == ("card_present", "contactless", "online", "atm")
    assert rules["event_time"].kind == "timestamp"
    assert rules["event_time"].ge == datetime(2000, 1, 1, tzinfo=UTC)
    assert rules["event_time"].lt == datetime(2100, 1, 1, tzinfo=UTC)
    assert rules["card_last4"].pattern == r"^\d{4}$"
    assert (rules["lat"].required, rules["lat"].kind, rules["lat"].ge, rules["lat"].le) == (
        False,
        "float",
        -90.0,
        90.0,
    )
    assert rules["device_id"].required is False and rules["device_id"].max_length == 64
    assert rules["customer_id"].required is True and rules["customer_id"].pattern == r"^C\d{7}$"


def test_field_rules_of_other_contracts() -> None:
    claim = {rule.name: rule for rule in field_rules(Claim)}
    assert claim["incident_date"].kind == "date" and claim["incident_date"].ge == date(2000, 1, 1)
    assert claim["adjuster_notes"].max_length == 4_000
    assert "water_damage" in (claim["claim_type"].allowed or ())
    label = {rule.name: rule for rule in field_rules(FraudLabel)}
    assert label["is_fraud"].kind == "boolean"
    assert label["fraud_pattern"].required is False
    assert label["fraud_pattern"].allowed == ("card_testing", "geo_jump", "night_spree", "merchant_burst")
    merchant = {rule.name: rule for rule in field_rules(Merchant)}
    assert merchant["is_online"].kind == "boolean" and merchant["is_online"].required
    policy = {rule.name: rule for rule in field_rules(Policy)}
    assert policy["deductible"].ge == 0.0 and policy["deductible"].gt is None
    assert policy["start_date"].kind == "date"


def test_field_rules_reject_an_annotation_without_a_column_kind() -> None:
    class Odd(BaseModel):
        payload: dict[str, int]

    with pytest.raises(TypeError, match=r"Odd\.payload"):
        field_rules(Odd)


def test_field_rules_agree_with_pydantic_on_boundary_values() -> None:
    """A value just inside each numeric bound validates, one just outside fails: rules == model."""
    for model in (Transaction, Claim, Policy, Customer, Merchant):
        for rule in field_rules(model):
            if rule.kind != "float":
                continue
            ge, gt, le = (_number(bound) for bound in (rule.ge, rule.gt, rule.le))
            inside = [ge, le, None if gt is None else gt + 0.01]
            outside = [None if ge is None else ge - 0.01, gt, None if le is None else le + 0.01]
            for value in (v for v in inside if v is not None):
                model.model_validate(_consistent(model, rule.name, value))
            for value in (v for v in outside if v is not None):
                with pytest.raises(ValidationError) as caught:
                    model.model_validate(_consistent(model, rule.name, value))
                assert rule.name in error_fields(caught.value)


def _number(bound: object) -> float | None:
    assert bound is None or isinstance(bound, float), f"numeric bound expected, got {bound!r}"
    return bound


def _consistent(model: type[BaseModel], field: str, value: Any) -> dict[str, Any]:
    """The valid example with ``field`` set to ``value``, keeping cross-field rules satisfiable."""
    data = VALID[model] | {field: value}
    if model is Policy and field in ("deductible", "coverage_limit"):
        data |= {"coverage_limit": 100_000_000} if field == "deductible" else {"deductible": 0}
    return data


def test_export_into_a_file_is_refused_naming_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mdslab.cli.main import app

    target = tmp_path / "schemas.json"
    target.write_text("{}")
    result = CliRunner().invoke(app, ["contracts", "export", str(target)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "is a file" in result.output, result.output
    assert target.read_text() == "{}"
    written = CliRunner().invoke(app, ["contracts", "export", str(tmp_path / "new" / "dir")])
    exported = list((tmp_path / "new" / "dir").glob("*.schema.json"))
    assert written.exit_code == 0 and len(exported) == len(export_json_schemas(tmp_path / "ref"))
