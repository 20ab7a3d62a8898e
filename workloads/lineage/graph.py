"""The lake's column lineage graph, from every SQL step's plan (about 0.3 s to analyse them all)."""

from __future__ import annotations

from mdslab.lakehouse import TableRegistry
from mdslab.workloads.lineage.columns import TableLineage, plan_lineage
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.steps import PLANS


def pipeline_lineage(registry: TableRegistry) -> dict[str, TableLineage]:
    """Output table -> column -> sources, for every silver and gold table the pipeline builds."""
    graph: dict[str, TableLineage] = {}
    for factory in PLANS.values():
        plan = factory(DUCKDB)
        graph.update(plan_lineage(plan, {table: registry.get(table).schema for table in plan.inputs.values()}))
    return graph
