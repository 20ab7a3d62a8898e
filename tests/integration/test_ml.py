"""The ML deep dive on real services: features from gold through Spark on Ray, LightGBM and a
baseline tracked in MLflow (PostgreSQL + S3), registration and the champion rule, batch scoring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient

from mdslab.lakehouse import Lakehouse
from mdslab.ml.features import FRAUD, TrainingFrame, load_frame, read_frame
from mdslab.ml.model_registry import CHAMPION, champion_version, promote_if_better
from mdslab.ml.train import TrainResult, train
from mdslab.settings import Settings
from mdslab.tracking import configure
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.lineage.store import read_events
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.simulator import SimulationConfig, simulate
from tests.conftest import free_port, fresh_lake

pytestmark = pytest.mark.integration
ROWS = 40_000


@dataclass
class Trained:
    settings: Settings
    lake: Lakehouse
    client: MlflowClient
    data: TrainingFrame
    first: TrainResult


@pytest.fixture(scope="module")
def trained(services: Settings, spark_provider: Any) -> Trained:
    base = fresh_lake(services, "m")
    tag = base.postgres.database
    settings = base.model_copy(
        update={"ml": services.ml.model_copy(update={"registry_prefix": f"{tag}-", "artifact_bucket": f"{tag}-mlflow"})}
    )
    lake = lakehouse(settings)
    drop_batch(settings, lake, simulate(SimulationConfig(transactions=ROWS, seed=19)))
    run_pipeline(
        settings,
        spark=spark_provider,
        steps=["reference", "silver_transactions", "gold_fraud_features", "silver_claims", "gold_claims_features"],
    )
    client = configure(settings)
    data = load_frame(lake, spark_provider, FRAUD)
    return Trained(settings, lake, client, data, train(settings, client, data))


def _latest_version(trained: Trained) -> int:
    name = trained.first.registered_model
    return max(int(v.version) for v in trained.client.search_model_versions(f"name='{name}'"))


def _copy_of_first(trained: Trained) -> int:
    """A new version of the registered model holding the first run's model: a candidate of known quality
    made without training (and whatever versions earlier tests of the module added)."""
    first = trained.client.get_model_version(trained.first.registered_model, str(trained.first.version))
    copy = trained.client.create_model_version(first.name, first.source, run_id=first.run_id)
    return int(copy.version)


def test_training_frame_is_labelled_and_split_by_time(trained: Trained) -> None:
    frame = trained.data.frame
    assert trained.data.table_version == trained.lake.version("gold.fraud_features")
    assert len(frame) == trained.lake.row_count("gold.fraud_features")
    early, late = trained.data.split()
    assert early["event_time"].max() <= late["event_time"].min()
    assert 0.15 < len(late) / len(frame) < 0.25
    # the notebooks' read (delta-rs in the process) gives the same frame as Spark's, row for row
    pd.testing.assert_frame_equal(read_frame(trained.lake, FRAUD).frame, frame)


def test_fraud_model_recovers_the_planted_patterns(trained: Trained) -> None:
    metrics = trained.first.metrics
    assert metrics["roc_auc"] >= 0.85
    assert metrics["pr_auc"] > trained.first.baseline_metrics["pr_auc"]
    assert metrics["positives"] >= 30


def test_the_run_holds_params_metrics_plots_model_and_input_version(trained: Trained) -> None:
    run = trained.client.get_run(trained.first.run_id)
    assert run.data.params["input_table"] == "gold.fraud_features"
    assert run.data.params["input_version"] == str(trained.data.table_version)
    assert {"roc_auc", "pr_auc", "brier", "ece", "baseline_pr_auc"} <= set(run.data.metrics)
    plots = {item.path for item in trained.client.list_artifacts(trained.first.run_id, "plots")}
    assert plots == {"plots/pr_curve.png", "plots/calibration.png", "plots/feature_importance.png"}
    version = trained.client.get_model_version(trained.first.registered_model, str(trained.first.version))
    assert version.run_id == trained.first.run_id
    import mlflow

    model_info = mlflow.models.get_model_info(f"models:/{trained.first.registered_model}/{trained.first.version}")
    assert model_info.signature is not None
    assert set(model_info.signature.inputs.input_names()) == set(FRAUD.features)


def test_the_first_model_is_champion_and_an_equal_one_does_not_take_over(trained: Trained) -> None:
    name = trained.first.registered_model
    assert trained.first.promotion.promoted
    assert champion_version(trained.client, name) == trained.first.version
    latest = _latest_version(trained)
    again = train(trained.settings, trained.client, trained.data)  # same data and seed: same quality
    assert again.version == latest + 1
    assert not again.promotion.promoted
    assert "does not beat" in again.promotion.message
    assert champion_version(trained.client, name) == trained.first.version


def test_a_better_model_takes_the_alias(trained: Trained) -> None:
    name = trained.first.registered_model
    champion = champion_version(trained.client, name)
    assert champion is not None
    _, valid = trained.data.split()
    labels = valid[FRAUD.label]
    candidate = _copy_of_first(trained)
    try:
        decision = promote_if_better(
            trained.client, name, candidate, 1.0, valid[FRAUD.features], labels, lambda y, s: 0.0
        )
        assert decision.promoted and decision.champion_version == champion
        assert int(trained.client.get_model_version_by_alias(name, CHAMPION).version) == candidate
    finally:
        trained.client.set_registered_model_alias(name, CHAMPION, str(champion))  # restore for the other tests


def test_scoring_writes_every_row_once_per_input_and_champion(trained: Trained) -> None:
    from mdslab.ml.score import score

    name = trained.first.registered_model
    champion = champion_version(trained.client, name)
    candidate = _copy_of_first(trained)  # a champion no earlier test scored with (the deep dive scores too)
    trained.client.set_registered_model_alias(name, CHAMPION, str(candidate))
    try:
        first = score(trained.settings, trained.lake, trained.client)
        assert not first.skipped
        assert first.rows == trained.lake.row_count("gold.fraud_features")
        assert first.model_version == candidate
        again = score(trained.settings, trained.lake, trained.client)
        assert again.skipped and again.version == first.version
    finally:
        trained.client.set_registered_model_alias(name, CHAMPION, str(champion))
    scores = trained.lake.read_table("gold.fraud_scores").to_pandas()
    assert scores["event_id"].is_unique and scores["fraud_score"].between(0, 1).all()
    labelled = scores.merge(trained.data.frame[["event_id", "label_is_fraud"]], on="event_id")
    by_label = labelled.groupby("label_is_fraud")["fraud_score"].mean()
    assert by_label[True] > 5 * by_label[False]


def test_predict_endpoint_serves_the_champion_and_follows_the_alias(trained: Trained) -> None:
    from fastapi.testclient import TestClient

    from mdslab.api.app import create_app
    from mdslab.ml.serving import ChampionCache

    name = trained.first.registered_model
    versions = sorted(int(v.version) for v in trained.client.search_model_versions(f"name='{name}'"))
    if len(versions) < 2:
        versions.append(train(trained.settings, trained.client, trained.data).version)
    champion = champion_version(trained.client, name)
    other = next(v for v in versions if v != champion)
    row = trained.data.frame[FRAUD.features].iloc[-1].to_dict()
    row = {key: (None if value != value else value) for key, value in row.items()}  # NaN -> null
    key = {"X-API-Key": trained.settings.api.api_key.get_secret_value()}
    app = create_app(trained.settings)
    app.state.fraud_champion = ChampionCache(trained.settings, "fraud", refresh_s=0)
    with TestClient(app) as client:
        response = client.post("/v1/models/fraud/predict", json=[row, row], headers=key)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == name and body["version"] == champion
        assert len(body["scores"]) == 2 and 0 <= body["scores"][0] <= 1

        bad = client.post(
            "/v1/models/fraud/predict", json=[row | {"channel": "teleport", "amount_usd": -1}], headers=key
        )
        assert bad.status_code == 422
        assert {tuple(e["loc"][-1:]) for e in bad.json()["detail"]} == {("channel",), ("amount_usd",)}
        assert client.post("/v1/models/fraud/predict", json=[], headers=key).status_code == 422
        assert client.post("/v1/models/fraud/predict", json=[row | {"extra": 1}], headers=key).status_code == 422
        assert client.post("/v1/models/fraud/predict", json=[row]).status_code == 401

        trained.client.set_registered_model_alias(name, CHAMPION, str(other))
        try:
            moved = client.post("/v1/models/fraud/predict", json=[row], headers=key).json()
            assert moved["version"] == other
        finally:
            trained.client.set_registered_model_alias(name, CHAMPION, str(champion))


def test_predict_without_a_champion_is_503(services: Settings) -> None:
    from fastapi.testclient import TestClient

    from mdslab.api.app import create_app

    lonely = services.model_copy(update={"ml": services.ml.model_copy(update={"registry_prefix": "nobody-"})})
    with TestClient(create_app(lonely)) as client:
        row = {"amount_usd": 10.0, "merchant_category": "grocery", "channel": "online", "local_hour": 3}
        row |= {"txn_count_1h": 0, "txn_count_24h": 0, "small_online_count_1h": 0, "distinct_merchants_24h": 0}
        response = client.post(
            "/v1/models/fraud/predict",
            json=[row | {"is_new_merchant": True}],
            headers={"X-API-Key": lonely.api.api_key.get_secret_value()},
        )
    assert response.status_code == 503
    assert "mdslab train fraud" in response.json()["detail"]


def test_the_deep_dive_runs_end_to_end_on_the_lake(trained: Trained, spark_provider: Any) -> None:
    from mdslab.ml.deep_dive import run_ml

    messages: list[str] = []
    report = run_ml(trained.settings, spark=spark_provider, on_progress=messages.append)
    summary = report.as_dict()
    assert summary["train"]["input"] == {"table": "gold.fraud_features", "version": trained.data.table_version}
    assert summary["train"]["metrics"]["roc_auc"] >= 0.85
    assert summary["score"]["rows"] == trained.lake.row_count("gold.fraud_features")
    assert 0.0 <= report.example_score <= 1.0
    assert any("training LightGBM" in message for message in messages)

    # training and scoring are lineage runs: features -> the registered model -> the scores
    training = read_events(trained.settings.postgres, job="mdslab.train.fraud")[-1]
    assert training["eventType"] == "COMPLETE"
    (model,) = training["outputs"]
    assert model["name"] == f"models/{summary['train']['registered_model']}"
    assert model["facets"]["version"]["datasetVersion"] == str(summary["train"]["version"])
    assert training["inputs"][0]["facets"]["version"]["datasetVersion"] == str(trained.data.table_version)
    scoring = read_events(trained.settings.postgres, job="mdslab.score.fraud")[-1]
    assert scoring["eventType"] == "COMPLETE"
    assert {(d["namespace"], d["name"]) for d in scoring["inputs"]} >= {(model["namespace"], model["name"])}
    (scores,) = scoring["outputs"]
    assert scores["facets"]["version"]["datasetVersion"] == str(trained.lake.version("gold.fraud_scores"))
    fed_by = scores["facets"]["columnLineage"]["fields"]["fraud_score"]["inputFields"]
    assert any(field["name"] == model["name"] for field in fed_by)


def test_the_claims_triage_model_trains_registers_and_learns_something(trained: Trained, spark_provider: Any) -> None:
    from mdslab.ml.features import CLAIMS

    data = load_frame(trained.lake, spark_provider, CLAIMS)
    assert len(data.frame) == trained.lake.row_count("gold.claims_features") > 500
    result = train(trained.settings, trained.client, data)
    assert result.registered_model.endswith("claims") and result.promotion.promoted
    assert result.metrics["roc_auc"] > 0.65  # first-notice facts say a fair amount about the size of a claim
    assert result.metrics["positives"] >= 15
    run = trained.client.get_run(result.run_id)
    assert run.data.params["input_table"] == "gold.claims_features"


def test_predict_with_the_model_store_down_is_503_naming_it(trained: Trained) -> None:
    """Was a 500 (urllib3's MaxRetryError from the bucket check) where the route's docs say 503."""
    from fastapi.testclient import TestClient

    from mdslab.api.app import create_app

    closed = free_port()
    s3 = trained.settings.s3.model_copy(update={"endpoint_url": f"http://127.0.0.1:{closed}"})
    settings = trained.settings.model_copy(update={"s3": s3})
    row = trained.data.frame[FRAUD.features].iloc[-1].to_dict()
    row = {key: (None if value != value else value) for key, value in row.items()}
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/v1/models/fraud/predict", json=[row], headers={"X-API-Key": settings.api.api_key.get_secret_value()}
        )
    assert response.status_code == 503, response.text
    assert response.json()["detail"].startswith(f"S3 at 127.0.0.1:{closed} did not answer")
    assert response.headers["retry-after"] == "30"
