"""What to simulate: sizes, seed, time window, and how much of the stream is broken on purpose.

Everything random is drawn from generators derived from ``seed`` and a stream name, never from global
state or the clock, so one configuration always produces the same bytes and each part of the
simulation (customers, transactions, claims...) stays stable when another part changes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np

MAX_TRANSACTIONS = 50_000_000  # keeps every Arrow string column under 2 GiB (32-bit offsets)
MAX_CUSTOMERS = 5_000_000  # ids are 'C' + 7 digits, and unknown references need free ids above
MAX_MERCHANTS = 500_000  # ids are 'M' + 6 digits
MAX_POLICIES = 5_000_000  # ids are 'P' + 7 digits
MAX_CLAIM_NUMBER = 99_999_999  # ids are 'CL' + 8 digits


class DefectKind(StrEnum):
    """Why a raw event is unusable; the pipeline's quarantine reasons are checked against these."""

    BAD_TYPE = "bad_type"
    MISSING_FIELD = "missing_field"
    OUT_OF_RANGE = "out_of_range"
    DUPLICATE = "duplicate"
    UNKNOWN_REFERENCE = "unknown_reference"
    MALFORMED_JSON = "malformed_json"


@dataclass(frozen=True)
class DefectMix:
    """Relative weights of the defect kinds among the invalid events (normalised, need not sum to 1)."""

    bad_type: float = 0.2
    missing_field: float = 0.2
    out_of_range: float = 0.2
    duplicate: float = 0.15
    unknown_reference: float = 0.15
    malformed_json: float = 0.1

    def __post_init__(self) -> None:
        weights = self.weights()
        if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"DefectMix weights must be >= 0 with a positive sum, got {weights}")

    def weights(self) -> dict[DefectKind, float]:
        return {kind: float(getattr(self, kind.value)) for kind in DefectKind}


@dataclass(frozen=True)
class WorldSpec:
    """The simulated world a lab keeps: who the customers, merchants and policies are.

    It is fixed by a lab's first simulation and handed to every later one, so that a continuation
    sends new events about the *same* world instead of redrawing (and so silently rewriting) its
    reference data. ``start`` and ``days`` are the first window's, which the policy terms hang on.
    """

    seed: int
    start: datetime
    days: int
    customers: int
    merchants: int
    policies: int

    def rng(self, stream: str) -> np.random.Generator:
        """A generator for one part of the world, independent of which run asks for it."""
        return np.random.default_rng([self.seed, zlib.crc32(stream.encode())])


@dataclass(frozen=True)
class SimulationConfig:
    """Sizes and knobs of one simulation run.

    ``transactions`` is the number of raw transaction events (defects included). Reference-data sizes
    default to ratios of it with floors and caps, so that small runs still have enough cities and
    merchants and large runs keep a realistic number of transactions per customer.
    """

    transactions: int = 50_000
    seed: int = 42
    start: datetime = datetime(2026, 10, 1, tzinfo=UTC)  # fixed anchor: same config => same bytes
    days: int = 30
    invalid_share: float = 0.02
    fraud_share: float = 0.01
    claims_per_1k_transactions: float = 20.0
    defect_mix: DefectMix = field(default_factory=DefectMix)
    customers: int | None = None
    merchants: int | None = None
    policies: int | None = None
    run: int = 0
    world_spec: WorldSpec | None = None
    first_claim: int = 1  # claims are numbered on from the earlier runs' (claim ids stay unique in a lab)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("SimulationConfig.start must be timezone-aware, e.g. datetime(..., tzinfo=UTC)")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        checks = [
            (1_000 <= self.transactions <= MAX_TRANSACTIONS, f"transactions in [1000, {MAX_TRANSACTIONS}]"),
            (3 <= self.days <= 300, "days in [3, 300] (policies are annual and must cover the window)"),
            (0 <= self.invalid_share <= 0.5, "invalid_share in [0, 0.5]"),
            (0 <= self.fraud_share <= 0.2, "fraud_share in [0, 0.2]"),
            (0 <= self.claims_per_1k_transactions <= 1_000, "claims_per_1k_transactions in [0, 1000]"),
            (100 <= self.n_customers <= MAX_CUSTOMERS, f"customers in [100, {MAX_CUSTOMERS}]"),
            (150 <= self.n_merchants <= MAX_MERCHANTS, f"merchants in [150, {MAX_MERCHANTS}]"),
            (50 <= self.n_policies <= MAX_POLICIES, f"policies in [50, {MAX_POLICIES}]"),
            (self.run >= 0, "run >= 0"),
            (self.run == 0 or self.world_spec is not None, "a world_spec for a continuation (run > 0)"),
            (1 <= self.first_claim <= MAX_CLAIM_NUMBER - self.n_claims, f"claim numbers within 1..{MAX_CLAIM_NUMBER}"),
        ]
        failed = [rule for ok, rule in checks if not ok]
        if failed:
            raise ValueError(f"invalid SimulationConfig: expected {'; '.join(failed)}")

    @property
    def world(self) -> WorldSpec:
        """The world this run's events happen in: the given one, or this run's own (a first run)."""
        if self.world_spec is not None:
            return self.world_spec
        return WorldSpec(self.seed, self.start, self.days, self.n_customers, self.n_merchants, self.n_policies)

    @property
    def n_customers(self) -> int:
        if self.world_spec is not None:
            return self.world_spec.customers
        return self.customers if self.customers is not None else _clamp(self.transactions // 40, 200, 250_000)

    @property
    def n_merchants(self) -> int:
        if self.world_spec is not None:
            return self.world_spec.merchants
        return self.merchants if self.merchants is not None else _clamp(self.transactions // 100, 250, 50_000)

    @property
    def n_policies(self) -> int:
        if self.world_spec is not None:
            return self.world_spec.policies
        return self.policies if self.policies is not None else round(self.n_customers * 0.9)

    @property
    def n_claims(self) -> int:
        return round(self.transactions * self.claims_per_1k_transactions / 1_000)

    def rng(self, stream: str) -> np.random.Generator:
        """A generator for one named part of this run's events, independent of the other parts; a
        continuation (``run`` > 0) draws new ones, so its event ids and times are its own."""
        entropy = [self.seed, zlib.crc32(stream.encode())]
        return np.random.default_rng([*entropy, self.run] if self.run else entropy)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
