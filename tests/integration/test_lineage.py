"""OpenLineage run events of real pipeline runs, as the lab's lineage store received them: a run per
step that builds, under the pipeline run, under whatever started it; inputs and outputs at the Delta
versions read and written; column lineage; FAIL with the error; nothing for a run with nothing to do."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mdslab.lakehouse import TableMissingError
from mdslab.settings import Settings
from mdslab.workloads.batch_drop import drop_batch
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.events import RunRef
from mdslab.workloads.lineage.store import read_events
from mdslab.workloads.pipeline.runner import lakehouse, run_pipeline
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import simulate
from tests.conftest import fresh_lake

pytestmark = pytest.mark.integration


def _by_job(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    jobs: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        jobs.setdefault(event["job"]["name"], []).append(event)
    return jobs


def _dataset(events: list[dict[str, Any]], side: str, name: tuple[str, str]) -> dict[str, Any]:
    return next(d for d in events[-1][side] if (d["namespace"], d["name"]) == name)


def test_a_pipeline_run_reports_each_step_it_ran_under_its_parent(services: Settings, spark_provider: Any) -> None:
    settings = fresh_lake(services, "lin")
    lake = lakehouse(settings)
    drop_batch(settings, lake, simulate(next_run(settings.postgres, transactions=1_500, seed=61).config))
    airflow_task = RunRef("airflow", "financial_data_lake_pipeline.silver", str(uuid.uuid4()))
    report = run_pipeline(settings, spark=spark_provider, lineage_parent=airflow_task)
    assert report.published and report.gate is not None, report.gate_line()

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
