"""`mdslab sql`: read-only SQL over the lake's tables, printed or written to a file."""

from __future__ import annotations

import io
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import typer
from rich.table import Table

from mdslab.cli.context import err_console, one_line_errors, print_table, settings
from mdslab.errors import MdslabError
from mdslab.lakehouse import Lakehouse
from mdslab.lakehouse.sql import DEFAULT_ROW_LIMIT, DEFAULT_TIMEOUT_S, QueryResult, check_limits
from mdslab.settings import Settings


class Engine(StrEnum):
    DUCKDB = "duckdb"
    SPARK = "spark"


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    PARQUET = "parquet"


@one_line_errors
def sql(
    query: Annotated[
        str, typer.Argument(help="One SELECT; tables as `gold.daily_spend`, a version as `gold.daily_spend@v3`.")
    ],
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="How to print or write the rows.")] = (
        OutputFormat.TABLE
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the rows to this file (csv, json, parquet).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows (the footer says when there were more).")] = (
        DEFAULT_ROW_LIMIT
    ),
    timeout: Annotated[float, typer.Option(help="Cancel the query after this many seconds.")] = DEFAULT_TIMEOUT_S,
    engine: Annotated[
        Engine, typer.Option(help="duckdb (in this process) or spark (Spark on Ray: starts a session, ~20 s).")
    ] = Engine.DUCKDB,
) -> None:
    """Query the lake's tables with SQL (DuckDB over the Delta snapshots, or Spark on Ray; read-only).

    A bare table name reads the version readers see (silver and gold: the one the quality gate
    published); `name@vN` reads version N. Examples:

      mdslab sql "SELECT c.segment, sum(d.total_usd) AS usd FROM gold.daily_spend d
      JOIN bronze.customers c USING (customer_id) GROUP BY 1 ORDER BY 2 DESC"

      mdslab sql "SELECT count(*) FROM gold.fraud_features@v1" --format json

      mdslab sql "SELECT * FROM silver.transactions" --format parquet --output tx.parquet --limit 1000000
    """
    from mdslab.lakehouse.sql import run_duckdb
    from mdslab.workloads.lake import lakehouse

    check_limits(limit, timeout)
    if output_format is OutputFormat.TABLE and output is not None:
        raise MdslabError("--format table prints to the terminal: give --format csv, json or parquet with --output")
    if output_format is OutputFormat.PARQUET and output is None:
        raise MdslabError("--format parquet writes a file: give --output FILE")
    current = settings()
    lake = lakehouse(current)
    if engine is Engine.SPARK:
        result = _on_spark(current, lake, query, limit, timeout)
    else:
        result = run_duckdb(lake, query, limit=limit, timeout_s=timeout)
    if output_format is OutputFormat.TABLE:
        print_table(_rich_table(result.rows))
    else:
        _write(result.rows, output_format, output)
    err_console.print(_footer(result, limit, output), highlight=False)


def _on_spark(current: Settings, lake: Lakehouse, query: str, limit: int, timeout: float) -> QueryResult:
    from mdslab.workloads.pipeline.step_runtime import SparkProvider
    from mdslab.workloads.sql_on_spark import run_spark_sql

    provider = SparkProvider(current)
    try:
        with err_console.status("starting Spark on Ray"):
            spark = provider.get()
        return run_spark_sql(spark, lake, query, limit=limit, timeout_s=timeout)
    finally:
        provider.close()


def _rich_table(rows: pa.Table) -> Table:
    table = Table(*rows.column_names, title_justify="left")
    for record in rows.to_pylist():
        table.add_row(*("" if value is None else str(value) for value in record.values()))
    return table


def _write(rows: pa.Table, output_format: OutputFormat, output: Path | None) -> None:
    if output_format is OutputFormat.PARQUET:
        assert output is not None  # checked before the query ran
        pq.write_table(rows, output)
        return
    if output_format is OutputFormat.CSV:
        buffer = io.BytesIO()
        pa_csv.write_csv(rows, buffer)
        text = buffer.getvalue().decode()
    else:
        text = json.dumps(rows.to_pylist(), default=str, indent=1) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


def _footer(result: QueryResult, limit: int, output: Path | None) -> str:
    rows = f"{result.rows.num_rows:,} rows"
    if result.truncated:
        rows = f"first {limit:,} rows (there are more: --limit raises it)"
    read = ", ".join(ref.view for ref in result.tables) or "no table"
    written = f" written to {output}" if output is not None else ""
    return f"{rows}{written}; read {read}; {result.seconds:.2f} s"
