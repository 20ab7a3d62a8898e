"""The read side of governance without services: classification that follows column lineage (a planted
column nobody declared), catalog search, walking the store's graph up and down, its three renderings,
the run history's summaries, and the one-line errors for what does not exist."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest

from mdslab.lakehouse import Layer, TableRegistry, TableSpec
from mdslab.lakehouse.registry import UnknownTableError
from mdslab.workloads.lake import build_registry
from mdslab.workloads.lineage.catalog import catalog, find_table, search
from mdslab.workloads.lineage.classification import DECLARED, classify
from mdslab.workloads.lineage.columns import plan_lineage
from mdslab.workloads.lineage.graph import pipeline_lineage
from mdslab.workloads.lineage.history import _summary
from mdslab.workloads.lineage.recorded import lineage_of
from mdslab.workloads.lineage.render import as_dict, as_dot, as_mermaid
from mdslab.workloads.lineage.traversal import Direction, Node, UnknownNodeError, resolve, trace
from mdslab.workloads.pipeline.plan import SqlPlan

REGISTRY = build_registry()
GRAPH = pipeline_lineage(REGISTRY)
CLASSES = classify(REGISTRY, GRAPH)


# --- classification --------------------------------------------------------------------------------


def test_declared_classifications_come_from_the_contracts() -> None:
    assert CLASSES["bronze.customers"]["email"] == {"pii.email": DECLARED}
    assert CLASSES["silver.transactions"]["card_last4"] == {"pii.card": DECLARED}
    assert CLASSES["silver.claims"]["adjuster_notes"] == {"pii.free_text": DECLARED}
    assert CLASSES["silver.transactions"]["amount"] == {}  # declared by its contract: not PII


def test_a_derived_column_inherits_what_it_is_computed_from_and_nothing_else() -> None:
    assert CLASSES["silver.transactions"]["distance_from_home_km"] == {"pii.geo": "bronze.customers.home_lat"}
    assert CLASSES["gold.fraud_features"]["km_from_prev_located"] == {"pii.geo": "silver.transactions.lat"}
    # a raw record copied unchanged stays raw; a value parsed out of it is classified by its contract
    assert CLASSES["silver.quarantine_transactions"]["payload"] == {"pii.raw": "bronze.transactions.payload"}
    assert CLASSES["silver.transactions"]["amount_usd"] == {}
    assert CLASSES["gold.daily_spend"]["total_usd"] == {}  # customer_id only groups it: INDIRECT passes nothing


def test_a_planted_column_is_tagged_without_anyone_declaring_it() -> None:
    """A new gold table whose SQL derives columns from PII: tagged through the SQL's own lineage."""
    sql = (
        "SELECT c.customer_id, lower(c.email) AS contact, concat(c.full_name, ' <', c.email, '>') AS addressee, "
        "count(*) AS transactions FROM t JOIN c ON t.customer_id = c.customer_id "
        "WHERE c.home_lat > 0 GROUP BY c.customer_id, c.email, c.full_name"
    )
    plan = SqlPlan(inputs={"t": "silver.transactions", "c": "bronze.customers"}, stages=(), outputs={"gold.x": sql})
    schemas = {name: REGISTRY.get(name).schema for name in plan.inputs.values()}
    planted = TableSpec(
        "gold.x",
        Layer.GOLD,
        "gold/x",
        pa.schema(
            [
                ("customer_id", pa.string()),
                ("contact", pa.string()),
                ("addressee", pa.string()),
                ("transactions", pa.int64()),
            ]
        ),
        "planted",
    )
    registry = TableRegistry([*REGISTRY, planted])
    tags = classify(registry, {**GRAPH, **plan_lineage(plan, schemas)})["gold.x"]
    assert tags["contact"] == {"pii.email": "bronze.customers.email"}
    assert set(tags["addressee"]) == {"pii.email", "pii.name"}
    assert tags["customer_id"] == {} and tags["transactions"] == {}  # home_lat only filters


def test_the_contract_json_schemas_carry_the_classification() -> None:
    from mdslab.workloads.contracts import Customer, schema_document

    properties = schema_document(Customer)["properties"]
    assert properties["email"]["x-classification"] == "pii.email"
    assert "x-classification" not in properties["segment"]


