"""One call from a configuration to every table of a simulated month: reference data, raw event
streams with planted defects, fraud labels, and the list of defects for checking the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mdslab.workloads.contracts import FraudPattern
from mdslab.workloads.simulator.claims import CLAIM_EVENTS, claim_frame
from mdslab.workloads.simulator.config import DefectKind, SimulationConfig
from mdslab.workloads.simulator.defects import allocate
from mdslab.workloads.simulator.events import RawEvents, assemble
from mdslab.workloads.simulator.frame import Frame, concat_frames, take
from mdslab.workloads.simulator.fraud import fraud_transactions
from mdslab.workloads.simulator.lookalikes import LOOKALIKE_SHARE, lookalike_transactions
from mdslab.workloads.simulator.sampling import DAY_US, HOUR_US, arrival_order
from mdslab.workloads.simulator.transactions import TRANSACTION_EVENTS, legit_transactions
from mdslab.workloads.simulator.world import World, build_world

PATTERNS: tuple[FraudPattern, ...] = tuple(FraudPattern)
CHARGEBACK_WINDOW_DAYS = 60  # a legitimate transaction is confirmed once no dispute came in this long
UTC_MICROS = pa.timestamp("us", tz="UTC")
FRAUD_LABELS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("is_fraud", pa.bool_(), nullable=False),
        pa.field("fraud_pattern", pa.string()),
        pa.field("reported_at", UTC_MICROS, nullable=False),
    ]
)


@dataclass(frozen=True)
class SimulatedData:
    """Every table of one simulation; raw streams are (event_id, payload) as a source would send them."""

    config: SimulationConfig
    customers: pa.Table
    merchants: pa.Table
    policies: pa.Table
    transactions: pa.Table
    claims: pa.Table
    fraud_labels: pa.Table
    defects: pa.Table

    def reference_tables(self) -> dict[str, pa.Table]:
        """The master data as the source system holds it after this run (by reference table name):
        what a feed upserts before the events that name it."""
        return {"customers": self.customers, "merchants": self.merchants, "policies": self.policies}


def simulate(config: SimulationConfig) -> SimulatedData:
    """Simulate ``config.days`` days of card transactions and insurance claims.

    Deterministic: the same configuration yields byte-identical tables, so a pipeline test can pin
    expected counts, and a bug report can name the seed that shows it.
    """
    world = build_world(config)
    transactions, labels = _transactions(world)
    claims = _claims(world)
    return SimulatedData(
        config=config,
        customers=world.customers.table,
        merchants=world.merchants.table,
        policies=world.policies.table,
        transactions=transactions.raw,
        claims=claims.raw,
        fraud_labels=labels,
        defects=pa.concat_tables([transactions.defects, claims.defects]),
    )


def _transactions(world: World) -> tuple[RawEvents, pa.Table]:
    config = world.config
    counts = allocate(round(config.transactions * config.invalid_share), config.defect_mix)
    n_valid = config.transactions - sum(counts.values())
    n_fraud = round(n_valid * config.fraud_share)
    n_broken = sum(counts.values()) - counts[DefectKind.DUPLICATE]
    rng = config.rng("transactions")
    n_legit = n_valid - n_fraud + n_broken
    n_lookalike = round(n_legit * LOOKALIKE_SHARE)
    everyday = legit_transactions(world, n_legit - n_lookalike, rng)
    lookalikes = lookalike_transactions(world, everyday, n_lookalike, config.rng("lookalikes"))
    fraud = fraud_transactions(world, everyday, n_fraud, config.rng("fraud"))
    frame = concat_frames([everyday, lookalikes, fraud])
    del everyday, lookalikes, fraud
    frame = take(frame, arrival_order(frame["event_us"], rng))
    eligible = (frame["pattern"] < 0) & ~frame["anchor"]
    raw = assemble(
        frame,
        TRANSACTION_EVENTS,
        counts,
        eligible=eligible,
        config=config,
        rng=config.rng("transaction-defects"),
    )
    return raw, _fraud_labels(frame, raw, config.rng("labels"))


def _fraud_labels(frame: Frame, raw: RawEvents, rng: np.random.Generator) -> pa.Table:
    """One label per valid transaction, in the order labels are issued.

    Fraud is confirmed by a chargeback or investigation hours to weeks later; a legitimate transaction
    is confirmed when its chargeback window closes.
    """
    valid = np.flatnonzero(raw.valid)
    pattern = frame["pattern"][valid]
    is_fraud = pattern >= 0
    delay = np.full(len(valid), CHARGEBACK_WINDOW_DAYS * DAY_US, dtype=np.int64)
    investigation = rng.lognormal(np.log(5 * DAY_US), 0.8, int(is_fraud.sum()))
    delay[is_fraud] = np.clip(investigation, 2 * HOUR_US, CHARGEBACK_WINDOW_DAYS * DAY_US).astype(np.int64)
    reported = frame["event_us"][valid] + delay
    order = np.argsort(reported, kind="stable")
    names = np.array([p.value for p in PATTERNS] + [None], dtype=object)
    return pa.table(
        {
            "event_id": raw.event_ids.take(pa.array(valid[order])),
            "is_fraud": pa.array(is_fraud[order]),
            "fraud_pattern": pa.array(names[pattern[order]], type=pa.string()),
            "reported_at": pa.array(reported[order], type=UTC_MICROS),
        },
        schema=FRAUD_LABELS_SCHEMA,
    )


def _claims(world: World) -> RawEvents:
    config = world.config
    counts = allocate(round(config.n_claims * config.invalid_share), config.defect_mix)
    frame = claim_frame(world, config.n_claims - counts[DefectKind.DUPLICATE], config.rng("claims"))
    eligible = np.ones(len(frame["claim"]), dtype=bool)
    return assemble(frame, CLAIM_EVENTS, counts, eligible=eligible, config=config, rng=config.rng("claim-defects"))
