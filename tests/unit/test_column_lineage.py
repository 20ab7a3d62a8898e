"""Column lineage derived from the pipeline's SQL plans: complete, exact where traced by hand, and
following a column nobody declared."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mdslab.workloads.lake import build_registry
from mdslab.workloads.lineage.columns import ColumnSource, LineageError, plan_lineage
from mdslab.workloads.lineage.graph import pipeline_lineage
from mdslab.workloads.lineage.recorded import RecordedLineage
from mdslab.workloads.lineage.traversal import Direction, Node, trace
from mdslab.workloads.pipeline.plan import SqlPlan

REGISTRY = build_registry()
GRAPH = pipeline_lineage(REGISTRY)


def upstream(table: str, column: str, depth: int | None = None) -> dict[tuple[str, str], int]:
    """(table, column) -> steps back, of every column ``table.column`` is derived from."""
    answer = trace(RecordedLineage(columns=GRAPH), Node(table, column), Direction.UPSTREAM, depth)
    return {(n.table, n.column or ""): steps for n, steps in answer.depths().items() if n != answer.root}


def _sources(table: str, column: str, kind: str) -> set[tuple[str, str, str]]:
    return {(s.table, s.column, s.subtype) for s in GRAPH[table][column] if s.type == kind}


def test_every_silver_and_gold_column_has_lineage_that_reaches_bronze() -> None:
    built = [spec for spec in REGISTRY if spec.layer.value in ("silver", "gold") and spec.name in GRAPH]
    assert {spec.name for spec in built} >= {"silver.transactions", "silver.claims", "gold.fraud_features"}
    for spec in built:
        assert set(GRAPH[spec.name]) == set(spec.schema.names), f"{spec.name}: lineage for other columns"
        for column in spec.schema.names:
            reached = upstream(spec.name, column)
            assert reached, f"{spec.name}.{column} has no upstream column"
            assert any(table.startswith("bronze.") for table, _ in reached), f"{spec.name}.{column}: {reached}"


# Traced by hand through the SQL (silver_sql / gold_sql): (table, column) -> (DIRECT, INDIRECT) sources
EXPECTED = {
    ("silver.transactions", "merchant_category"): ({("bronze.merchants", "category", "IDENTITY")}, None),
    ("silver.transactions", "local_hour"): (
        {("bronze.transactions", "payload", "TRANSFORMATION"), ("bronze.customers", "timezone", "TRANSFORMATION")},
        None,
    ),
    ("silver.quarantine_transactions", "event_id"): (
        {("bronze.transactions", "event_id", "TRANSFORMATION"), ("bronze.transactions", "payload", "TRANSFORMATION")},
        None,
    ),
    ("gold.daily_spend", "txn_count"): (
        set(),
        {
            ("silver.transactions", "event_date", "GROUP_BY"),
            ("silver.transactions", "customer_id", "GROUP_BY"),
            ("silver.transactions", "merchant_id", "GROUP_BY"),
        },
    ),
    ("gold.fraud_features", "amount_to_avg_30d"): (
        {("silver.transactions", "amount_usd", "AGGREGATION")},
        {("silver.transactions", "customer_id", "WINDOW"), ("silver.transactions", "event_time", "WINDOW")},
    ),
    ("gold.fraud_features", "label_is_fraud"): ({("bronze.fraud_labels", "is_fraud", "IDENTITY")}, None),
    ("gold.claims_features", "annual_premium_usd"): ({("bronze.policies", "annual_premium", "TRANSFORMATION")}, None),
}


@pytest.mark.parametrize(("table", "column"), sorted(EXPECTED))
def test_lineage_matches_what_was_traced_by_hand(table: str, column: str) -> None:
    direct, indirect = EXPECTED[(table, column)]
    assert _sources(table, column, "DIRECT") == direct
    if indirect is not None:
        assert _sources(table, column, "INDIRECT") == indirect


def test_silver_routing_is_an_indirect_condition_of_every_silver_column() -> None:
    """A row reaches silver or its quarantine by its checks: those inputs decide, they do not flow."""
    conditions = _sources("silver.transactions", "source", "INDIRECT")
    assert ("bronze.customers", "customer_id", "CONDITIONAL") in conditions
    assert _sources("silver.transactions", "source", "DIRECT") == {("bronze.transactions", "source", "IDENTITY")}


def test_a_column_nobody_declared_gets_its_lineage_from_the_sql() -> None:
    schema = pa.schema([("card_last4", pa.string()), ("amount_usd", pa.float64()), ("customer_id", pa.string())])
    plan = SqlPlan(
        inputs={"t": "silver.transactions"},
        stages=(("spend", "SELECT customer_id, sum(amount_usd) AS spent, max(card_last4) AS card FROM t GROUP BY 1"),),
        outputs={"gold.new": "SELECT upper(card) AS shouted_card, spent FROM spend WHERE spent > 0"},
    )
    lineage = plan_lineage(plan, {"silver.transactions": schema})["gold.new"]
    assert lineage["shouted_card"] == (
        ColumnSource("silver.transactions", "card_last4", "DIRECT", "AGGREGATION"),
        ColumnSource("silver.transactions", "customer_id", "INDIRECT", "GROUP_BY"),
    )
    assert ("silver.transactions", "amount_usd") in {(s.table, s.column) for s in lineage["spent"]}


def test_upstream_follows_tables_back_and_stops_at_the_depth_asked() -> None:
    reached = upstream("gold.fraud_features", "amount_to_avg_30d")
    assert reached[("silver.transactions", "amount_usd")] == 1
    assert reached[("bronze.transactions", "payload")] == 2
    assert ("bronze.transactions", "payload") not in upstream("gold.fraud_features", "amount_to_avg_30d", depth=1)


def test_sql_that_cannot_be_analysed_names_the_output() -> None:
    plan = SqlPlan(inputs={"t": "silver.transactions"}, stages=(), outputs={"gold.broken": "SELECT FROM WHERE ("})
    with pytest.raises(LineageError, match=r"cannot analyse the SQL of gold\.broken"):
        plan_lineage(plan, {"silver.transactions": pa.schema([("a", pa.string())])})
