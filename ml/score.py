"""Batch scoring: the champion model over a feature table snapshot, into a gold table.

Idempotent per input: the output commit records the feature table version and the model version it
was built from, and scoring again with both unchanged does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
import pyarrow as pa
from mlflow import MlflowClient

from mdslab.errors import MdslabError
from mdslab.lakehouse import Lakehouse
from mdslab.ml.features import FRAUD, ModelSpec
from mdslab.ml.model_registry import champion_version
from mdslab.settings import Settings
from mdslab.tracking import registered_name, tracking_uri
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.job_runs import lake_input, lake_output, other_input, reported_run

SCORES_TABLES = {"fraud": "gold.fraud_scores"}


class NoChampionError(MdslabError):
    """No model version carries the champion alias yet."""


@dataclass(frozen=True)
class ScoreResult:
    table: str
    version: int
    rows: int
    model: str
    model_version: int
    input_version: int
    skipped: bool


def champion_or_fail(client: MlflowClient, name: str, model: str) -> int:
    version = champion_version(client, name)
    if version is None:
        raise NoChampionError(f"no champion version of {name} yet: run `mdslab train {model}` first")
    return version


def score(settings: Settings, lake: Lakehouse, client: MlflowClient, spec: ModelSpec = FRAUD) -> ScoreResult:
    """Score every row of ``spec.table`` (its published version) with the champion; skip if already done."""
    name = registered_name(settings, spec.name)
    model_version = champion_or_fail(client, name, spec.name)
    table = SCORES_TABLES[spec.name]
    input_version = lake.current_version(spec.table)
    if input_version is None:
        raise MdslabError(f"{spec.table} has no published version yet: run `mdslab pipeline run` first")
    stamp = {"inputs": {spec.table: input_version}, "model": f"{name}/{model_version}"}
    if lake.exists(table):
        last = lake.commit_metadata(table)
        if last.get("inputs") == stamp["inputs"] and last.get("model") == stamp["model"]:
            version = lake.version(table) or 0
            return ScoreResult(table, version, lake.row_count(table), name, model_version, input_version, True)
    with reported_run(settings, f"mdslab.score.{spec.name}", f"Scores {spec.table} with the champion {name}.") as run:
        model = naming.mlflow_model(tracking_uri(settings, with_password=False), name)
        features = naming.lake_table(lake, spec.table)
        run.inputs += [lake_input(lake, spec.table, input_version), other_input(model, str(model_version))]
        result = _score(lake, spec, name, model_version, input_version, table, stamp)
        copied = {column: [(features, column, "DIRECT", "IDENTITY")] for column in (spec.key, "customer_id")}
        copied["event_time"] = [(features, spec.time_column, "DIRECT", "IDENTITY")]
        scored = [(model, naming.MODEL_OUTPUT, "DIRECT", "TRANSFORMATION")]
        scored += [(features, column, "DIRECT", "TRANSFORMATION") for column in spec.features]
        run.outputs.append(
            lake_output(lake, table, result.version, rows=result.rows, columns={**copied, "fraud_score": scored})
        )
        return result


def _score(
    lake: Lakehouse,
    spec: ModelSpec,
    name: str,
    model_version: int,
    input_version: int,
    table: str,
    stamp: Mapping[str, object],
) -> ScoreResult:
    features = lake.read_table(
        spec.table, version=input_version, columns=[spec.key, "customer_id", spec.time_column, *spec.features]
    ).to_pandas()
    model = mlflow.sklearn.load_model(f"models:/{name}/{model_version}")
    probabilities = model.predict_proba(features[spec.features])[:, 1] if len(features) else []
    rows = len(features)
    scores = pa.table(
        {
            "event_id": pa.array(features[spec.key], pa.string()),
            "customer_id": pa.array(features["customer_id"], pa.string()),
            "event_time": pa.array(features[spec.time_column], pa.timestamp("us", tz="UTC")),
            "fraud_score": pa.array(probabilities, pa.float64()),
            "model_name": pa.array([name] * rows, pa.string()),
            "model_version": pa.array([model_version] * rows, pa.int64()),
            "scored_at": pa.array([datetime.now(UTC)] * rows, pa.timestamp("us", tz="UTC")),
        }
    )
    version = lake.write_table(table, scores, mode="overwrite", metadata={"step": f"score_{spec.name}", **stamp})
    return ScoreResult(table, version, rows, name, model_version, input_version, False)
