"""The pipeline under its orchestrators, for real: `airflow dags test` of financial_data_lake_pipeline
(metadata in the test PostgreSQL) and the Prefect flow on the ephemeral API, each run as the `mdslab`
command a user types. Both must leave the same gold tables as the library pipeline (`mdslab stream` +
`mdslab pipeline run`) on the same input, and a failing quality gate must stop what consumes gold."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mdslab.eventbus import EventPublisher
from mdslab.lakehouse import Lakehouse
from mdslab.orchestration.airflow import DAG_ID, latest_run
from mdslab.settings import Settings
from mdslab.workloads.ingestion.consumer import StreamConsumer
from mdslab.workloads.ingestion.events import Topics
from mdslab.workloads.ingestion.sender import KafkaTarget
from mdslab.workloads.ingestion.stream_feed import feed_simulation
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.lineage.store import read_events
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.quality import GOLD_TABLES
from mdslab.workloads.simulator import SimulationConfig, simulate
from tests.conftest import free_port, whole_lab
from tests.lineage_asserts import assert_well_formed_runs, parents

pytestmark = pytest.mark.integration

ROWS, SEED = 3000, 11
# the lab's own runs an orchestrated run with training reports (besides the pipeline's steps)
LAB_JOBS = {
    "mdslab.stream_consumer", "mdslab.pipeline", "mdslab.quality_gate", "mdslab.train.fraud",
    "mdslab.score.fraud", "mdslab.rag.index",
}  # fmt: skip
TRAINING_JOBS = {"mdslab.train.fraud", "mdslab.score.fraud"}
MDSLAB = str(Path(sys.executable).parent / "mdslab")


def _mdslab(settings: Settings, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MDSLAB, *args], env=os.environ | settings.environment(), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def _runs_under(events: list[dict[str, Any]], job: str, parent_job: str) -> list[dict[str, Any]]:
    """The START events of ``job`` runs whose parent is a run of ``parent_job``."""
    return [
        e
        for e in events
        if e["job"]["name"] == job
        and e["eventType"] == "START"
        and e["run"]["facets"].get("parent", {}).get("job", {}).get("name") == parent_job
    ]


def _assert_every_run_reported_to_spec(
    settings: Settings, jobs: set[str], unstarted: frozenset[str] = frozenset()
) -> None:
    """Every event the orchestrated runs left in the lab's store (the orchestrator's own, ingestion, the
    pipeline and its steps, the gate, training, scoring, the index) conforms to the OpenLineage spec of
    the client (tests/lineage_asserts.py); every run started and ended, every parent is a stored run."""
    events = read_events(settings.postgres)
    runs = assert_well_formed_runs(events, unstarted=unstarted)
    assert parents(events) <= set(runs), parents(events) - set(runs)
    assert jobs <= {e["job"]["name"] for e in events}, jobs - {e["job"]["name"] for e in events}


def gold_digest(lake: Lakehouse) -> dict[str, tuple[int, str]]:
    """Rows and a content checksum per gold table: columns in name order, floats rounded to 1e-9
    (Spark may sum in another order), rows sorted, so equal tables give equal digests."""
    digests = {}
    for name in GOLD_TABLES:
        table = lake.read_table(name)
        columns = sorted(table.column_names)
        arrays = [
            pc.round(table.column(c), 9) if pa.types.is_floating(table.column(c).type) else table.column(c)
            for c in columns
        ]
        table = pa.table(arrays, names=columns).sort_by([(c, "ascending") for c in columns])
        digests[name] = (table.num_rows, hashlib.sha256(repr(table.to_pylist()).encode()).hexdigest())
    return digests


@dataclass(frozen=True)
class Baseline:
    digest: dict[str, tuple[int, str]]


def _fed_and_built(settings: Settings, spark_provider: Any) -> Lakehouse:
    """The test simulation sent to Kafka, consumed into bronze and built by the library pipeline."""
    lake = lakehouse(settings)
    publisher = EventPublisher(settings.kafka, client_id="test-simulator")
    target = KafkaTarget(publisher, Topics(settings.kafka.topic_prefix))
    try:
        feed_simulation(settings, lake, simulate(SimulationConfig(transactions=ROWS, seed=SEED)), target)
    finally:
        target.close()
    StreamConsumer(settings, lake).run(until_caught_up=True)
    run_pipeline(settings, spark=spark_provider)
    return lake


@pytest.fixture(scope="module")
def baseline(services: Settings, spark_provider: Any) -> Baseline:
    """What the orchestrated runs must build: the same simulation through the library pipeline."""
    return Baseline(gold_digest(_fed_and_built(whole_lab(services, "ob"), spark_provider)))


def test_the_airflow_dag_builds_the_same_gold_and_its_gate_stops_the_consumers(
    services: Settings, baseline: Baseline
) -> None:
    settings = whole_lab(services, "oa")
    conf = json.dumps({"simulate_rows": ROWS, "seed": SEED})

    first = _mdslab(settings, "airflow", "test", DAG_ID, "--conf", conf)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    run = latest_run(settings, DAG_ID)
    assert run is not None and run.state == "success"
    states = {t.task_id: t.state for t in run.tasks}
    assert states.pop("score_fraud") == "skipped"  # no champion model yet: skipped with the reason
    assert set(states.values()) == {"success"}, states
    assert "no champion version" in first.stdout + first.stderr
    assert gold_digest(lakehouse(settings)) == baseline.digest
    # the OpenLineage provider reported the DAG and task runs where the lab's runs go, and the pipeline
    # run each layer task started names its task run as parent and the DAG run as root
    events = read_events(settings.postgres)
    silver = _runs_under(events, "mdslab.pipeline", f"{DAG_ID}.build_silver")
    assert silver, "no pipeline run under the build_silver task"
    parent = silver[0]["run"]["facets"]["parent"]
    task_states = [e["eventType"] for e in events if e["run"]["runId"] == parent["run"]["runId"]]
    assert task_states[0] == "START" and task_states[-1] == "COMPLETE", task_states
    dag_run = [e for e in events if e["run"]["runId"] == parent["root"]["run"]["runId"]]
    assert dag_run and dag_run[0]["job"]["name"] == DAG_ID
    steps = [e for e in events if e["job"]["name"] == "mdslab.pipeline.silver_transactions"]
    assert steps[0]["run"]["facets"]["parent"]["root"]["run"]["runId"] == parent["root"]["run"]["runId"]

    gated = _mdslab(settings, "airflow", "test", DAG_ID, "--conf", json.dumps({"max_quarantine_share": 0}))
    assert gated.returncode == 1
    run = latest_run(settings, DAG_ID)
    assert run is not None and run.state == "failed"
    assert run.state_of("build_gold") == "success" and run.state_of("quality_gate") == "failed"
    assert run.state_of("score_fraud") == run.state_of("index_rag") == "upstream_failed"
    output = gated.stdout + gated.stderr
    assert "silver.transactions quarantine share" in output and "limit 0%" in output  # the gate's reason
    assert "Task instance state updated" not in output  # Airflow's own records stay in the log file
    assert re.search(r"Airflow's whole output: \S+\.log", output)
    assert f"error: {DAG_ID} run" in gated.stderr
    # Airflow's provider (2.20.3) sends a DAG run's COMPLETE or FAIL under `airflow dags test` but not
    # its START (its dag_started goes through a process pool); every task run has both
    _assert_every_run_reported_to_spec(
        settings, {f"{DAG_ID}.build_silver", *LAB_JOBS} - TRAINING_JOBS, unstarted=frozenset({DAG_ID})
    )


@pytest.mark.slow  # a Spark start of its own in Airflow's process (~2 min on 2 cores), for library calls
# test_ml.py runs on the suite's session; tests/dags checks the DAG's wiring in the default suite
def test_the_airflow_training_dag_trains_registers_and_scores(services: Settings, spark_provider: Any) -> None:
    settings = whole_lab(services, "ot")
    _fed_and_built(settings, spark_provider)

    training = _mdslab(settings, "airflow", "test", "fraud_model_training")
    assert training.returncode == 0, training.stdout[-3000:] + training.stderr[-3000:]
    run = latest_run(settings, "fraud_model_training")
    assert run is not None and run.state == "success"
    lake = lakehouse(settings)
    assert lake.row_count("gold.fraud_scores") == lake.row_count("gold.fraud_features") > 0
    _assert_every_run_reported_to_spec(
        settings, {"fraud_model_training.train_fraud", *TRAINING_JOBS}, unstarted=frozenset({"fraud_model_training"})
    )


def test_the_prefect_flow_builds_the_same_gold_caches_by_table_versions_and_gates(
    services: Settings, baseline: Baseline
) -> None:
    settings = whole_lab(services, "of")
    name = "financial-data-lake-pipeline"

    first = _mdslab(settings, "flow", "run", name, "-p", f"simulate_rows={ROWS}", "-p", f"seed={SEED}")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert gold_digest(lakehouse(settings)) == baseline.digest
    # the flow run and its task runs are OpenLineage runs (Prefect's ids); the pipeline run a layer task
    # started is their child
    events = read_events(settings.postgres)
    silver = _runs_under(events, "mdslab.pipeline", f"{name}.build_silver")
    assert silver, "no pipeline run under the build_silver task run"
    task = silver[0]["run"]["facets"]["parent"]
    flow_events = [e for e in events if e["run"]["runId"] == task["root"]["run"]["runId"]]
    assert [e["eventType"] for e in flow_events] == ["START", "COMPLETE"] and flow_events[0]["job"]["name"] == name
    task_events = [e for e in events if e["run"]["runId"] == task["run"]["runId"]]
    assert [e["eventType"] for e in task_events] == ["START", "COMPLETE"]
    assert task_events[0]["run"]["facets"]["parent"]["run"]["runId"] == task["root"]["run"]["runId"]
    assert "Skipped" in first.stdout and "no champion version" in first.stdout

    again = _mdslab(settings, "flow", "run", name)  # nothing new: every step up to date
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Cached" not in again.stdout  # the first run's key had no outputs yet

    gated = _mdslab(settings, "flow", "run", name, "-p", "max_quarantine_share=0")
    assert gated.returncode == 1
    lines = {line.split("│")[1].strip(): line for line in gated.stdout.splitlines() if line.startswith("│ ")}
    assert "Cached" in lines["build_silver"] and "Cached" in lines["build_gold"]  # same table versions
    assert "Failed" in lines["quality_gate"]
    assert "score_fraud" not in gated.stdout and "index_rag" not in gated.stdout  # nothing ran on bad gold
    assert "quarantine" in gated.stderr and "failed" in gated.stderr

    rejected = _mdslab(settings, "flow", "run", name, "-p", "rows=5")
    assert rejected.returncode == 2 and "simulate_rows" in rejected.stderr
    _assert_every_run_reported_to_spec(settings, {name, f"{name}.build_silver", *LAB_JOBS} - TRAINING_JOBS)


def test_airflow_commands_migrate_only_a_database_that_is_not_where_the_last_migrate_left_it(
    services: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`airflow db migrate` costs ~8 s with nothing to do; every `mdslab airflow` command ran it."""
    from mdslab import database
    from mdslab.errors import ServiceUnavailableError
    from mdslab.orchestration import airflow

    airflow.prepare(services)  # migrated (by this call or an earlier test's)
    recorded = json.loads((airflow.airflow_home(services) / "migrated.json").read_text())
    assert recorded["revision"]
    monkeypatch.setattr(airflow, "airflow_command", lambda args: ["false", *args])  # a migrate would fail
    airflow.prepare(services)  # at the recorded revision: nothing run

    def set_revision(revision: str) -> None:
        with database.connect(services.postgres, database=services.orchestration.airflow_database) as conn:
            conn.execute("UPDATE alembic_version SET version_num = %s", (revision,))

    set_revision("0123456789ab")  # someone else's Airflow moved the schema
    try:
        with pytest.raises(ServiceUnavailableError, match="airflow db migrate failed"):
            airflow.prepare(services)
    finally:
        set_revision(recorded["revision"])
    airflow.prepare(services)


def test_airflow_up_serves_the_ui_and_stops_cleanly(services: Settings) -> None:
    settings = services.model_copy(
        update={"orchestration": services.orchestration.model_copy(update={"airflow_port": free_port()})}
    )
    process = subprocess.Popen(
        [MDSLAB, "airflow", "up"], env=os.environ | settings.environment(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Airflow UI on" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(300), "".join(lines)
        url = f"http://{settings.api.host}:{settings.orchestration.airflow_port}"
        health = httpx.get(f"{url}/api/v2/monitor/health", timeout=10).json()
        assert health["metadatabase"]["status"] == "healthy"
        assert health["scheduler"]["status"] == "healthy"
        children = psutil.Process(process.pid).children(recursive=True)
        assert any("airflow" in " ".join(c.cmdline()) for c in children)
        passwords = next(line.split(" in ", 1)[1].strip() for line in lines if line.startswith("user admin"))
        assert "admin" in json.loads(Path(passwords).read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(120)
    assert code == 0, "".join(lines)
    assert "Airflow stopped" in "".join(lines)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
