"""No feature leaks the future: a signal planted only *after* each fraud (the same customer's huge
online purchase 30 seconds later) must not change a single training feature nor the model's scores,
while the same signal, leaked through a deliberately forward-looking feature, makes the model nearly
perfect (so the test can fail). Gold is built by the pipeline's own SQL, on DuckDB."""

from __future__ import annotations

import datetime as dt
import uuid

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sklearn.metrics import roc_auc_score

from mdslab.ml.features import FRAUD, ModelSpec, TrainingFrame
from mdslab.ml.train import holdout_scores
from mdslab.workloads.simulator import SimulatedData, SimulationConfig, simulate

from .test_gold_rules import features
from .test_silver_rules import silver_transactions


@pytest.fixture(scope="module")
def data() -> SimulatedData:
    return simulate(SimulationConfig(transactions=30_000, seed=21))


@pytest.fixture(scope="module")
def silver(data: SimulatedData) -> pa.Table:
    return silver_transactions(data)["silver.transactions"]


def planted_after_fraud(silver: pa.Table, data: SimulatedData) -> pa.Table:
    """For every fraud, the same customer's 40,000 USD online purchase at a new merchant, 30 s later."""
    frauds = set(data.fraud_labels.filter(data.fraud_labels.column("is_fraud")).column("event_id").to_pylist())
    rows = silver.filter(pc.is_in(silver.column("event_id"), pa.array(sorted(frauds))))
    n = rows.num_rows
    later = pc.add(rows.column("event_time"), pa.scalar(dt.timedelta(seconds=30)))
    replaced = {
        "event_id": pa.array([str(uuid.uuid4()) for _ in range(n)]),
        "event_time": later,
        "amount_usd": pa.array([40_000.0] * n),
        "channel": pa.array(["online"] * n),
        "merchant_id": pa.array(["M999999"] * n),
    }
    for name, values in replaced.items():
        rows = rows.set_column(rows.schema.get_field_index(name), name, values.cast(rows.schema.field(name).type))
    return rows


def frame(gold: pa.Table, spec: ModelSpec = FRAUD) -> TrainingFrame:
    labelled = gold.filter(pc.is_valid(gold.column(spec.label))).to_pandas()
    labelled = labelled.sort_values([spec.time_column, spec.key], kind="stable").reset_index(drop=True)
    labelled[spec.label] = labelled[spec.label].astype(bool)
    return TrainingFrame(spec, labelled, 0)


def before_any_plant(rows: pd.DataFrame, planted: pa.Table) -> pd.Series:
    """Rows of customers whose planted purchase (if any) is not earlier than the row: for them the
    plant is in the future, so no point-in-time feature may change."""
    first_plant = planted.to_pandas().groupby("customer_id")["event_time"].min()
    plant_time = rows["customer_id"].map(first_plant)
    return plant_time.isna() | (rows["event_time"] <= plant_time)


LEAKY_SQL = (
    "SELECT event_id, max(amount_usd) OVER (PARTITION BY customer_id ORDER BY event_time "
    "RANGE BETWEEN INTERVAL 1 SECOND FOLLOWING AND INTERVAL 5 MINUTES FOLLOWING) AS next_5m_max FROM events"
)


def with_leaky_feature(training: TrainingFrame, events: pa.Table) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("events", events)
    leaky = con.execute(LEAKY_SQL).to_arrow_table()
    return training.frame.merge(leaky.to_pandas(), on="event_id", how="left")


def test_a_future_only_signal_changes_no_training_feature(silver: pa.Table, data: SimulatedData) -> None:
    planted = planted_after_fraud(silver, data)
    clean = frame(features(silver, data)).frame.set_index("event_id").sort_index()
    dirty = frame(features(pa.concat_tables([silver, planted]), data)).frame.set_index("event_id").sort_index()
    assert list(dirty.index) == list(clean.index)  # planted rows carry no label: not training rows
    checked = before_any_plant(dirty.reset_index(), planted).to_numpy()
    frauds_checked = int((dirty[FRAUD.label].to_numpy() & checked).sum())
    assert frauds_checked >= 50, "the plant must sit right after frauds the model learns from"
    # floats to 1e-3: window sums may be added in another order, and ROUND(x, 4) then flips a last digit
    pd.testing.assert_frame_equal(
        dirty[checked][FRAUD.features], clean[checked][FRAUD.features], check_exact=False, rtol=0, atol=1e-3
    )


def test_the_check_catches_a_forward_looking_feature(silver: pa.Table, data: SimulatedData) -> None:
    """The control: a feature that looks 5 minutes ahead changes on exactly those rows, and a model
    given it finds the frauds almost perfectly."""
    planted = planted_after_fraud(silver, data)
    with_future = pa.concat_tables([silver, planted])
    clean = with_leaky_feature(frame(features(silver, data)), silver).set_index("event_id").sort_index()
    training = frame(features(with_future, data))
    dirty = with_leaky_feature(training, with_future).set_index("event_id").sort_index()
    checked = before_any_plant(dirty.reset_index(), planted).to_numpy()
    frauds = dirty[FRAUD.label].to_numpy() & checked
    changed = ~np.isclose(dirty["next_5m_max"].fillna(-1), clean["next_5m_max"].fillna(-1))
    assert changed[frauds].mean() > 0.9
    spec = ModelSpec(**{**FRAUD.__dict__, "numeric": (*FRAUD.numeric, "next_5m_max")})
    y, scores = holdout_scores(TrainingFrame(spec, with_leaky_feature(training, with_future), 0))
    assert roc_auc_score(y, scores) > 0.99
    y_clean, scores_clean = holdout_scores(frame(features(silver, data)))
    assert roc_auc_score(y_clean, scores_clean) < roc_auc_score(y, scores)
