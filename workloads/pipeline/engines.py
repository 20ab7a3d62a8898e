"""Run a :class:`SqlPlan` on an engine: Spark on Ray (the pipeline) or DuckDB (baseline, cross-check)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mdslab.workloads.pipeline.plan import OUTPUT_COLUMN, Route, SqlPlan


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


def run_spark(spark: Any, plan: SqlPlan, inputs: dict[str, Any]) -> dict[str, Any]:
    """Register inputs (view name -> DataFrame) and stages as temp views; return the outputs.

    Each output is a lazy DataFrame, or, for a routed plan, an Arrow stream: Spark then computes the
    last stage once, in one job that starts when the first stream is read, and its rows are shared out
    among the outputs on the way (:func:`route_batches`). Nothing is cached in Spark: stages are views.
    """
    for view, df in inputs.items():
        df.createOrReplaceTempView(view)
    for name, sql in plan.stages:
        spark.sql(sql).createOrReplaceTempView(name)
    if not plan.routes:
        return {output: spark.sql(sql) for output, sql in plan.outputs.items()}
    from mdslab.compute.exchange import spark_to_arrow

    columns = [OUTPUT_COLUMN, *dict.fromkeys(source for route in plan.routes for source, _ in route.columns)]
    last = plan.stages[-1][0]
    return dict(route_batches(spark_to_arrow(spark.table(last).select(*columns)), plan.routes))


def route_batches(stream: pa.RecordBatchReader, routes: tuple[Route, ...]) -> dict[str, pa.RecordBatchReader]:
    """Share out a stream's rows by its ``_output`` column: one stream per route, with its columns.

    The streams can be read in any order, each once. Reading one pulls the source and holds back the
    other routes' rows until their stream is read, so read the largest output first (silver before its
    quarantine) to hold back only the small ones.
    """
    pending: dict[str, deque[pa.RecordBatch]] = {route.table: deque() for route in routes}
    source = iter(stream)

    def pull() -> bool:
        batch = next(source, None)
        if batch is None:
            return False
        for route in routes:
            part = batch.filter(pc.equal(batch.column(OUTPUT_COLUMN), route.table))
            if part.num_rows:
                pending[route.table].append(part)
        return True

    def batches(route: Route) -> Iterator[pa.RecordBatch]:
        queue = pending[route.table]
        sources, names = [source for source, _ in route.columns], [name for _, name in route.columns]
        while queue or pull():
            while queue:
                yield pa.RecordBatch.from_arrays(queue.popleft().select(sources).columns, names=names)

    def schema(route: Route) -> pa.Schema:
        return pa.schema([stream.schema.field(source).with_name(name) for source, name in route.columns])

    return {route.table: pa.RecordBatchReader.from_batches(schema(route), batches(route)) for route in routes}
