"""The lab as a Snowflake project: setup, every registered table with its documentation and
classification tags, and silver and gold as dynamic tables whose queries are the pipeline's own plans.

Generated from the table registry and the step plans, never written by hand, so a new table, column,
description or step reaches the Snowflake version by running `mdslab run snowflake` again.

Why dynamic tables (not streams + tasks): each output of a plan is one SELECT over its inputs, which is
exactly what a dynamic table declares; Snowflake then refreshes it incrementally where the query allows
(``REFRESH_MODE = AUTO``), as the lab's incremental steps do, and orders the refreshes by their inputs, as
the DAG does. Bronze stays plain tables: what Snowpipe Streaming (or the Kafka connector) appends to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import sqlglot
from sqlglot import exp

from mdslab.errors import MdslabError
from mdslab.lakehouse import Layer, TableRegistry, TableSpec
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.steps import PLANS
from mdslab.workloads.snowflake.transpile import TARGET_DIALECT, TranspileError, plan_statement, snowflake_select

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,254}")
TARGET_LAG = re.compile(r"(?:[1-9][0-9]* (?:seconds?|minutes?|hours?|days?)|DOWNSTREAM)", re.IGNORECASE)
TAG_SCHEMA = "governance"


class SnowflakeProjectError(MdslabError, ValueError):
    """A setting the Snowflake project cannot be generated with (the message names it and why)."""


@dataclass(frozen=True)
class ProjectSettings:
    """Names the generated SQL uses; unquoted Snowflake identifiers, so they are checked as such."""

    database: str = "MDSLAB"
    warehouse: str = "MDSLAB_WH"
    target_lag: str = "15 minutes"
    stage_url: str = "s3://mdslab-raw/"

    def __post_init__(self) -> None:
        for name in ("database", "warehouse"):
            value = getattr(self, name)
            if not IDENTIFIER.fullmatch(value):
                raise SnowflakeProjectError(
                    f"--{name} {value!r} is not a Snowflake identifier (a letter or _, then letters, digits, _ or $)"
                )
        if not TARGET_LAG.fullmatch(self.target_lag):
            raise SnowflakeProjectError(
                f"--target-lag {self.target_lag!r} is not a Snowflake target lag: use '<n> seconds|minutes|hours|days' "
                "(at least 60 seconds in Snowflake) or DOWNSTREAM"
            )
        if not self.stage_url.startswith("s3://"):
            raise SnowflakeProjectError(f"--stage-url {self.stage_url!r} must be an s3:// URL (the lake's bucket)")


def literal(text: str) -> str:
    """A Snowflake string literal: backslashes are escapes there, quotes are doubled."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def snowflake_type(arrow: pa.DataType) -> str:
    """The Snowflake type that holds an Arrow type's values without loss (as the lab writes them)."""
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "VARCHAR"
    if pa.types.is_boolean(arrow):
        return "BOOLEAN"
    if pa.types.is_integer(arrow):
        return "BIGINT" if arrow.bit_width == 64 else "INTEGER"
    if pa.types.is_floating(arrow):
        return "DOUBLE"
    if pa.types.is_decimal(arrow):
        return f"NUMBER({arrow.precision}, {arrow.scale})"
    if pa.types.is_date(arrow):
        return "DATE"
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMP_TZ" if arrow.tz else "TIMESTAMP_NTZ"
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return "ARRAY"
    if pa.types.is_struct(arrow) or pa.types.is_map(arrow):
        return "OBJECT"
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow):
        return "BINARY"
    raise SnowflakeProjectError(f"no Snowflake type for the Arrow type {arrow}")


def _tags(spec: TableSpec, column: str) -> str:
    tags = spec.column_tags.get(column, ())
    return f" WITH TAG ({TAG_SCHEMA}.classification = {literal(', '.join(tags))})" if tags else ""


def _comment(spec: TableSpec, column: str) -> str:
    doc = spec.column_docs.get(column)
    return f" COMMENT {literal(doc)}" if doc else ""


def _table_options(spec: TableSpec) -> str:
    cluster = f" CLUSTER BY ({', '.join(spec.partition_by)})" if spec.partition_by else ""
    owner = f" WITH TAG ({TAG_SCHEMA}.owner = {literal(spec.owner)})"
    return f"{cluster}{owner} COMMENT = {literal(spec.description)}"


def table_ddl(spec: TableSpec) -> str:
    """``CREATE TABLE`` for a table the lab writes itself (bronze, and outputs of no SQL step)."""
    columns = ",\n  ".join(
        f"{f.name} {snowflake_type(f.type)}{'' if f.nullable else ' NOT NULL'}{_tags(spec, f.name)}"
        f"{_comment(spec, f.name)}"
        for f in spec.schema
    )
    return f"CREATE TABLE IF NOT EXISTS {spec.name} (\n  {columns}\n){_table_options(spec)}"


