"""Airflow DAGs and Prefect flows (package `mdslab.dags`): wiring only; the work is in
`mdslab.orchestration.tasks` and the library functions it calls."""
