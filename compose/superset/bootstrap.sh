#!/bin/sh
# Superset for the Compose profile `bi`, started as the container's entrypoint: its own metadata (SQLite on the
# superset-home volume) brought up to date, the admin login, and the lab's Trino catalog as a database
# connection (SUPERSET_LAKE_URI), then the image's server. Each step is idempotent: a restart repeats them.
set -eu
superset db upgrade
superset fab create-admin --username admin --firstname mdslab --lastname admin \
  --email admin@mdslab.invalid --password "$SUPERSET_ADMIN_PASSWORD"
superset init
superset set-database-uri --database_name "$SUPERSET_LAKE_DATABASE" --uri "$SUPERSET_LAKE_URI"
exec /app/docker/entrypoints/run-server.sh
