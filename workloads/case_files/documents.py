"""Case files: the claims system's semi-structured documents, one per claim, whose shape varies by claim
type and grows over time (schema version 2 adds fields to documents revised later).

Pure functions of the claims and a seed (same inputs, same documents), so a run can be repeated and a
test can say exactly what the source holds. Writing them to MongoDB is :mod:`.store`'s job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from mdslab.workloads.contracts.vocabulary import ClaimType

VEHICLE = {ClaimType.COLLISION, ClaimType.THEFT, ClaimType.GLASS, ClaimType.LIABILITY}
PROPERTY = {ClaimType.WATER_DAMAGE, ClaimType.FIRE, ClaimType.STORM}
HEALTH = {ClaimType.MEDICAL, ClaimType.HOSPITALIZATION, ClaimType.CRITICAL_ILLNESS, ClaimType.DEATH}
TRAVEL = {ClaimType.TRAVEL_DELAY, ClaimType.BAGGAGE_LOSS}

LINE_ITEMS = {
    "vehicle": [("bumper", "parts"), ("headlamp", "parts"), ("windscreen", "glass"), ("labour", "labour"),
                ("paint", "materials"), ("towing", "services")],
    "property": [("drying equipment", "services"), ("plasterboard", "materials"), ("flooring", "materials"),
                 ("labour", "labour"), ("roof tiles", "materials"), ("electrician", "services")],
}  # fmt: skip
INSPECTORS = ("INS-014", "INS-027", "INS-031", "INS-048", "INS-052")
TEAMS = ("motor", "property", "health", "travel", "special investigations")
INDICATORS = ("late report", "prior claims", "altered receipt", "inconsistent statement", "new policy")
DEFECT_SHARE = 0.03  # documents with a planted defect: quantity as text, a missing unit cost, a negative cost


def _unit(text: str) -> float:
    """A number in [0, 1) from text: the same document always draws the same values."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def _pick(options: tuple[str, ...] | list[Any], key: str) -> Any:
    return options[int(_unit(key) * len(options))]


def claims_of(raw: pa.Table) -> list[dict[str, Any]]:
    """The claims of a simulated run's raw claim events that a claims system would hold: JSON objects with a
    claim id and a known claim type (the planted malformed events never reached it)."""
    claims = []
    for payload in raw.column("payload").to_pylist():
        try:
            claim = json.loads(payload)
        except (TypeError, ValueError):
            continue
        if (
            isinstance(claim, dict)
            and isinstance(claim.get("claim_id"), str)
            and claim.get("claim_type") in ClaimType.__members__.values()
        ):
            claims.append(claim)
    return claims


def _line_items(family: str, claim_id: str, amount: float) -> list[dict[str, Any]]:
    count = 1 + int(_unit(claim_id + "items") * 4)
    items = []
    for index in range(count):
        key = f"{claim_id}/{index}"
        name, category = _pick(LINE_ITEMS[family], key)
        quantity = 1 + int(_unit(key + "q") * 3)
        items.append(
            {"item": name, "category": category, "quantity": quantity,
             "unit_cost_usd": round(amount / count / quantity, 2)}
        )  # fmt: skip
    return items


def _plant_defect(document: dict[str, Any], claim_id: str) -> None:
    """One of three defects a document store lets through (no schema): the line item keeps its field."""
    items = document.get("inspection", {}).get("line_items")
    if not items:
        document["claimant_statement"]["given_at"] = "last tuesday"  # a date field holding text
        return
    kind = int(_unit(claim_id + "kind") * 3)
    if kind == 0:
        items[0]["quantity"] = "two"
    elif kind == 1:
        del items[0]["unit_cost_usd"]
    else:
        items[0]["unit_cost_usd"] = -abs(items[0]["unit_cost_usd"])


def case_file(claim: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    """A claim's case file as the claims system first stores it (schema version 1)."""
    claim_id, claim_type = claim["claim_id"], ClaimType(claim["claim_type"])
    amount = claim.get("amount_claimed")
    amount = float(amount) if isinstance(amount, int | float) else 100.0  # a planted bad amount: not this file's
    document: dict[str, Any] = {
        "_id": claim_id,
        "claim_id": claim_id,
        "policy_id": claim.get("policy_id"),
        "claim_type": claim_type.value,
        "schema_version": 1,
        "status": claim.get("status", "open"),
        "created_at": created_at,
        "updated_at": created_at,
        "claimant_statement": {
            "given_at": created_at - timedelta(hours=2),
            "channel": _pick(("phone", "web", "agent", "app"), claim_id + "channel"),
            "text": claim.get("adjuster_notes") or f"Claim {claim_id}: statement taken by phone.",
        },
        "attachments": [
            {"file_name": f"{claim_id.lower()}-{n}.{ext}", "content_type": kind,
             "size_bytes": 20_000 + int(_unit(f"{claim_id}{n}") * 2_000_000)}
            for n, (ext, kind) in enumerate((("jpg", "image/jpeg"), ("pdf", "application/pdf"))[
                : 1 + int(_unit(claim_id + "att") * 2)])
        ],
    }  # fmt: skip
    if claim_type in VEHICLE or claim_type in PROPERTY:
        family = "vehicle" if claim_type in VEHICLE else "property"
        document["inspection"] = {
            "inspector_id": _pick(INSPECTORS, claim_id),
            "visited_at": created_at + timedelta(days=1 + int(_unit(claim_id + "visit") * 5)),
            "findings": f"Damage consistent with the reported {claim_type.value.replace('_', ' ')}.",
            "line_items": _line_items(family, claim_id, amount),
        }
    elif claim_type in HEALTH:
        document["treatment"] = {
            "provider": _pick(("Mercy Regional", "St. Anne's Clinic", "City General"), claim_id),
            "episodes": 1 + int(_unit(claim_id + "ep") * 3),
        }
    else:
        document["trip"] = {
            "carrier": _pick(("EuroJet", "Atlantic Air", "NorthRail"), claim_id),
            "delay_hours": round(_unit(claim_id + "delay") * 30, 1),
        }
    if _unit(claim_id + "defect") < DEFECT_SHARE:
        _plant_defect(document, claim_id)
    return document


def revision(document: dict[str, Any], *, run: int, at: datetime) -> dict[str, Any]:
    """What a later run changes in an earlier case file: schema version 2's new fields (an adjuster,
    fraud indicators), a new status, a follow-up note; as the ``$set`` of an update."""
    claim_id = document["_id"]
    status = _pick(("under_review", "approved", "rejected", "referred"), f"{claim_id}/{run}")
    changes: dict[str, Any] = {
        "schema_version": 2,
        "status": status,
        "updated_at": at,
        "adjuster": {"id": f"ADJ-{int(_unit(claim_id + 'adj') * 900) + 100}", "team": _pick(TEAMS, claim_id)},
        "fraud_indicators": sorted(
            {_pick(INDICATORS, f"{claim_id}/{run}/{n}") for n in range(int(_unit(claim_id) * 3))}
        ),
        "last_revised_run": run,
    }
    if status == "referred":
        changes["referral"] = {"unit": "special investigations", "reason": "receipts looked altered"}
    return changes


def chosen(ids: Iterable[str], *, run: int, share: float, purpose: str) -> list[str]:
    """The ids a run revises (or deletes): a fixed share, drawn from the ids and the run."""
    return [claim_id for claim_id in ids if _unit(f"{purpose}/{run}/{claim_id}") < share]
