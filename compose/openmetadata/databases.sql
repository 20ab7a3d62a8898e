-- Profile `openmetadata`: the databases of OpenMetadata's catalogue and of its ingestion container's Airflow, on
-- the lab's PostgreSQL. Run by the one-shot openmetadata-db-init on every `up` (not from docker-entrypoint-initdb.d,
-- which runs only on a fresh volume, so a stack started before the profile was enabled gets them too); idempotent.
SELECT format('CREATE DATABASE %I', name)
FROM unnest(ARRAY['openmetadata_db', 'openmetadata_airflow']) AS name
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = name)\gexec
