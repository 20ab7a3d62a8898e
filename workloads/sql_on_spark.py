"""``mdslab sql --engine spark``: the same read-only SQL text on Spark through RayDP.

The references resolve exactly as on DuckDB (:func:`mdslab.lakehouse.sql.resolve`: the same tables at the
same versions), become temporary views named ``gold__daily_spend__v4`` (a Spark view cannot sit in a
schema called ``gold``), and DuckDB's parser decides before Spark sees the text that it is one SELECT, so
no DDL or INSERT reaches Spark. A query over its time has its Spark job group cancelled.

Why offer Spark at all when DuckDB answers faster on one machine: it is the engine that scales out on a
Ray cluster, and a query that runs here runs there unchanged.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any

from mdslab.lakehouse import Lakehouse
from mdslab.lakehouse.sql import (
    QueryResult,
    QueryTimeoutError,
    SqlError,
    check_read_only,
    first_rows,
    one_line,
    resolve,
)


def spark_view(view: str) -> str:
    """``gold.daily_spend@v4`` -> ``gold__daily_spend__v4``: a plain identifier in every dialect."""
    return re.sub(r"[.@]", "__", view)


def run_spark_sql(spark: Any, lake: Lakehouse, query: str, *, limit: int, timeout_s: float) -> QueryResult:
    """Run a read-only query on Spark over the referenced snapshots; at most ``limit`` rows come back."""
    from mdslab.compute.exchange import delta_to_spark, release_spark_input, spark_to_arrow

    started = time.perf_counter()
    resolved = resolve(lake, query, spark_view)
    check_read_only(resolved.text)
    group = f"mdslab-sql-{uuid.uuid4().hex[:12]}"
    context = spark.sparkContext
    cancelled = threading.Event()

    def cancel() -> None:
        cancelled.set()
        context.cancelJobGroup(group)

    timer = threading.Timer(timeout_s, cancel)
    inputs = []
    try:
        for ref in resolved.tables:
            df = delta_to_spark(spark, lake.uri(ref.table), storage_options=lake.storage_options, version=ref.version)
            df.createOrReplaceTempView(spark_view(ref.view))
            inputs.append(df)
        context.setJobGroup(group, "mdslab sql", interruptOnCancel=True)
        timer.start()
        rows, truncated = first_rows(spark_to_arrow(spark.sql(resolved.text).limit(limit + 1)), limit)
    except Exception as exc:  # Spark's errors come through py4j and PySpark under many classes
        if cancelled.is_set():
            raise QueryTimeoutError(f"the query ran longer than {timeout_s:g} s and was cancelled") from None
        if type(exc).__module__.startswith(("pyspark", "py4j")):
            raise SqlError(one_line(exc)) from None
        raise
    finally:
        timer.cancel()
        context.setLocalProperty("spark.jobGroup.id", None)  # later jobs of this thread are not in the group
        for ref in resolved.tables:
            spark.catalog.dropTempView(spark_view(ref.view))
        for df in inputs:
            release_spark_input(df)
    return QueryResult(rows, truncated, resolved.tables, time.perf_counter() - started)