def output_columns(select_sql: str) -> list[str]:
    """The names of a SELECT's columns, in order (a dynamic table's column list is by position)."""
    tree = sqlglot.parse_one(select_sql, read=TARGET_DIALECT)
    assert isinstance(tree, exp.Query)
    return list(tree.named_selects)


def dynamic_table_ddl(spec: TableSpec, select_sql: str, settings: ProjectSettings) -> str:
    """``CREATE DYNAMIC TABLE`` for an output of a SQL step: its columns documented, its query the plan's."""
    columns = output_columns(select_sql)
    if sorted(columns) != sorted(spec.schema.names):
        raise TranspileError(
            f"{spec.name}: the step's query yields {sorted(set(columns) ^ set(spec.schema.names))} "
            "differently from the registered schema"
        )
    listed = ",\n  ".join(f"{name}{_tags(spec, name)}{_comment(spec, name)}" for name in columns)
    return (
        f"CREATE OR REPLACE DYNAMIC TABLE {spec.name} (\n  {listed}\n)\n"
        f"TARGET_LAG = {literal(settings.target_lag) if settings.target_lag.upper() != 'DOWNSTREAM' else 'DOWNSTREAM'}"
        f" WAREHOUSE = {settings.warehouse} REFRESH_MODE = AUTO{_table_options(spec)}\nAS\n{select_sql}"
    )


def setup_statements(registry: TableRegistry, settings: ProjectSettings) -> list[str]:
    """The database, warehouse, one schema per layer, the governance tags, the stage on the lake."""
    layers = [layer.value for layer in Layer if any(spec.layer is layer for spec in registry)]
    return [
        f"CREATE DATABASE IF NOT EXISTS {settings.database}",
        f"USE DATABASE {settings.database}",
        f"CREATE WAREHOUSE IF NOT EXISTS {settings.warehouse} WAREHOUSE_SIZE = XSMALL AUTO_SUSPEND = 60 "
        "AUTO_RESUME = TRUE",
        *(f"CREATE SCHEMA IF NOT EXISTS {layer}" for layer in [TAG_SCHEMA, *layers]),
        f"CREATE TAG IF NOT EXISTS {TAG_SCHEMA}.classification "
        "COMMENT = 'What a column holds, as the lab classifies it (e.g. pii.email)'",
        f"CREATE TAG IF NOT EXISTS {TAG_SCHEMA}.owner COMMENT = 'The team that maintains the table'",
        # the lab's raw bucket, for COPY INTO / Snowpipe from files; the storage integration is the
        # account administrator's (an IAM role), so it is named here and created by them
        f"CREATE STAGE IF NOT EXISTS bronze.lake_raw URL = {literal(settings.stage_url)} "
        "STORAGE_INTEGRATION = mdslab_lake FILE_FORMAT = (TYPE = PARQUET)",
    ]


@dataclass(frozen=True)
class SnowflakeFile:
    name: str
    purpose: str
    statements: tuple[str, ...]

    def text(self) -> str:
        return f"-- {self.purpose}\n-- generated by `mdslab run snowflake`; do not edit\n\n" + "".join(
            f"{statement};\n\n" for statement in self.statements
        )


def step_selects() -> dict[str, tuple[str, str]]:
    """Every SQL step's output: lake table -> (the plan's DuckDB statement, its Snowflake SELECT)."""
    selects: dict[str, tuple[str, str]] = {}
    for factory in PLANS.values():
        plan = factory(DUCKDB)
        for output in plan.outputs:
            selects[output] = (plan_statement(plan, output), snowflake_select(plan, output))
    return selects


def project_files(registry: TableRegistry, settings: ProjectSettings) -> list[SnowflakeFile]:
    """The project, file by file, in the order a person runs them."""
    selects = step_selects()

    def ddl(specs: Iterable[TableSpec]) -> tuple[str, ...]:
        return tuple(
            dynamic_table_ddl(spec, selects[spec.name][1], settings) if spec.name in selects else table_ddl(spec)
            for spec in specs
        )

    by_layer = {layer: [spec for spec in registry if spec.layer is layer] for layer in Layer}
    return [
        SnowflakeFile("00_setup.sql", "database, warehouse, schemas, governance tags, the lake's stage",
                      tuple(setup_statements(registry, settings))),
        SnowflakeFile("01_bronze.sql", "bronze: raw events as received (Snowpipe Streaming / Kafka connector targets)",
                      ddl(by_layer[Layer.BRONZE])),
        SnowflakeFile("02_silver.sql", "silver: typed, deduplicated, conformed; quarantine (dynamic tables)",
                      ddl(by_layer[Layer.SILVER])),
        SnowflakeFile("03_gold.sql", "gold: marts and features (dynamic tables); scores written by Snowpark",
                      ddl(by_layer[Layer.GOLD])),
    ]  # fmt: skip


def write_project(files: list[SnowflakeFile], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file in files:
        path = folder / file.name
        path.write_text(file.text())
        written.append(path)
    return written
