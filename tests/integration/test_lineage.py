"""OpenLineage run events of real pipeline runs, as the lab's lineage store received them: a run per
step that builds, under the pipeline run, under whatever started it; inputs and outputs at the Delta
versions read and written; column lineage; FAIL with the error; nothing for a run with nothing to do."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from mdslab.lakehouse import TableMissingError
from mdslab.settings import Settings
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.events import RunRef
from mdslab.workloads.lineage.ingest_runs import api_ingest_run
from mdslab.workloads.lineage.store import read_events
from mdslab.workloads.pipeline.runner import PipelineReport, run_pipeline
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import simulate
from tests.conftest import fresh_lake, invoke_cli
from tests.lineage_asserts import assert_well_formed_runs, parents

pytestmark = pytest.mark.integration


def _by_job(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    jobs: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        jobs.setdefault(event["job"]["name"], []).append(event)
    return jobs


def _dataset(events: list[dict[str, Any]], side: str, name: tuple[str, str]) -> dict[str, Any]:
    return next(d for d in events[-1][side] if (d["namespace"], d["name"]) == name)


AIRFLOW_TASK = RunRef("airflow", "financial_data_lake_pipeline.silver", str(uuid.uuid4()))


@pytest.fixture(scope="module")
def built(services: Settings, spark_provider: Any) -> tuple[Settings, PipelineReport]:
    """One lake built by a pipeline run under an (Airflow) parent, read by the tests below."""
    settings = fresh_lake(services, "lin")
    drop_batch(settings, lakehouse(settings), simulate(next_run(settings.postgres, transactions=1_500, seed=61).config))
    report = run_pipeline(settings, spark=spark_provider, lineage_parent=AIRFLOW_TASK)
    assert report.published and report.gate is not None, report.gate_line()
    return settings, report


def test_a_pipeline_run_reports_each_step_it_ran_under_its_parent(
    built: tuple[Settings, PipelineReport], spark_provider: Any
) -> None:
    settings, report = built
    lake = lakehouse(settings)
    airflow_task = AIRFLOW_TASK
    assert report.gate is not None

    jobs = _by_job(read_events(settings.postgres))
    pipeline = jobs.pop("mdslab.pipeline")
    assert [e["eventType"] for e in pipeline] == ["START", "COMPLETE"]
    assert pipeline[0]["run"]["facets"]["parent"]["run"]["runId"] == airflow_task.run_id
    run_id = pipeline[0]["run"]["runId"]
    gate = jobs.pop("mdslab.quality_gate")
    assert [e["eventType"] for e in gate] == ["START", "COMPLETE"]
    assert gate[0]["run"]["facets"]["parent"]["run"]["runId"] == run_id
    audited = _dataset(gate, "inputs", naming.lake_table(lake, "gold.fraud_features"))
    checks = {a["assertion"]: a["success"] for a in audited["inputFacets"]["dataQualityAssertions"]["assertions"]}
    assert checks == {"present": True, "fresh": True, "unique key": True, "reconciles": True}
    assert audited["facets"]["version"]["datasetVersion"] == str(report.gate.audited["gold.fraud_features"])
    built = {result.step: result for result in report.results if result.mode is not None}
    assert set(jobs) == {f"mdslab.pipeline.{step}" for step in built}
    for step, result in built.items():
        events = jobs[f"mdslab.pipeline.{step}"]
        assert [e["eventType"] for e in events] == ["START", "COMPLETE"], step
        assert len({e["run"]["runId"] for e in events}) == 1
        parent = events[0]["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == run_id and parent["root"]["run"]["runId"] == airflow_task.run_id
        for name, version in result.outputs.items():
            output = _dataset(events, "outputs", naming.lake_table(lake, name))
            assert output["facets"]["version"]["datasetVersion"] == str(version) == str(lake.version(name))
            assert output["outputFacets"]["outputStatistics"]["rowCount"] == result.rows_out[name]
            assert output["facets"]["schema"]["fields"][0]["name"] == lake.spec(name).schema.names[0]

    silver = jobs["mdslab.pipeline.silver_transactions"][-1]
    assert silver["job"]["facets"]["sql"]["dialect"] == "spark" and "FROM" in silver["job"]["facets"]["sql"]["query"]
    assert silver["run"]["facets"]["processing_engine"]["name"] == "spark"
    bronze_input = _dataset([silver], "inputs", naming.lake_table(lake, "bronze.transactions"))
    assert bronze_input["facets"]["version"]["datasetVersion"] == str(lake.version("bronze.transactions"))
    amount = _dataset([silver], "outputs", naming.lake_table(lake, "silver.transactions"))["facets"]["columnLineage"]
    sources = {(f["namespace"], f["name"], f["field"]) for f in amount["fields"]["amount_usd"]["inputFields"]}
    assert (*naming.lake_table(lake, "bronze.transactions"), "payload") in sources
    snapshot = jobs["mdslab.pipeline.reference_customers"][-1]
    assert snapshot["inputs"][0]["namespace"] == f"postgres://{settings.postgres.host}:{settings.postgres.port}"

    stored = len(read_events(settings.postgres))
    run_pipeline(settings, spark=spark_provider)  # nothing new: no run to report
    assert len(read_events(settings.postgres)) == stored


def _cli(settings: Settings, *args: str) -> Any:
    return invoke_cli(settings, *args)


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_read_side_answers_where_a_column_comes_from_and_what_depends_on_it(
    built: tuple[Settings, PipelineReport],
) -> None:
    settings, _ = built
    lake = lakehouse(settings)
    with api_ingest_run(settings):  # a serving of the ingestion API: route -> topic
        pass

    up = _json(_cli(settings, "lineage", "gold.fraud_features.amount_to_avg_30d", "--upstream", "--json"))
    depth = {node["name"]: node["depth"] for node in up["nodes"]}
    assert depth["silver.transactions.amount_usd"] == 1 and depth["bronze.transactions.payload"] == 2
    assert all(edge["type"] == "DIRECT" for edge in up["edges"])  # INDIRECT only with --indirect
    indirect = _json(_cli(settings, "lineage", "gold.fraud_features.amount_to_avg_30d", "--indirect", "--json"))
    assert {"INDIRECT", "DIRECT"} == {edge["type"] for edge in indirect["edges"]}
    arrived = _json(_cli(settings, "lineage", "kafka:transactions.value", "--json"))
    assert [node["name"] for node in arrived["nodes"]] == ["kafka:transactions.value", "api:POST /v1/transactions.body"]

    down = _json(_cli(settings, "lineage", "bronze.customers.home_lat", "--downstream", "--json"))
    assert {"silver.transactions.distance_from_home_km", "gold.fraud_features.distance_from_home_km"} <= {
        node["name"] for node in down["nodes"]
    }
    tables = _cli(settings, "lineage", "silver.transactions", "--downstream", "--depth", "1")
    assert tables.exit_code == 0 and "gold.daily_spend" in tables.output and "gold.fraud_features" in tables.output
    mermaid, dot = (_cli(settings, "lineage", "gold.daily_spend.total_usd", form) for form in ("--mermaid", "--dot"))
    assert mermaid.output.startswith("flowchart LR") and dot.output.startswith("digraph lineage {")
    missing = _cli(settings, "lineage", "gold.fraud_features.amount_to_avg")
    assert missing.exit_code == 1 and "gold.fraud_features has no column 'amount_to_avg'" in missing.output

    runs = _json(_cli(settings, "lineage", "runs", "mdslab.pipeline", "--limit", "100", "--json"))
    features = next(run for run in runs if run["job"] == "mdslab.pipeline.gold_fraud_features")
    assert features["state"] == "COMPLETE" and features["seconds"] >= 0
    assert features["outputs"] == [
        {
            "name": "gold.fraud_features",
            "version": str(lake.version("gold.fraud_features")),
            "rows": lake.row_count("gold.fraud_features"),
        }
    ]
    assert {run["state"] for run in runs} == {"COMPLETE"}
    unknown = _cli(settings, "lineage", "runs", "mdslab.pipe")
    assert unknown.exit_code == 1 and "did you mean mdslab.pipeline" in unknown.output

    shown = _json(_cli(settings, "catalog", "show", "gold.fraud_features", "--json"))
    assert shown["version"] == lake.version("gold.fraud_features") and shown["rows"] == lake.row_count(
        "gold.fraud_features"
    )
    assert shown["last_writer"]["job"] == "mdslab.pipeline.gold_fraud_features"
    assert shown["last_writer"]["run_id"] == features["run_id"]
    assert {check["check"]: check["success"] for check in shown["quality"]} == {
        "present": True,
        "fresh": True,
        "unique key": True,
        "reconciles": True,
    }
    assert shown["upstream"] == ["bronze.fraud_labels", "silver.transactions"] and shown["owner"] == "fraud-analytics"
    tagged = {c["name"]: c["tags"] for c in shown["columns"] if c["tags"]}
    assert tagged == {
        "distance_from_home_km": {"pii.geo": "silver.transactions.distance_from_home_km"},
        "km_from_prev_located": {"pii.geo": "silver.transactions.lat"},
    }
    text = _cli(settings, "catalog", "show", "gold.fraud_features")
    assert text.exit_code == 0 and "last written by: mdslab.pipeline.gold_fraud_features" in text.output


def test_the_api_reads_the_same_catalog_and_lineage(built: tuple[Settings, PipelineReport]) -> None:
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from mdslab.api.app import create_app

    settings, _ = built
    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"api_key": SecretStr("k")})})
    key = {"X-API-Key": "k"}
    with TestClient(create_app(settings)) as client:
        table = client.get("/v1/catalog/gold.daily_spend", headers=key)
        assert table.status_code == 200, table.text
        assert table.json()["last_writer"]["job"] == "mdslab.pipeline.gold_daily_spend"
        graph = client.get("/v1/lineage", params={"node": "gold.daily_spend.total_usd"}, headers=key).json()
        assert ("silver.transactions.amount_usd", "gold.daily_spend.total_usd") in {
            (edge["from"], edge["to"]) for edge in graph["edges"]
        }
        dot = client.get("/v1/lineage", params={"node": "gold.daily_spend", "format": "dot"}, headers=key)
        assert dot.status_code == 200 and dot.text.startswith("digraph lineage {")
        runs = client.get("/v1/lineage/runs", params={"job": "mdslab.quality_gate"}, headers=key).json()
        assert [run["state"] for run in runs] == ["COMPLETE"]
        unknown = client.get("/v1/lineage", params={"node": "gold.daily_spend.nope"}, headers=key)
        assert unknown.status_code == 404 and "has no column 'nope'" in unknown.json()["detail"]


def test_a_step_that_fails_reports_fail_with_its_error(services: Settings) -> None:
    settings = fresh_lake(services, "linfail")
    with pytest.raises(TableMissingError):
        run_pipeline(settings, steps=["gold_daily_spend"])
    jobs = _by_job(read_events(settings.postgres))
    step = jobs["mdslab.pipeline.gold_daily_spend"]
    assert [e["eventType"] for e in step] == ["START", "FAIL"]
    error = step[-1]["run"]["facets"]["errorMessage"]
    assert "needs table silver.transactions" in error["message"] and error["programmingLanguage"] == "PYTHON"
    assert [e["eventType"] for e in jobs["mdslab.pipeline"]] == ["START", "FAIL"]


def test_the_api_keeps_an_event_from_any_producer_once(services: Settings) -> None:
    """An event sent as openlineage-python's HttpTransport sends it (Bearer key) is stored as sent; the
    same event again is not stored twice; one PostgreSQL's JSON cannot hold is a 422, not a 500."""
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from mdslab.api.app import create_app
    from tests.unit.test_lineage_api import PATH, event

    settings = fresh_lake(services, "linapi")
    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"api_key": SecretStr("k")})})
    sent = event(run={"runId": str(uuid.uuid4()), "facets": {"custom": {"_producer": "p", "_schemaURL": "s"}}})
    with TestClient(create_app(settings)) as client:
        bearer = {"Authorization": "Bearer k"}
        first, again = (client.post(PATH, json=sent, headers=bearer) for _ in range(2))
        assert (first.status_code, first.json()) == (201, {"stored": True}), first.text
        assert (again.status_code, again.json()) == (201, {"stored": False}), again.text
        nul = client.post(PATH, json=event(job={"namespace": "spark", "name": "a\u0000b"}), headers=bearer)
        assert nul.status_code == 422 and "cannot be stored" in nul.json()["detail"], nul.text
    (stored,) = read_events(settings.postgres)
    assert stored["run"] == sent["run"] and stored["job"] == sent["job"]


def test_every_stored_event_is_a_well_formed_run_event_and_no_run_is_left_open(
    built: tuple[Settings, PipelineReport],
) -> None:
    """The core of OpenLineage's RunEvent (see tests/lineage_asserts.py) on every event the lab stored for
    a pipeline run (pipeline, steps, gate) and a serving of the ingestion API."""
    settings, _ = built
    with api_ingest_run(settings):
        pass
    events = read_events(settings.postgres)
    runs = assert_well_formed_runs(events)
    assert all(e["producer"].startswith("urn:mdslab:") for e in events)
    assert parents(events) - set(runs) == {AIRFLOW_TASK.run_id}  # every parent is a stored run but the orchestrator's