# --- catalog ---------------------------------------------------------------------------------------

CATALOG = catalog(REGISTRY)


def test_search_by_tag_lists_every_classified_column_declared_or_inherited() -> None:
    found = {(m.table.name, m.column.name) for m in search(CATALOG, tag="pii") if m.column is not None}
    assert ("bronze.customers", "email") in found and ("gold.fraud_features", "km_from_prev_located") in found
    assert ("silver.transactions", "amount_usd") not in found
    assert {(m.table.name, m.column.name) for m in search(CATALOG, tag="pii.geo", layer="gold") if m.column} == {
        ("gold.fraud_features", "distance_from_home_km"),
        ("gold.fraud_features", "km_from_prev_located"),
    }
    assert search(CATALOG, tag="pii.e") == []  # a tag matches whole parts, not a prefix of a word


def test_search_by_text_finds_names_descriptions_and_owners() -> None:
    hits = {(m.table.name, m.column.name if m.column else None, m.matched) for m in search(CATALOG, "E-MAIL")}
    assert ("bronze.customers", "email", "description") in hits
    owned = {m.table.name for m in search(CATALOG, "fraud-analytics") if m.column is None}
    assert "gold.fraud_features" in owned
    assert len(search(CATALOG)) == len(REGISTRY)  # nothing asked: every table
    assert search(CATALOG, "no such words anywhere") == []


def test_a_catalog_entry_names_its_contract_and_owner() -> None:
    entry = find_table(CATALOG, "silver.claims")
    assert entry.contract == "claim 1.0.0" and entry.owner == "data-platform" and "pii.free_text" in entry.tags
    assert json.loads(json.dumps(entry.as_dict()))["columns"][0]["name"] == "event_id"
    with pytest.raises(
        UnknownTableError, match=r"no table 'silver\.claim' in the catalog; did you mean silver\.claims"
    ):
        find_table(CATALOG, "silver.claim")


# --- the store's graph: walk and render ------------------------------------------------------------

NAMES = {
    ("s3://raw", "bronze/tx"): "bronze.tx",
    ("s3://cur", "silver/tx"): "silver.tx",
    ("s3://cur", "gold/f"): "gold.f",
}


def _field(namespace: str, name: str, column: str, kind: str = "DIRECT", sub: str = "IDENTITY") -> dict[str, Any]:
    return {"namespace": namespace, "name": name, "field": column, "transformations": [{"type": kind, "subtype": sub}]}


def _complete(
    job: str, at: str, inputs: list[tuple[str, str]], output: tuple[str, str], columns: dict[str, Any]
) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": at,
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "mdslab", "name": job},
        "inputs": [{"namespace": ns, "name": n, "facets": {}} for ns, n in inputs],
        "outputs": [
            {
                "namespace": output[0],
                "name": output[1],
                "facets": {"columnLineage": {"fields": columns}, "version": {"datasetVersion": "7"}},
                "outputFacets": {"outputStatistics": {"rowCount": 42}},
            }
        ],
    }


EVENTS = [
    _complete(
        "silver",
        "2026-12-07T10:00:00+00:00",
        [("s3://raw", "bronze/tx")],
        ("s3://cur", "silver/tx"),
        {
            "amount": {"inputFields": [_field("s3://raw", "bronze/tx", "payload", sub="TRANSFORMATION")]},
            "id": {"inputFields": [_field("s3://raw", "bronze/tx", "payload", sub="TRANSFORMATION")]},
        },
    ),
    _complete(
        "gold",
        "2026-12-07T10:01:00+00:00",
        [("s3://cur", "silver/tx"), ("kafka://b:9092", "rates")],
        ("s3://cur", "gold/f"),
        {
            "avg": {
                "inputFields": [
                    _field("s3://cur", "silver/tx", "amount", sub="AGGREGATION"),
                    _field("s3://cur", "silver/tx", "id", "INDIRECT", "WINDOW"),
                ]
            }
        },
    ),
]
RECORDED = lineage_of(EVENTS, NAMES)


