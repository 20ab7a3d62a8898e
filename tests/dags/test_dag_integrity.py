"""Every DAG in dags/ imports cleanly and follows the house rules: no cycles, tags, an owner, docs on
every task, retries and timeouts, the gate before the consumers, Assets on the gold tables."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mdslab.orchestration.airflow import DAG_ID, dags_folder
from mdslab.settings import load_settings
from mdslab.workloads.lake import lakehouse

EXPECTED_DAGS = {DAG_ID, "fraud_model_training"}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The DAG folder parsed the way Airflow's DAG processor parses it, with a throwaway AIRFLOW_HOME."""
    home = tmp_path_factory.mktemp("airflow-home")
    saved = {key: os.environ.get(key) for key in ("AIRFLOW_HOME", "AIRFLOW__CORE__LOAD_EXAMPLES")}
    os.environ.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    try:
        from airflow.dag_processing.dagbag import DagBag

        yield DagBag(dag_folder=str(dags_folder()))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_every_dag_file_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED_DAGS


def test_only_dag_files_are_parsed(dagbag: Any) -> None:
    parsed = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    assert parsed == {"financial_data_lake_pipeline.py", "fraud_model_training.py"}


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_dag_has_no_cycles_tags_owner_and_docs(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    dag.check_cycle()  # raises on a cycle
    assert dag.tags and "mdslab" in dag.tags
    assert dag.doc_md and dag.description
    assert dag.catchup is False and dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.owner not in ("", "airflow"), task.task_id
        assert task.doc_md, f"{task.task_id} has no doc"
        assert task.execution_timeout is not None, task.task_id
        assert task.retries == RETRIES[dag_id].get(task.task_id, RETRIES[dag_id]["*"]), task.task_id


# The retries each DAG configures ("*": its default_args); Airflow's own default is 0, which a
# `retries >= 0` check could not tell from a forgotten setting.
RETRIES = {
    DAG_ID: {"*": 2, "ensure_services": 3, "quality_gate": 0},
    "fraud_model_training": {"*": 1},
}


def test_the_pipeline_runs_its_steps_in_order_and_gates_the_consumers(dagbag: Any) -> None:
    dag = dagbag.dags[DAG_ID]
    chain = [
        "ensure_services",
        "send_simulated_events",
        "consume_stream",
        "extract_case_files",
        "load_reference",
        "build_silver",
        "build_gold",
        "quality_gate",
    ]
    for upstream, downstream in itertools.pairwise(chain):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert dag.get_task("quality_gate").downstream_task_ids == {"score_fraud", "index_rag"}
    assert dag.get_task("quality_gate").retries == 0  # bad data does not heal by retrying
    assert dag.get_task("consume_stream").trigger_rule == "none_failed"  # runs when the simulator is skipped


def test_gold_assets_are_published_by_the_gate_and_schedule_training(dagbag: Any) -> None:
    lake = lakehouse(load_settings())
    gate = dagbag.dags[DAG_ID].get_task("quality_gate")
    published = {asset.name: asset.uri for asset in gate.outlets}
    assert set(published) == {"gold.daily_spend", "gold.fraud_features", "gold.claims_monthly", "gold.claims_features"}
    assert all(uri == lake.uri(name) for name, uri in published.items())
    training = dagbag.dags["fraud_model_training"]
    condition = training.timetable.asset_condition
    assert [(a.name, a.uri) for a in condition.objects] == [("gold.fraud_features", lake.uri("gold.fraud_features"))]


def test_params_have_defaults_and_descriptions(dagbag: Any) -> None:
    params = dagbag.dags[DAG_ID].params
    assert params["simulate_rows"] == 0 and params["max_quarantine_share"] == 0.05
    for name in params:
        assert params.get_param(name).description, name
