#!/usr/bin/env bash
# Runs once, when the postgres volume is first initialised (the image runs /docker-entrypoint-initdb.d/ on an empty
# data directory only). Creates what the lab's services profile expects beside POSTGRES_DB: the databases of
# MLflow and Airflow, and pgvector in POSTGRES_DB, where the RAG index lives. The names arrive from the lab's own
# variables (MDSLAB_ML__TRACKING_DATABASE, MDSLAB_ORCHESTRATION__AIRFLOW_DATABASE; see docker-compose.yml), so the
# databases created here are the ones the lab and the servers connect to.
set -e

psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v mlflow_db="${MLFLOW_DATABASE:-mlflow}" -v airflow_db="${AIRFLOW_DATABASE:-airflow}" <<'SQL'
CREATE EXTENSION IF NOT EXISTS vector;
SELECT format('CREATE DATABASE %I', name)
FROM unnest(ARRAY[:'mlflow_db', :'airflow_db']) AS name
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = name)\gexec
SQL
