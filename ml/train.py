"""Train a model from a curated table, log everything to MLflow, register it, maybe promote it.

One run logs: the parameters, the exact input table and version, metrics of the model and of the
baseline on the validation period (ROC AUC, PR AUC, Brier, calibration error), the PR curve,
calibration and feature-importance plots, and the model with its signature and an input example.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from sklearn.metrics import average_precision_score

from mdslab.lakehouse import Lakehouse
from mdslab.ml import evaluate, models
from mdslab.ml.features import ModelSpec, TrainingFrame, check_trainable, load_frame
from mdslab.ml.model_registry import PRIMARY_METRIC, Promotion, promote_if_better, register
from mdslab.settings import Settings
from mdslab.tracking import experiment_id, registered_name, tracking_uri
from mdslab.workloads.lake import build_registry
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.job_runs import delta_input, other_output, reported_run
from mdslab.workloads.pipeline.step_runtime import SparkProvider


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    registered_model: str
    version: int
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    promotion: Promotion
    input_table: str
    input_version: int
    train_rows: int
    validation_rows: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "registered_model": self.registered_model,
            "version": self.version,
            "metrics": self.metrics,
            "baseline_metrics": self.baseline_metrics,
            "promoted": self.promotion.promoted,
            "promotion": self.promotion.message,
            "input": {"table": self.input_table, "version": self.input_version},
            "rows": {"train": self.train_rows, "validation": self.validation_rows},
            "seconds": round(self.seconds, 2),
        }


def train(settings: Settings, client: MlflowClient, data: TrainingFrame, *, threads: int = 2) -> TrainResult:
    """Fit both models on the earlier events, evaluate on the later ones, log, register, decide; reported
    as a run that reads the feature table's version and writes the registered model's."""
    spec = data.spec
    description = f"Trains the {spec.name} model on {spec.table}, logs it to MLflow, registers it, maybe promotes it."
    with reported_run(settings, f"mdslab.train.{spec.name}", description) as run:
        table = build_registry().get(spec.table)
        run.inputs.append(delta_input(table, settings.lake, data.table_version))
        result = _fit_log_register(settings, client, data, threads=threads)
        source = naming.delta_table(table, settings.lake)
        run.outputs.append(
            other_output(
                naming.mlflow_model(tracking_uri(settings, with_password=False), result.registered_model),
                version=str(result.version),
                rows=result.train_rows,
                fields=[naming.MODEL_OUTPUT],
                columns={
                    naming.MODEL_OUTPUT: [(source, c, "DIRECT", "TRANSFORMATION") for c in (*spec.features, spec.label)]
                },
            )
        )
        return result


def _log_plots(y_valid: Any, curves: dict[str, Any], model: Any) -> None:
    """The run's plots: precision-recall and calibration of both models, the model's feature importance."""
    importance = evaluate.importance_figure(
        list(model.named_steps["encode"].get_feature_names_out()),
        model.named_steps["model"].booster_.feature_importance(importance_type="gain"),
    )
    for file, figure in (
        ("pr_curve.png", evaluate.pr_curve_figure(y_valid, curves)),
        ("calibration.png", evaluate.calibration_figure(y_valid, curves)),
        ("feature_importance.png", importance),
    ):
        mlflow.log_figure(figure, f"plots/{file}")


def _log_models(model: Any, baseline: Any, example: Any) -> ModelInfo:
    """The model (with its signature and an input example) and the baseline; the model's log info."""
    info: ModelInfo = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(example, model.predict_proba(example)[:, 1]),
        input_example=example,
        skops_trusted_types=models.TRUSTED_TYPES,
        pip_requirements=models.pip_requirements(),
    )
    mlflow.sklearn.log_model(
        baseline,
        name="baseline",
        skops_trusted_types=models.TRUSTED_TYPES,
        pip_requirements=models.pip_requirements(),
    )
    return info


def _fit_log_register(settings: Settings, client: MlflowClient, data: TrainingFrame, *, threads: int) -> TrainResult:
    started = time.perf_counter()
    spec = data.spec
    check_trainable(data)
    train_rows, valid_rows = data.split()
    x_train, y_train = train_rows[spec.features], train_rows[spec.label].to_numpy()
    x_valid, y_valid = valid_rows[spec.features], valid_rows[spec.label].to_numpy()
    name = registered_name(settings, spec.name)
    experiment = experiment_id(client, settings, f"{settings.ml.registry_prefix}{spec.name}")
    with mlflow.start_run(experiment_id=experiment, run_name=f"{spec.name}-{spec.table}@{data.table_version}") as run:
        mlflow.set_tags({"model": spec.name, "input.table": spec.table, "input.version": str(data.table_version)})
        mlflow.log_params(
            {
                **{f"lgbm.{key}": value for key, value in models.LGBM_PARAMS.items()},
                "input_table": spec.table,
                "input_version": data.table_version,
                "features": ",".join(spec.features),
                "split": "time: validation = latest 20% of event times",
                "train_rows": len(train_rows),
                "validation_rows": len(valid_rows),
                "train_until": str(train_rows[spec.time_column].max()),
                "validation_from": str(valid_rows[spec.time_column].min()),
            }
        )
        model = models.gradient_boosting(spec, threads=threads).fit(x_train, y_train)
        baseline = models.baseline(spec).fit(x_train, y_train)
        scores = model.predict_proba(x_valid)[:, 1]
        baseline_scores = baseline.predict_proba(x_valid)[:, 1]
        metrics = evaluate.binary_metrics(y_valid, scores)
        baseline_metrics = evaluate.binary_metrics(y_valid, baseline_scores)
        mlflow.log_metrics(metrics)
        mlflow.log_metrics({f"baseline_{key}": value for key, value in baseline_metrics.items()})
        _log_plots(y_valid, {"LightGBM": scores, "logistic baseline": baseline_scores}, model)
        version = register(client, name, _log_models(model, baseline, x_valid.head(5)))
        promotion = promote_if_better(
            client,
            name,
            version,
            metrics[PRIMARY_METRIC],
            x_valid,
            valid_rows[spec.label],
            lambda y, s: float(average_precision_score(y, s)),
        )
        mlflow.set_tag("promotion", promotion.message)
    return TrainResult(
        run.info.run_id,
        name,
        version,
        metrics,
        baseline_metrics,
        promotion,
        spec.table,
        data.table_version,
        len(train_rows),
        len(valid_rows),
        time.perf_counter() - started,
    )


def holdout_scores(data: TrainingFrame, threads: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validation labels and LightGBM scores without MLflow (for tests and benchmarks)."""
    spec = data.spec
    train_rows, valid_rows = data.split()
    model = models.gradient_boosting(spec, threads=threads).fit(train_rows[spec.features], train_rows[spec.label])
    return valid_rows[spec.label].to_numpy(), model.predict_proba(valid_rows[spec.features])[:, 1]


def train_from_lake(
    settings: Settings,
    lake: Lakehouse,
    client: MlflowClient,
    spec: ModelSpec,
    *,
    spark: SparkProvider | None = None,
    on_progress: Callable[[str], None] = lambda _msg: None,
) -> TrainResult:
    """Read ``spec``'s labelled rows through Spark on Ray, then :func:`train`; the session is closed
    afterwards unless the caller handed one in."""
    provider = spark or SparkProvider(settings)
    try:
        on_progress("reading features through Spark on Ray")
        data = load_frame(lake, provider, spec)
    finally:
        if spark is None:
            provider.close()
    on_progress(f"training on {len(data.frame):,} labelled rows")
    return train(settings, client, data)
