"""Insurance claims on active policies: a peril that fits the product, a plausible amount, notes.

Claims are reported during office hours in the policyholder's time zone, 0-30 days after the incident
(most within a week), and are numbered in the order they were reported.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from mdslab.errors import MdslabError
from mdslab.workloads.contracts import (
    CLAIM_TYPES_BY_PRODUCT,
    MAX_CLAIM_AMOUNT,
    Claim,
    ClaimStatus,
    ClaimType,
    Product,
)
from mdslab.workloads.simulator.catalog import PROFILE_NAMES
from mdslab.workloads.simulator.config import SimulationConfig
from mdslab.workloads.simulator.defects import DefectRecipe
from mdslab.workloads.simulator.encode import ISO_MILLIS_UTC, PayloadSpec, enum_column
from mdslab.workloads.simulator.events import EventType
from mdslab.workloads.simulator.frame import Frame, take
from mdslab.workloads.simulator.geo import CURRENCY_CODES, REGIONS
from mdslab.workloads.simulator.notes import ClaimFacts, adjuster_notes
from mdslab.workloads.simulator.reference import PRODUCTS
from mdslab.workloads.simulator.sampling import (
    DAY_US,
    IntArray,
    arrival_order,
    local_hours,
    weighted_choice,
    wrap_into_window,
)
from mdslab.workloads.simulator.world import World

CLAIM_TYPES: tuple[ClaimType, ...] = tuple(ClaimType)
STATUSES: tuple[ClaimStatus, ...] = tuple(ClaimStatus)
CLAIMS_PER_POLICY_YEAR: dict[Product, float] = {
    Product.AUTO: 1.0, Product.HOME: 0.7, Product.HEALTH: 1.4, Product.TRAVEL: 0.6, Product.LIFE: 0.05,
}  # fmt: skip
TYPE_WEIGHTS: dict[ClaimType, float] = {
    ClaimType.COLLISION: 0.55, ClaimType.THEFT: 0.15, ClaimType.GLASS: 0.23, ClaimType.LIABILITY: 0.1,
    ClaimType.WATER_DAMAGE: 0.4, ClaimType.FIRE: 0.08, ClaimType.STORM: 0.22, ClaimType.MEDICAL: 0.5,
    ClaimType.HOSPITALIZATION: 0.2, ClaimType.TRAVEL_DELAY: 0.5, ClaimType.BAGGAGE_LOSS: 0.3,
    ClaimType.DEATH: 0.6, ClaimType.CRITICAL_ILLNESS: 0.4,
}  # fmt: skip
# median amount and log-sigma; life benefits are a share of the coverage limit instead
CLAIM_SIZE: dict[ClaimType, tuple[float, float]] = {
    ClaimType.COLLISION: (3_500, 0.8), ClaimType.THEFT: (6_000, 0.9), ClaimType.GLASS: (450, 0.4),
    ClaimType.LIABILITY: (9_000, 1.0), ClaimType.WATER_DAMAGE: (5_500, 0.9), ClaimType.FIRE: (22_000, 1.1),
    ClaimType.STORM: (7_000, 0.9), ClaimType.MEDICAL: (1_800, 1.0), ClaimType.HOSPITALIZATION: (14_000, 0.8),
    ClaimType.TRAVEL_DELAY: (250, 0.6), ClaimType.BAGGAGE_LOSS: (800, 0.6),
}  # fmt: skip
LIFE_BENEFIT_SHARE: dict[ClaimType, tuple[float, ...]] = {
    ClaimType.DEATH: (1.0,), ClaimType.CRITICAL_ILLNESS: (0.25, 0.5),
}  # fmt: skip
SUSPICIOUS_SHARE = 0.06


class WorldExhaustedError(MdslabError):
    """A continuation reached a window that none of the world's policies covers any more."""


def claim_frame(world: World, n: int, rng: np.random.Generator) -> Frame:
    """``n`` claims in arrival order (reported time plus a little jitter)."""
    policies, cities = world.policies, world.cities
    active = np.flatnonzero(policies.active)
    if n and not len(active):
        raise WorldExhaustedError(
            f"no policy of the simulated world covers {world.config.start:%Y-%m-%d} plus {world.config.days} days: "
            "every policy has lapsed; start a new lab or a new world"
        )
    frequency = np.array([CLAIMS_PER_POLICY_YEAR[PRODUCTS[p]] for p in policies.product[active]])
    policy = active[weighted_choice(frequency, n, rng)]
    claim_type = _claim_types(policies.product[policy], rng)
    customer = policies.customer[policy]
    home = world.customers.city[customer]
    day = weighted_choice(np.where(world.is_weekend(np.arange(world.config.days)), 0.35, 1.0), n, rng)
    hour = local_hours(np.full(n, PROFILE_NAMES.index("office")), rng)
    reported_us = wrap_into_window(
        world.local_to_utc_us(day, hour, home, rng),
        world.start_us,
        world.config.days,
    )
    lag = np.minimum(30, rng.exponential(4.0, n).astype(np.int64))
    coverage = policies.coverage_limit[policy]
    amount = _amounts(claim_type, coverage, rng)
    suspicious = rng.random(n) < SUSPICIOUS_SHARE
    status_weights = np.where(suspicious[:, None], [0.1, 0.6, 0.0, 0.3], [0.35, 0.3, 0.25, 0.1])
    status = (rng.random(n)[:, None] > np.cumsum(status_weights, axis=1)).sum(axis=1)
    frame: Frame = {
        "policy": policy,
        "customer": customer,
        "claim_type": claim_type,
        "amount": amount,
        "currency": cities.currency[home],
        "incident_day": reported_us // DAY_US - lag,
        "reported_us": reported_us,
        "region": cities.region[home],
        "status": np.minimum(status, len(STATUSES) - 1),
        "suspicious": suspicious,
        "prior_claims": rng.poisson(0.5, n) + suspicious,
        "deductible": policies.deductible[policy],
    }
    frame = take(frame, arrival_order(reported_us, rng, late_share=0.01))
    first = world.config.first_claim
    frame["claim"] = np.arange(first, first + n)
    facts = ClaimFacts(
        claim_type=tuple(CLAIM_TYPES[t] for t in frame["claim_type"]),
        status=tuple(STATUSES[s] for s in frame["status"]),
        amount=frame["amount"],
        currency=tuple(CURRENCY_CODES[c].value for c in frame["currency"]),
        incident_day=frame["incident_day"],
        deductible=frame["deductible"],
        prior_claims=frame["prior_claims"],
        suspicious=frame["suspicious"],
    )
    frame["notes"] = np.array(adjuster_notes(facts, rng), dtype=object)
    return frame


