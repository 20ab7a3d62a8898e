"""Reference data in PostgreSQL (the operational source, as in the seed project).

Customers, merchants and policies live in schema ``reference``; their DDL is derived from the
contracts. The simulator upserts into it; the pipeline's first step snapshots it into bronze.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import psycopg
import pyarrow as pa
from psycopg import sql
from pydantic import BaseModel

from mdslab import database
from mdslab.settings import PostgresSettings
from mdslab.workloads.contracts import ColumnKind, Customer, Merchant, Policy, field_rules

SCHEMA = "reference"
SQL_TYPES: dict[ColumnKind, str] = {
    "string": "text",
    "integer": "bigint",
    "float": "double precision",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
}


@dataclass(frozen=True)
class ReferenceTable:
    name: str
    model: type[BaseModel]

    @property
    def key(self) -> str:
        return field_rules(self.model)[0].name

    @property
    def columns(self) -> list[str]:
        return [rule.name for rule in field_rules(self.model)]


REFERENCE_TABLES = (
    ReferenceTable("customers", Customer),
    ReferenceTable("merchants", Merchant),
    ReferenceTable("policies", Policy),
)


def ddl(table: ReferenceTable) -> sql.Composed:
    columns: list[sql.Composable] = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(rule.name),
            sql.SQL(SQL_TYPES[rule.kind]),
            sql.SQL(" NOT NULL" if rule.required else ""),
        )
        for rule in field_rules(table.model)
    ]
    columns.append(sql.SQL("updated_at timestamptz NOT NULL DEFAULT now()"))
    columns.append(sql.SQL("PRIMARY KEY ({})").format(sql.Identifier(table.key)))
    return sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} ({})").format(
        sql.Identifier(SCHEMA), sql.Identifier(table.name), sql.SQL(", ").join(columns)
    )


def ensure_schema(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
    for table in REFERENCE_TABLES:
        conn.execute(ddl(table))


def upsert(pg: PostgresSettings, tables: dict[str, pa.Table]) -> dict[str, int]:
    """Insert or update reference rows by key (COPY into a temp table, then one INSERT .. ON CONFLICT).

    Rows whose values did not change are not touched, so ``updated_at`` only moves on real changes.
    Returns rows inserted or changed per table.
    """
    changed: dict[str, int] = {}
    with database.connect(pg) as conn:
        ensure_schema(conn)
        for table in REFERENCE_TABLES:
            data = tables.get(table.name)
            if data is None:
                continue
            columns = table.columns
            staging = sql.Identifier(f"staging_{table.name}")
            target = sql.Identifier(SCHEMA, table.name)
            column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
            conn.execute(
                sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(staging, target)
            )
            with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, column_list)) as copy:
                for row in data.select(columns).to_pylist():
                    copy.write_row([row[column] for column in columns])
            updates = sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in [*columns[1:], "updated_at"]
            )
            differs = sql.SQL(" OR ").join(
                sql.SQL("{0}.{1} IS DISTINCT FROM EXCLUDED.{1}").format(sql.Identifier(table.name), sql.Identifier(c))
                for c in columns[1:]
            )
            result = conn.execute(
                sql.SQL(
                    "INSERT INTO {target} AS {alias} ({cols}) SELECT {cols} FROM {staging} "
                    "ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE {differs}"
                ).format(
                    target=target,
                    alias=sql.Identifier(table.name),
                    cols=column_list,
                    staging=staging,
                    key=sql.Identifier(table.key),
                    updates=updates,
                    differs=differs,
                )
            )
            changed[table.name] = result.rowcount
    return changed


def read(pg: PostgresSettings, table: ReferenceTable, schema: pa.Schema) -> pa.Table:
    """The whole table, ordered by key, as Arrow with the given (contract-derived) schema."""
    columns = [name for name in schema.names if name in table.columns]
    with database.connect(pg) as conn:
        cursor = conn.execute(
            sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.Identifier(SCHEMA, table.name),
                sql.Identifier(table.key),
            )
        )
        rows = cursor.fetchall()
    arrays = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    return pa.table({name: pa.array(arrays[name], type=schema.field(name).type) for name in columns})


def fingerprint(data: pa.Table) -> str:
    """Content hash of a snapshot: the reference step's input 'version'."""
    digest = hashlib.sha256()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()[:16]
