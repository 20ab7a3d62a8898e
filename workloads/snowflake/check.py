"""The check of the generated Snowflake SQL: every statement parses as Snowflake's, and every step's
Snowflake query, read back as DuckDB's, gives the rows the lab's own plan gives on the same inputs.

Both sides run on DuckDB here (no Snowflake account is needed, none is reachable): the difference can
only come from the translation. Rows are compared as multisets inside DuckDB (``EXCEPT ALL`` both ways),
so order does not matter and a million rows do not pass through Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.steps import PLANS
from mdslab.workloads.snowflake.project import SnowflakeFile
from mdslab.workloads.snowflake.transpile import TARGET_DIALECT, duckdb_from_snowflake, snowflake_select


@dataclass(frozen=True)
class OutputCheck:
    """One step output: its rows by the lab's plan, by the Snowflake query, and rows found on one side only."""

    table: str
    expected_rows: int
    actual_rows: int
    missing: int  # in the plan's result, not in the Snowflake query's
    extra: int  # the other way round

    @property
    def equal(self) -> bool:
        return self.missing == 0 and self.extra == 0 and self.expected_rows == self.actual_rows


def unparsed_statements(files: list[SnowflakeFile]) -> list[str]:
    """Statements sqlglot could not parse as Snowflake SQL (it falls back to an opaque command): none
    is expected, since every statement the project holds is one sqlglot knows the grammar of."""
    bad = []
    for file in files:
        for statement in file.statements:
            try:
                parsed = sqlglot.parse_one(statement, read=TARGET_DIALECT)
            except sqlglot.errors.ParseError as exc:
                bad.append(f"{file.name}: {str(exc).splitlines()[0]}")
                continue
            if isinstance(parsed, exp.Command):
                bad.append(f"{file.name}: {statement.splitlines()[0]}")
    return bad


def compare_query(con: duckdb.DuckDBPyConnection, table: str, expected: pa.Table, query: str) -> OutputCheck:
    """Run ``query`` on ``con`` and compare its rows with ``expected`` (same column names)."""
    con.register("_expected", expected)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _actual AS {query}")
        columns = ", ".join(f'"{name}"' for name in expected.schema.names)
        expected_rows, actual_rows, missing, extra = con.execute(
            f"SELECT (SELECT count(*) FROM _expected), (SELECT count(*) FROM _actual), "
            f"(SELECT count(*) FROM (SELECT {columns} FROM _expected EXCEPT ALL SELECT {columns} FROM _actual)), "
            f"(SELECT count(*) FROM (SELECT {columns} FROM _actual EXCEPT ALL SELECT {columns} FROM _expected))"
        ).fetchall()[0]
    finally:
        con.unregister("_expected")
    return OutputCheck(table, expected_rows, actual_rows, missing, extra)


def _lake_tables(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> None:
    """Each Arrow table as ``<layer>.<table>``, as the Snowflake queries name them."""
    for name, table in tables.items():
        layer, _, short = name.partition(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
        con.register(f"_{layer}_{short}", table)
        con.execute(f"CREATE OR REPLACE VIEW {layer}.{short} AS SELECT * FROM _{layer}_{short}")


def check_steps(
    read: Callable[[str], pa.Table],
    *,
    steps: list[str] | None = None,
    on_progress: Callable[[str], None] = lambda _: None,
) -> list[OutputCheck]:
    """Check every SQL step (or ``steps``) on the inputs ``read`` returns (lake table -> Arrow table).

    ``read`` is called once per input table; the lab's plan and the Snowflake query both read what it
    returned, so the check holds for the inputs as they are (the lake's published versions in
    `mdslab run snowflake`, simulated rows in the tests)."""
    unknown = sorted(set(steps or []) - set(PLANS))
    if unknown:
        raise ValueError(f"unknown SQL step {', '.join(unknown)}; steps: {', '.join(PLANS)}")
    inputs: dict[str, pa.Table] = {}
    checks = []
    for name, factory in PLANS.items():
        if steps and name not in steps:
            continue
        plan = factory(DUCKDB)
        for table in plan.inputs.values():
            if table not in inputs:
                on_progress(f"reading {table}")
                inputs[table] = read(table)
        on_progress(f"{name}: the lab's plan on DuckDB")
        expected = run_duckdb(plan, {view: inputs[table] for view, table in plan.inputs.items()})
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            _lake_tables(con, {table: inputs[table] for table in plan.inputs.values()})
            for output, rows in expected.items():
                on_progress(f"{name}: {output} from its Snowflake query")
                query = duckdb_from_snowflake(snowflake_select(plan, output))
                checks.append(compare_query(con, output, rows, query))
        finally:
            con.close()
    return checks
