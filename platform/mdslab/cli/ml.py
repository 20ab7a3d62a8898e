"""Commands of the ML deep dive: train, score, the MLflow UI, and `run ml`."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from typing import Annotated

import typer

from mdslab.cli.context import console, one_line_errors, settings
from mdslab.cli.foreground import run_in_foreground

run_app = typer.Typer(help="Run a deep dive end to end.", no_args_is_help=True)
mlflow_app = typer.Typer(help="MLflow on the platform (PostgreSQL metadata, S3 artifacts).", no_args_is_help=True)


class ModelName(StrEnum):
    FRAUD = "fraud"
    CLAIMS = "claims"


class ScoredModel(StrEnum):
    FRAUD = "fraud"


def _print_training(result: dict[str, object]) -> None:
    metrics = result["metrics"]
    baseline = result["baseline_metrics"]
    assert isinstance(metrics, dict) and isinstance(baseline, dict)
    console.print(
        f"{result['registered_model']} version {result['version']} (run {result['run_id']}): "
        f"ROC AUC {metrics['roc_auc']:.4f}, PR AUC {metrics['pr_auc']:.4f}, ECE {metrics['ece']:.4f}; "
        f"baseline ROC AUC {baseline['roc_auc']:.4f}, PR AUC {baseline['pr_auc']:.4f}",
        highlight=False,
    )
    console.print(str(result["promotion"]), highlight=False)


@one_line_errors
def train(
    model: Annotated[ModelName, typer.Argument(help="Which model to train.")] = ModelName.FRAUD,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train a model from its gold feature table (read through Spark on Ray), track it in MLflow,
    register it, and make it champion only if it beats the champion on the same validation rows.

    fraud: card-transaction fraud from gold.fraud_features; claims: large-loss triage (>= 10,000 USD)
    at first notice of loss from gold.claims_features.
    """
    from mdslab.ml.features import MODEL_SPECS
    from mdslab.ml.train import train_from_lake
    from mdslab.tracking import configure
    from mdslab.workloads.lake import lakehouse

    current = settings()
    with console.status("starting") as status:
        result = train_from_lake(
            current, lakehouse(current), configure(current), MODEL_SPECS[model.value], on_progress=status.update
        ).as_dict()
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        _print_training(result)


@one_line_errors
def score(
    model: Annotated[ScoredModel, typer.Argument(help="Which model's scores to build.")] = ScoredModel.FRAUD,
) -> None:
    """Score the feature table with the champion into gold (skipped when features and champion are unchanged)."""
    from mdslab.ml.score import score as build
    from mdslab.tracking import configure
    from mdslab.workloads.lake import lakehouse

    current = settings()
    with console.status("scoring"):
        result = build(current, lakehouse(current), configure(current))
    what = "up to date, nothing to do" if result.skipped else f"{result.rows:,} rows -> version {result.version}"
    console.print(
        f"{result.table}: {what} ({result.model} version {result.model_version}, input version {result.input_version})",
        highlight=False,
    )


@mlflow_app.command("ui")
@one_line_errors
def mlflow_ui(
    port: Annotated[int | None, typer.Option(help="Port (default MDSLAB_ML__UI_PORT, 5000).")] = None,
) -> None:
    """Start the MLflow UI against the platform's tracking database and artifact store (Ctrl-C stops)."""
    from mdslab.tracking import artifact_environment, artifact_root, configure, tracking_uri

    current = settings()
    configure(current)
    bind = port or current.ml.ui_port
    console.print(f"MLflow UI on http://127.0.0.1:{bind} (runs in PostgreSQL, artifacts in {artifact_root(current)})")
    command = [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri(current, with_password=False),
        "--default-artifact-root", artifact_root(current), "--host", "127.0.0.1", "--port", str(bind),
    ]  # fmt: skip
    # the password reaches the UI's database client through the environment, not its command line (ps)
    password = {"PGPASSWORD": current.postgres.password.get_secret_value()}
    run_in_foreground(command, env=os.environ | artifact_environment(current) | password)


@run_app.command("ml")
@one_line_errors
def run_ml(
    rows: Annotated[
        int, typer.Option("--rows", "-n", min=20_000, help="Transactions to simulate if gold is empty.")
    ] = 100_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """The ML deep dive: gold features -> LightGBM + baseline in MLflow -> champion -> batch and online scores.
    Walkthrough: docs/deep-dives/ml.md."""
    from mdslab.cli.services import ensure_services
    from mdslab.ml.deep_dive import run_ml as run

    current = settings()
    with console.status("starting services") as status:
        ensure_services(current, on_step=status.update, quiet=True)
        current = settings()
        report = run(current, rows=rows, on_progress=status.update)
    summary = report.as_dict()
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    _print_training(summary["train"])
    scored = summary["score"]
    console.print(
        f"{scored['table']}: {scored['rows']:,} rows scored by version {scored['model_version']}"
        + (" (already up to date)" if scored["skipped"] else ""),
        highlight=False,
    )
    console.print(
        f"online: the champion scores the latest transaction at {report.example_score:.4f} "
        "(POST /v1/models/fraud/predict on `mdslab serve` does the same). Look at the runs: `mdslab mlflow ui`.",
        highlight=False,
    )
