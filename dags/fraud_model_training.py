"""
# fraud_model_training

Data-aware: runs whenever `financial_data_lake_pipeline` publishes a `gold.fraud_features` that passed
its quality gate. Trains LightGBM and the baseline on the features (read through Spark on Ray), logs
both to MLflow, registers the model and promotes it to champion only if it beats the current one on
the same validation rows; then re-scores gold with whichever version is champion.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from mdslab.dags.common import OWNER, SCORES_TABLE, run_task, table_asset
from mdslab.ml.features import FRAUD
from mdslab.orchestration import tasks
from mdslab.settings import load_settings

SETTINGS = load_settings()

with DAG(
    dag_id="fraud_model_training",
    description="Train, register and maybe promote the fraud model when its features change",
    doc_md=__doc__,
    schedule=[table_asset(SETTINGS, FRAUD.table)],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mdslab", "ml", "mlflow"],
    default_args={
        "owner": OWNER,
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(minutes=45),
    },
) as dag:

    @task
    def train_fraud() -> tasks.Summary:
        """Train and track the fraud model; promote it only if it beats the champion."""
        return run_task(tasks.train_fraud)

    @task(outlets=[table_asset(SETTINGS, SCORES_TABLE)])
    def score_fraud() -> tasks.Summary:
        """Re-score gold.fraud_features with the champion."""
        return run_task(tasks.score_fraud)

    train_fraud() >> score_fraud()
