#!/usr/bin/env bash
# Airflow 3's simple auth manager reads its users' passwords from a JSON file and generates a random one for any
# user missing there. Writing the admin's password from AIRFLOW_ADMIN_PASSWORD (compose/.env) before Airflow starts
# gives a known login without baking a password into the image; then the image's own entrypoint takes over.
set -euo pipefail

: "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD in compose/.env}"
passwords_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-${AIRFLOW_HOME:-/opt/airflow}/simple_auth_manager_passwords.json.generated}"
(
    umask 077
    python -c 'import json, os, sys; json.dump({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]}, open(sys.argv[1], "w"))' \
        "$passwords_file"
)
unset AIRFLOW_ADMIN_PASSWORD
exec /entrypoint "$@"
