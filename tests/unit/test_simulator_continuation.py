"""A continuation run: the same world (reference rows unchanged), a later window, new event and claim ids."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest

from mdslab.workloads.simulator import SimulatedData, SimulationConfig, simulate

FIRST = SimulationConfig(transactions=6_000, seed=5)


def continuation(first: SimulationConfig, *, transactions: int, seed: int, run: int = 1) -> SimulationConfig:
    """What the lab's run log hands the simulator for the run after ``first``."""
    return SimulationConfig(
        transactions=transactions,
        seed=seed,
        start=first.start + timedelta(days=first.days),
        run=run,
        world_spec=first.world,
        first_claim=first.first_claim + first.n_claims,
    )


@pytest.fixture(scope="module")
def runs() -> tuple[SimulatedData, SimulatedData]:
    # another size and another seed: neither may change the world the first run created
    return simulate(FIRST), simulate(continuation(FIRST, transactions=3_000, seed=99))


def _documents(data: SimulatedData, stream: str) -> pd.DataFrame:
    raw = data.transactions if stream == "transactions" else data.claims
    rows = []
    for payload in raw.column("payload").to_pylist():
        try:
            document = json.loads(payload)
        except json.JSONDecodeError:
            continue
        if isinstance(document, dict):
            rows.append(document)
    return pd.DataFrame(rows)


def test_a_continuation_keeps_every_reference_row_byte_for_byte(runs: tuple[SimulatedData, SimulatedData]) -> None:
    first, later = runs
    for name in ("customers", "merchants"):
        assert getattr(first, name).equals(getattr(later, name)), f"{name} were redrawn by the continuation"
    # policies only gain rows: the renewals that began in the new window, after every earlier term
    assert later.policies.slice(0, first.policies.num_rows).equals(first.policies), "a policy term was rewritten"


def test_renewals_are_new_terms_that_follow_the_last_one(runs: tuple[SimulatedData, SimulatedData]) -> None:
    first, later = runs
    before, after = first.policies.to_pandas(), later.policies.to_pandas()
    renewals = after.iloc[len(before) :]
    assert len(renewals) > 0.02 * len(before), "a 30-day continuation renews about 1/12 of the annual policies"
    previous = before.set_index("policy_id").loc[renewals["policy_id"]]
    assert (renewals["start_date"].to_numpy() == (previous["end_date"] + timedelta(days=1)).to_numpy()).all()
    kept = ["customer_id", "product", "region", "currency", "coverage_limit", "deductible"]
    assert (renewals[kept].to_numpy() == previous[kept].to_numpy()).all(), "a renewal changed more than its term"
    assert (renewals["annual_premium"].to_numpy() != previous["annual_premium"].to_numpy()).mean() > 0.9
    window_end = (later.config.start + timedelta(days=later.config.days)).date()
    assert renewals["start_date"].between(later.config.start.date(), window_end, inclusive="left").all()
    assert not after.duplicated(["policy_id", "start_date"]).any()


def test_claims_of_a_later_window_fall_in_a_term_of_their_policy(runs: tuple[SimulatedData, SimulatedData]) -> None:
    _, later = runs
    claims = _documents(later, "claims").dropna(subset=["policy_id", "incident_date"])
    claims = claims[~claims["event_id"].isin(later.defects.column("event_id").to_pylist())]
    terms = later.policies.to_pandas()
    joined = claims.merge(terms, on="policy_id", suffixes=("", "_policy"))
    incident = pd.to_datetime(joined["incident_date"]).dt.date
    covered = joined[(incident >= joined["start_date"]) & (incident <= joined["end_date"])]
    assert covered["event_id"].nunique() == claims["event_id"].nunique(), "a valid claim has no term covering it"
    renewed = set(terms.iloc[len(runs[0].policies) :]["policy_id"])
    in_renewals = covered[covered["policy_id"].isin(renewed) & (covered["start_date"] >= later.config.start.date())]
    assert len(in_renewals) > 0, "no claim of the continuation falls in a renewal term"


def test_a_continuation_sends_new_event_ids_and_new_claim_ids(runs: tuple[SimulatedData, SimulatedData]) -> None:
    first, later = runs
    for stream in ("transactions", "claims"):
        before = set(first.__getattribute__(stream).column("event_id").drop_null().to_pylist())
        after = set(later.__getattribute__(stream).column("event_id").drop_null().to_pylist())
        assert after and not before & after, f"{len(before & after)} {stream} event ids were sent again"
    claims_before = set(_documents(first, "claims")["claim_id"].dropna())
    claims_after = set(_documents(later, "claims")["claim_id"].dropna())
    assert claims_after and not claims_before & claims_after


def test_a_continuation_happens_in_the_next_window(runs: tuple[SimulatedData, SimulatedData]) -> None:
    first, later = runs
    start, end = later.config.start, later.config.start + timedelta(days=later.config.days)
    times = pd.to_datetime(_documents(later, "transactions")["event_time"], utc=True, errors="coerce").dropna()
    inside = ((times >= start) & (times < end)).mean()
    assert inside > 0.99, f"only {inside:.1%} of the continuation's transactions fall in its window"
    first_end = first.config.start + timedelta(days=first.config.days)
    assert times.quantile(0.01) >= first_end, "the continuation overlaps the first run's window"


def test_its_claims_and_transactions_reference_the_same_world(runs: tuple[SimulatedData, SimulatedData]) -> None:
    first, later = runs
    customers = set(first.customers.column("customer_id").to_pylist())
    policies = set(first.policies.column("policy_id").to_pylist())
    documents = _documents(later, "claims")
    known = documents["policy_id"].isin(policies).mean()
    assert known > 0.97  # the rest are planted unknown references
    assert _documents(later, "transactions")["customer_id"].isin(customers).mean() > 0.97


def test_the_same_continuation_is_the_same_bytes() -> None:
    config = continuation(FIRST, transactions=2_000, seed=3)
    assert simulate(config).transactions.equals(simulate(config).transactions)


def test_a_continuation_without_its_world_is_refused() -> None:
    with pytest.raises(ValueError, match="world_spec"):
        SimulationConfig(transactions=2_000, run=1)


def test_policies_renew_so_a_window_years_later_still_has_claims() -> None:
    later = SimulationConfig(
        transactions=2_000, seed=5, start=FIRST.start + timedelta(days=3 * 365), run=36, world_spec=FIRST.world
    )
    data = simulate(later)
    assert data.claims.num_rows > 0
    terms = data.policies.to_pandas().groupby("policy_id")["start_date"].count()
    assert terms.max() == 4, "an annual policy renewed every year has its first term and three renewals"


def test_a_window_after_every_policy_lapsed_is_refused_with_the_reason() -> None:
    from mdslab.workloads.simulator.claims import WorldExhaustedError

    small = SimulationConfig(transactions=2_000, seed=5, customers=100, policies=50)
    far = SimulationConfig(
        transactions=2_000, seed=5, start=small.start + timedelta(days=150 * 365), run=9, world_spec=small.world
    )
    with pytest.raises(WorldExhaustedError, match="every policy has lapsed"):
        simulate(far)
