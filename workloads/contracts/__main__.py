"""Regenerate the committed JSON Schemas: ``python -m mdslab.workloads.contracts``."""

from mdslab.workloads.contracts.export import SCHEMAS_DIR, export_json_schemas

for path in export_json_schemas(SCHEMAS_DIR):
    print(path)
