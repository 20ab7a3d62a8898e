"""Run a :class:`SqlPlan` on an engine: Spark on Ray (the pipeline) or DuckDB (baseline, cross-check)."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from mdslab.workloads.pipeline.plan import SqlPlan


def run_duckdb(plan: SqlPlan, inputs: dict[str, pa.Table], *, threads: int | None = None) -> dict[str, pa.Table]:
    """Evaluate the plan in an in-process DuckDB over Arrow tables (view name -> table)."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if threads:
            con.execute(f"SET threads = {threads}")
        for view, table in inputs.items():
            con.register(view, table)
        for name, sql in plan.stages:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        return {output: con.sql(sql).to_arrow_table() for output, sql in plan.outputs.items()}
    finally:
        con.close()


def run_spark(spark: Any, plan: SqlPlan, inputs: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """Register inputs (view name -> DataFrame) and stages as temp views; return the output DataFrames
    and the persisted stage DataFrames (unpersist them once the outputs are written).

    Only the first stage is persisted: it holds the expensive work (JSON parsing) that every output
    reads; later stages are cheap to recompute from it.
    """
    from pyspark import StorageLevel

    for view, df in inputs.items():
        df.createOrReplaceTempView(view)
    persisted = []
    for index, (name, sql) in enumerate(plan.stages):
        df = spark.sql(sql)
        if index == 0:
            df = df.persist(StorageLevel.MEMORY_AND_DISK)
            persisted.append(df)
        df.createOrReplaceTempView(name)
    return {output: spark.sql(sql) for output, sql in plan.outputs.items()}, persisted
