"""Orchestration (roof): the tasks the Airflow DAGs and the Prefect flows share, and how the lab runs
Airflow and Prefect. The DAG and flow files in `dags/` only wire these tasks together."""
