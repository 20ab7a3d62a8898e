"""What every OpenLineage run event the lab stores must satisfy (the spec's JSON Schema files are not
published on PyPI or npm, so the core of its RunEvent is checked here; the events themselves are built
only through openlineage-python's typed classes, which are generated from that schema)."""

from __future__ import annotations

import uuid
from typing import Any

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _facets(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [*event["run"].get("facets", {}).items(), *event["job"].get("facets", {}).items()]
    for dataset in (*event.get("inputs", []), *event.get("outputs", [])):
        for key in ("facets", "inputFacets", "outputFacets"):
            found += list((dataset.get(key) or {}).items())
    return found


def assert_well_formed_runs(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Every event well formed, every run started and ended; returns run id -> its event types. Parents
    outside ``events`` are the caller's to check (an orchestrator's run may be reported elsewhere)."""
    assert events
    runs: dict[str, list[str]] = {}
    for event in events:
        assert event["eventType"] in {"START", "RUNNING", "COMPLETE", "FAIL"}, event["eventType"]
        assert event["schemaURL"].startswith(SCHEMA_URL), event["schemaURL"]
        assert event["producer"] and event["job"]["namespace"] and event["job"]["name"]
        uuid.UUID(event["run"]["runId"])
        for name, facet in _facets(event):
            assert facet["_producer"] and facet["_schemaURL"].startswith("https://openlineage.io/spec/"), name
        runs.setdefault(event["run"]["runId"], []).append(event["eventType"])
    for run_id, states in runs.items():
        assert states[0] == "START" and states[-1] in {"COMPLETE", "FAIL"}, (run_id, states)
    return runs


def parents(events: list[dict[str, Any]]) -> set[str]:
    return {e["run"]["facets"]["parent"]["run"]["runId"] for e in events if "parent" in e["run"]["facets"]}