def test_upstream_reaches_the_raw_column_and_stops_at_the_depth_asked() -> None:
    answer = trace(RECORDED, resolve(RECORDED, "gold.f.avg"), Direction.UPSTREAM)
    assert answer.depths() == {
        Node("gold.f", "avg"): 0,
        Node("silver.tx", "amount"): 1,
        Node("silver.tx", "id"): 1,
        Node("bronze.tx", "payload"): 2,
    }
    shallow = trace(RECORDED, Node("gold.f", "avg"), Direction.UPSTREAM, depth=1)
    assert Node("bronze.tx", "payload") not in shallow.depths()
    tables = trace(RECORDED, resolve(RECORDED, "gold.f"), Direction.UPSTREAM)
    assert {str(n) for n in tables.depths()} == {"gold.f", "silver.tx", "bronze.tx", "kafka://b:9092/rates"}


def test_downstream_is_the_impact_of_a_change() -> None:
    answer = trace(RECORDED, resolve(RECORDED, "bronze.tx.payload"), Direction.DOWNSTREAM)
    assert {str(n): d for n, d in answer.depths().items()} == {
        "bronze.tx.payload": 0,
        "silver.tx.amount": 1,
        "silver.tx.id": 1,
        "gold.f.avg": 2,
    }
    window = next(e for e in answer.edges if e.source == Node("silver.tx", "id"))
    assert (window.type, window.subtype) == ("INDIRECT", "WINDOW")


def test_the_graph_keeps_each_outputs_last_writer() -> None:
    writer = RECORDED.writers["gold.f"]
    assert (writer.job, writer.version, writer.rows) == ("gold", "7", 42)
    assert RECORDED.outputs("silver.tx") == {"gold.f"}


def test_renderings_hold_every_node_and_edge() -> None:
    answer = trace(RECORDED, Node("gold.f", "avg"), Direction.UPSTREAM)
    document = as_dict(answer)
    assert document["root"] == "gold.f.avg" and len(document["edges"]) == 4
    assert {n["name"] for n in document["nodes"]} == {
        "gold.f.avg",
        "silver.tx.amount",
        "silver.tx.id",
        "bronze.tx.payload",
    }
    mermaid = as_mermaid(answer)
    assert mermaid.startswith("flowchart LR") and mermaid.count("-->") == 3 and mermaid.count("-.->") == 1
    assert 'subgraph t0["bronze.tx"]' in mermaid
    dot = as_dot(answer)
    assert dot.startswith("digraph lineage {") and dot.count(" -> ") == 4 and "style=dashed" in dot
    assert dot.count("subgraph cluster_") == 3 and dot.rstrip().endswith("}")


def test_what_does_not_exist_is_named_with_close_names() -> None:
    with pytest.raises(UnknownNodeError, match=r"no table 'gold\.ff' in the lineage store; did you mean gold\.f"):
        resolve(RECORDED, "gold.ff")
    with pytest.raises(UnknownNodeError, match=r"gold\.f has no column 'avgg'; did you mean avg\?"):
        resolve(RECORDED, "gold.f.avgg")
    with pytest.raises(UnknownNodeError, match="the lineage store holds no runs yet"):
        resolve(lineage_of([], NAMES), "gold.f")
    with pytest.raises(ValueError, match="depth must be at least 1"):
        trace(RECORDED, Node("gold.f"), Direction.UPSTREAM, depth=0)


def test_a_run_summary_says_state_duration_parent_and_versions() -> None:
    event = {
        **EVENTS[1],
        "eventType": "FAIL",
        "run": {
            "runId": "r1",
            "facets": {
                "errorMessage": {"message": "boom"},
                "parent": {"run": {"runId": "p1"}, "job": {"namespace": "airflow", "name": "dag.task"}},
            },
        },
    }
    summary = _summary("r1", datetime.fromisoformat("2026-12-07T10:00:30+00:00"), event, NAMES)
    assert (summary.state, summary.seconds, summary.error) == ("FAIL", 30.0, "boom")
    assert summary.parent == "dag.task p1"
    assert [str(d) for d in summary.outputs] == ["gold.f@v7"] and summary.outputs[0].rows == 42
    running = _summary("r2", summary.started, {**EVENTS[1], "eventType": "START"}, NAMES)
    assert running.state == "RUNNING" and running.seconds is None
