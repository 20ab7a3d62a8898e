-- Profile `lineage`: Marquez's database on the lab's PostgreSQL. Run by the one-shot marquez-db-init on every
-- `up` (a stack started before the profile was enabled gets it too); idempotent.
SELECT 'CREATE DATABASE marquez' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'marquez')\gexec