def _claim_types(product: IntArray, rng: np.random.Generator) -> IntArray:
    claim_type = np.empty(len(product), dtype=np.int64)
    for code, name in enumerate(PRODUCTS):
        rows = np.flatnonzero(product == code)
        options = CLAIM_TYPES_BY_PRODUCT[name]
        picked = weighted_choice(np.array([TYPE_WEIGHTS[t] for t in options]), len(rows), rng)
        claim_type[rows] = np.array([CLAIM_TYPES.index(t) for t in options])[picked]
    return claim_type


def _amounts(claim_type: IntArray, coverage: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    amount = np.empty(len(claim_type))
    for code, name in enumerate(CLAIM_TYPES):
        rows = np.flatnonzero(claim_type == code)
        if name in LIFE_BENEFIT_SHARE:
            shares = np.array(LIFE_BENEFIT_SHARE[name])
            amount[rows] = coverage[rows] * shares[rng.integers(0, len(shares), len(rows))]
        else:
            median, sigma = CLAIM_SIZE[name]
            amount[rows] = median * rng.lognormal(0.0, sigma, len(rows))
    return np.round(np.clip(amount, 50, np.minimum(coverage * 1.1, MAX_CLAIM_AMOUNT)), 2)


def claim_columns(frame: Frame) -> Mapping[str, pa.Array]:
    return {
        "claim": pa.array(frame["claim"]),
        "policy": pa.array(frame["policy"]),
        "customer": pa.array(frame["customer"]),
        "claim_type": enum_column(frame["claim_type"], CLAIM_TYPES),
        "amount": pa.array(frame["amount"]),
        "currency": enum_column(frame["currency"], CURRENCY_CODES),
        "incident_date": pa.array(frame["incident_day"].astype(np.int32), type=pa.date32()),
        "reported_us": pa.array(frame["reported_us"]),
        "region": enum_column(frame["region"], REGIONS),
        "status": enum_column(frame["status"], STATUSES),
        "notes": pa.array(frame["notes"], type=pa.string()),
    }


CLAIM_PAYLOAD = PayloadSpec(
    contract=Claim,
    fields={
        "event_id": "event_id",
        "claim_id": "printf('CL%08d', claim)",
        "policy_id": "printf('P%07d', policy)",
        "customer_id": "printf('C%07d', customer)",
        "claim_type": "claim_type",
        "amount_claimed": "amount",
        "currency": "currency",
        "incident_date": "incident_date",
        "reported_at": f"strftime(make_timestamp(reported_us), '{ISO_MILLIS_UTC}')",
        "region": "region",
        "status": "status",
        "adjuster_notes": "notes",
    },
)


def _out_of_range(frame: Frame, rows: IntArray, rng: np.random.Generator, config: SimulationConfig) -> list[str]:
    """Zero or negative amounts, amounts over the limit, and incidents dated after the report."""
    variant = rng.integers(0, 3, len(rows))
    amount = frame["amount"]
    low, high, late = rows[variant == 0], rows[variant == 1], rows[variant == 2]
    amount[low] = np.where(rng.random(len(low)) < 0.5, -amount[low], 0.0)
    amount[high] = np.round(rng.uniform(2_000_000.01, 9_000_000, len(high)), 2)
    frame["incident_day"][late] = frame["reported_us"][late] // DAY_US + rng.integers(1, 21, len(late))
    return ["reported_at" if v == 2 else "amount_claimed" for v in variant]


def _unknown_reference(frame: Frame, rows: IntArray, rng: np.random.Generator, config: SimulationConfig) -> list[str]:
    """A policy or customer id of the right shape that the reference data does not contain."""
    policy = rng.random(len(rows)) < 0.6
    frame["policy"][rows[policy]] = rng.integers(config.n_policies, 10_000_000, int(policy.sum()))
    frame["customer"][rows[~policy]] = rng.integers(config.n_customers, 10_000_000, int((~policy).sum()))
    return ["policy_id" if p else "customer_id" for p in policy]


def _european_number(value: float, rng: np.random.Generator) -> str:
    return f"{value:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def _day_first(value: str, rng: np.random.Generator) -> str:
    return f"{value[8:10]}/{value[5:7]}/{value[:4]}"


CLAIM_EVENTS = EventType(
    name="claim",
    payload=CLAIM_PAYLOAD,
    columns=claim_columns,
    defects=DefectRecipe(
        out_of_range=_out_of_range,
        unknown_reference=_unknown_reference,
        bad_values={
            "amount_claimed": (_european_number, lambda value, rng: "TBD"),
            "incident_date": (_day_first, lambda value, rng: "last week"),
            "reported_at": (lambda value, rng: "yesterday afternoon",),
        },
        missing_fields=(
            "policy_id",
            "customer_id",
            "claim_type",
            "amount_claimed",
            "incident_date",
            "reported_at",
            "status",
        ),
    ),
)
