"""Case files as the simulated claims system writes them: one per claim, shaped by the claim type, the same
for the same claims, with planted defects, and schema version 2's fields only in revised documents."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from mdslab.workloads.case_files.documents import (
    DEFECT_SHARE,
    HEALTH,
    PROPERTY,
    TRAVEL,
    VEHICLE,
    case_file,
    chosen,
    claims_of,
    revision,
)
from mdslab.workloads.contracts.vocabulary import ClaimType
from mdslab.workloads.simulator import SimulatedData, SimulationConfig, simulate

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def data() -> SimulatedData:
    return simulate(SimulationConfig(transactions=60_000, seed=23))


def test_every_claim_the_system_holds_gets_one_file_shaped_by_its_type(data: SimulatedData) -> None:
    claims = claims_of(data.claims)
    assert len({claim["claim_id"] for claim in claims}) > 600
    planted = sum(1 for row in data.defects.to_pylist() if row["event_type"] == "claim")
    assert len(claims) >= data.claims.num_rows - planted  # only events the claims system could not hold drop out
    for claim in claims:
        document = case_file(claim, AT)
        kind = ClaimType(claim["claim_type"])
        assert document["_id"] == claim["claim_id"] and document["schema_version"] == 1
        assert ("inspection" in document) == (kind in VEHICLE | PROPERTY)
        assert ("treatment" in document) == (kind in HEALTH)
        assert ("trip" in document) == (kind in TRAVEL)
        assert "adjuster" not in document and "fraud_indicators" not in document
        assert document == case_file(claim, AT)  # the same claim, the same file


def test_a_few_files_carry_a_defect_a_document_store_lets_through(data: SimulatedData) -> None:
    files = [case_file(claim, AT) for claim in claims_of(data.claims)]
    defects: Counter[str] = Counter()
    for document in files:
        for item in document.get("inspection", {}).get("line_items", []):
            if isinstance(item.get("quantity"), str):
                defects["quantity as text"] += 1
            elif "unit_cost_usd" not in item:
                defects["no unit cost"] += 1
            elif item["unit_cost_usd"] < 0:
                defects["negative cost"] += 1
        if isinstance(document["claimant_statement"]["given_at"], str):
            defects["date as text"] += 1
    assert set(defects) == {"quantity as text", "no unit cost", "negative cost", "date as text"}
    assert sum(defects.values()) == pytest.approx(DEFECT_SHARE * len(files), rel=0.5)


def test_a_revision_adds_schema_version_2_fields(data: SimulatedData) -> None:
    claim = claims_of(data.claims)[0]
    changes = revision({"_id": claim["claim_id"]}, run=3, at=AT)
    assert changes["schema_version"] == 2 and changes["last_revised_run"] == 3 and changes["updated_at"] == AT
    assert set(changes["adjuster"]) == {"id", "team"} and isinstance(changes["fraud_indicators"], list)
    assert changes == revision({"_id": claim["claim_id"]}, run=3, at=AT)


def test_the_ids_a_run_changes_are_a_stable_share() -> None:
    ids = [f"CL{n:08d}" for n in range(20_000)]
    picked = chosen(ids, run=2, share=0.05, purpose="revise")
    assert picked == chosen(ids, run=2, share=0.05, purpose="revise")
    assert len(picked) == pytest.approx(1_000, rel=0.1)
    assert set(picked) != set(chosen(ids, run=3, share=0.05, purpose="revise"))


def test_events_the_claims_system_would_not_hold_are_left_out() -> None:
    raw = pa.table(
        {
            "event_id": ["a", "b", "c", "d"],
            "payload": [
                "{not json",
                json.dumps({"claim_id": "CL1", "claim_type": "meteor"}),
                json.dumps([1, 2]),
                json.dumps({"claim_id": "CL2", "claim_type": "glass", "amount_claimed": "38.204,62"}),
            ],
        }
    )
    claims = claims_of(raw)
    assert [claim["claim_id"] for claim in claims] == ["CL2"]
    assert case_file(claims[0], AT)["inspection"]["line_items"]  # a bad amount does not stop the file
