"""The lake's column lineage graph: every SQL step's plan analysed (about 0.3 s for all, so once per
process and registry), and the reference snapshots, which copy their PostgreSQL table's columns."""

from __future__ import annotations

import functools

import pyarrow as pa

from mdslab.lakehouse import TableRegistry
from mdslab.workloads import reference
from mdslab.workloads.lineage.columns import ColumnSource, TableLineage, plan_lineage
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.steps import PLANS


def pipeline_lineage(registry: TableRegistry) -> dict[str, TableLineage]:
    """Output table -> column -> sources, for every table the pipeline builds."""
    return dict(_analysed(tuple((spec.name, spec.schema) for spec in registry)))


@functools.lru_cache(maxsize=8)
def _analysed(schemas: tuple[tuple[str, pa.Schema], ...]) -> tuple[tuple[str, TableLineage], ...]:
    schema_of = dict(schemas)
    graph: dict[str, TableLineage] = {}
    for table in reference.REFERENCE_TABLES:
        snapshot = f"bronze.{table.name}"
        source = reference.source_name(table)
        graph[snapshot] = {
            column: (ColumnSource(source, column, "DIRECT", "IDENTITY"),) if column in table.columns else ()
            for column in schema_of[snapshot].names
        }
    for factory in PLANS.values():
        plan = factory(DUCKDB)
        graph.update(plan_lineage(plan, {table: schema_of[table] for table in plan.inputs.values()}))
    return tuple(graph.items())
