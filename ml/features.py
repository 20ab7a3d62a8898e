"""Training frames from curated tables at a pinned table version, read through Spark on Ray (``mdslab
train``) or, for a table that fits in memory, with delta-rs in the process (notebooks): the same rows.

Gold feature tables are already point-in-time correct (each row's features use only the same
customer's strictly earlier events), so a frame is a selection: labelled rows, the model's columns,
and the event time used to split train from validation by time, never at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mdslab.errors import MdslabError
from mdslab.lakehouse import Lakehouse
from mdslab.workloads.pipeline.step_runtime import SparkProvider


@dataclass(frozen=True)
class ModelSpec:
    """What a model learns from: a table, its label, key and time columns, and the features."""

    name: str
    table: str
    key: str
    time_column: str
    label: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    description: str

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


FRAUD = ModelSpec(
    name="fraud",
    table="gold.fraud_features",
    key="event_id",
    time_column="event_time",
    label="label_is_fraud",
    numeric=(
        "amount_usd",
        "local_hour",
        "distance_from_home_km",
        "txn_count_1h",
        "txn_count_24h",
        "small_online_count_1h",
        "distinct_merchants_24h",
        "avg_amount_24h",
        "avg_amount_30d",
        "amount_to_avg_30d",
        "seconds_since_prev",
        "km_from_prev_located",
        "is_new_merchant",
    ),
    categorical=("merchant_category", "channel"),
    description="Card-transaction fraud: chargeback / investigation outcome from point-in-time features.",
)


CLAIMS = ModelSpec(
    name="claims",
    table="gold.claims_features",
    key="event_id",
    time_column="reported_at",
    label="label_large_loss",
    numeric=(
        "report_lag_days",
        "coverage_limit_usd",
        "deductible_usd",
        "annual_premium_usd",
        "prior_claims_policy_365d",
        "prior_claims_customer_365d",
        "prior_large_losses_customer",
    ),
    categorical=("claim_type", "product", "region", "customer_segment"),
    description="Large-loss triage at first notice of loss: will the claim reach 10,000 USD?",
)
MODEL_SPECS = {spec.name: spec for spec in (FRAUD, CLAIMS)}


@dataclass(frozen=True)
class TrainingFrame:
    spec: ModelSpec
    frame: pd.DataFrame  # key, time, label, features; sorted by time
    table_version: int

    def split(self, validation_share: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Train on the earlier events, validate on the latest ``validation_share`` of them (by time)."""
        cut = self.frame[self.spec.time_column].quantile(1 - validation_share)
        later = self.frame[self.spec.time_column] >= cut
        return self.frame[~later], self.frame[later]


class NotTrainableError(MdslabError, ValueError):
    """The feature table cannot train the model: not published yet, or too few labelled positives."""


def check_trainable(data: TrainingFrame) -> None:
    """Both the training and the validation rows need both classes."""
    spec = data.spec
    train_rows, valid_rows = data.split()
    if train_rows[spec.label].nunique() < 2 or valid_rows[spec.label].nunique() < 2:
        positives = [int(rows[spec.label].astype(bool).sum()) for rows in (train_rows, valid_rows)]
        raise NotTrainableError(
            f"{spec.table}@{data.table_version} has too few labelled positives to train {spec.name} "
            f"({len(data.frame):,} labelled rows; positives: {positives[0]:,} to train on, {positives[1]:,} to "
            "validate on, both need some): simulate more rows (`mdslab simulate`, then `mdslab pipeline run`)"
        )


def load_frame(lake: Lakehouse, spark: SparkProvider, spec: ModelSpec, *, version: int | None = None) -> TrainingFrame:
    """The labelled rows of ``spec.table`` at ``version`` (default: the published one), selected in Spark."""
    from mdslab.compute.exchange import delta_to_spark, release_spark_input, spark_to_arrow

    pinned = _pinned_version(lake, spec, version)
    # the labels alone, read in this process: too little data is refused before a Spark session starts
    labels = lake.read_table(
        spec.table, version=pinned, columns=[spec.time_column, spec.label], filters=pc.field(spec.label).is_valid()
    )
    check_trainable(TrainingFrame(spec, labels.to_pandas(), pinned))
    df = delta_to_spark(spark.get(), lake.uri(spec.table), storage_options=lake.storage_options, version=pinned)
    try:
        selected = df.where(df[spec.label].isNotNull()).select(*_columns(spec))
        reader = spark_to_arrow(selected)
        table = pa.Table.from_batches(list(reader), schema=reader.schema)
    finally:
        release_spark_input(df)
    return _training_frame(spec, table, pinned)


def read_frame(lake: Lakehouse, spec: ModelSpec, *, version: int | None = None) -> TrainingFrame:
    """The same rows as :func:`load_frame`, read in this process with delta-rs, for a table that fits in
    memory (a notebook on the lab): there a Spark session's start is most of the time a read takes."""
    pinned = _pinned_version(lake, spec, version)
    table = lake.read_table(spec.table, version=pinned, columns=_columns(spec), filters=pc.field(spec.label).is_valid())
    data = _training_frame(spec, table, pinned)
    check_trainable(data)
    return data


def _pinned_version(lake: Lakehouse, spec: ModelSpec, version: int | None) -> int:
    pinned = version if version is not None else lake.current_version(spec.table)
    if pinned is None:
        raise NotTrainableError(
            f"{spec.table} has no published version yet: run `mdslab pipeline run` (or `mdslab demo`); "
            "`mdslab pipeline check` says why a build was not published"
        )
    return pinned


def _columns(spec: ModelSpec) -> list[str]:
    return [spec.key, spec.time_column, spec.label, *spec.features]


def _training_frame(spec: ModelSpec, table: pa.Table, version: int) -> TrainingFrame:
    # by time, then key: the row order (and so LightGBM's row sampling) must not depend on Spark's partitions
    frame = table.to_pandas().sort_values([spec.time_column, spec.key], kind="stable").reset_index(drop=True)
    frame[spec.label] = frame[spec.label].astype(bool)
    return TrainingFrame(spec, frame, version)
