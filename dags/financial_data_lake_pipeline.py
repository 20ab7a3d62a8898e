"""
# financial_data_lake_pipeline

The lab's batch run, from the stream to curated data and its consumers:

1. **ensure_services**: embedded services started (or the external ones checked), topics created.
2. **send_simulated_events**: only with `simulate_rows` > 0: the simulator plays the source system
   and produces that many transactions (plus claims and reference data) to Kafka.
3. **consume_stream**: Kafka -> bronze until caught up, exactly once (offsets in the Delta commits).
4. **extract_case_files**: the claims system's case files (MongoDB) -> bronze, new and changed
   documents and deletions since the last run, exactly once.
5. **load_reference**: PostgreSQL reference data -> bronze.
6. **build_silver** / **build_gold**: the medallion steps on Spark (RayDP on Ray); steps whose input
   table versions did not change are skipped, so re-runs are cheap and idempotent.
7. **quality_gate**: gold present, built from the current inputs, unique keys, reconciled with
   silver, quarantine share within `max_quarantine_share`. Fails the run naming every failed check;
   nothing downstream runs on bad gold. Publishes the gold tables as Assets on success.
8. **score_fraud** (skipped until a champion model exists) and **index_rag**, in parallel.

Downstream: `fraud_model_training` is scheduled on the `gold.fraud_features` Asset.
Every task calls `mdslab.orchestration.tasks`, the same library functions as the `mdslab` CLI.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from mdslab.dags.common import OWNER, SCORES_TABLE, run_task, table_asset
from mdslab.orchestration import tasks
from mdslab.settings import load_settings
from mdslab.workloads.quality import GOLD_TABLES

SETTINGS = load_settings()
GOLD_ASSETS = [table_asset(SETTINGS, table) for table in GOLD_TABLES]


def _params() -> dict[str, Any]:
    return dict(get_current_context()["params"])


with DAG(
    dag_id="financial_data_lake_pipeline",
    description="Kafka -> bronze -> silver -> gold on Spark, quality gate, scoring, RAG index",
    doc_md=__doc__,
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    tags=["mdslab", "lakehouse", "spark", "kafka"],
    default_args={
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=30),
    },
    params={
        "simulate_rows": Param(
            0, type="integer", minimum=0, description="Transactions to simulate into Kafka first (0: none)."
        ),
        "seed": Param(42, type="integer", description="Simulator seed: same seed and rows, same events."),
        "consume_timeout_s": Param(
            600, type="integer", minimum=10, description="Seconds the consumer may take to catch up."
        ),
        "force": Param(False, type="boolean", description="Rebuild silver and gold even if inputs are unchanged."),
        "max_quarantine_share": Param(
            0.05, type="number", minimum=0, maximum=1, description="Quality gate: largest share silver may quarantine."
        ),
    },
) as dag:

    @task(retries=3, execution_timeout=timedelta(minutes=5))
    def ensure_services() -> tasks.Summary:
        """Start the embedded services (or check the external ones) and create the Kafka topics."""
        return run_task(tasks.ensure_services)

    @task(execution_timeout=timedelta(minutes=10))
    def send_simulated_events() -> tasks.Summary:
        """With `simulate_rows` > 0, produce a simulated batch to Kafka; skipped otherwise. A batch sent
        before (same rows and seed) is not sent again."""
        params = _params()
        return run_task(tasks.send_simulated_events, rows=int(params["simulate_rows"]), seed=int(params["seed"]))

    @task(trigger_rule="none_failed", execution_timeout=timedelta(minutes=60))
    def consume_stream() -> tasks.Summary:
        """Consume the topics into bronze until caught up; contract failures go to the dead letters.
        A retry resumes where the bronze tables end: no duplicates, no gaps."""
        return run_task(tasks.consume_stream, timeout_s=float(_params()["consume_timeout_s"]))

    @task(execution_timeout=timedelta(minutes=30))
    def extract_case_files() -> tasks.Summary:
        """New and changed case files and deletions from MongoDB into bronze.claim_documents, exactly once."""
        return run_task(tasks.extract_case_files)

    @task
    def load_reference() -> tasks.Summary:
        """Copy the PostgreSQL reference tables (customers, merchants, policies) into bronze."""
        return run_task(tasks.build_layer, layer="bronze", force=bool(_params()["force"]))

    @task
    def build_silver() -> tasks.Summary:
        """Bronze -> silver on Spark: typed, deduplicated, conformed; rejected rows to quarantine."""
        return run_task(tasks.build_layer, layer="silver", force=bool(_params()["force"]))

    @task
    def build_gold() -> tasks.Summary:
        """Silver -> gold on Spark: daily spend, fraud features, monthly claims."""
        return run_task(tasks.build_layer, layer="gold", force=bool(_params()["force"]))

    @task(retries=0, outlets=GOLD_ASSETS)
    def quality_gate() -> tasks.Summary:
        """Fail the run, naming every failed check, unless gold is present, fresh, unique, reconciled with
        silver and the quarantine share is within bounds. Not retried: bad data does not heal by waiting."""
        return run_task(tasks.quality_gate, max_quarantine_share=float(_params()["max_quarantine_share"]))

    @task(outlets=[table_asset(SETTINGS, SCORES_TABLE)])
    def score_fraud() -> tasks.Summary:
        """Score gold.fraud_features with the champion fraud model; skipped while there is none."""
        return run_task(tasks.score_fraud)

    @task(execution_timeout=timedelta(minutes=60))
    def index_rag() -> tasks.Summary:
        """Bring the RAG index (pgvector) up to date with the curated tables: only changed rows are embedded."""
        return run_task(tasks.index_rag)

    gate = quality_gate()
    (
        ensure_services()
        >> send_simulated_events()
        >> consume_stream()
        >> extract_case_files()
        >> load_reference()
        >> build_silver()
        >> build_gold()
        >> gate
    )
    gate >> [score_fraud(), index_rag()]
