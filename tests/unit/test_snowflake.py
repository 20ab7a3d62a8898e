"""The Snowflake deep dive's generated SQL: it parses as Snowflake's, uses Snowflake's functions, documents
every registered table, and each step's query gives the lab's rows when read back on DuckDB."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp
from typer.testing import CliRunner

from mdslab.cli.main import app
from mdslab.lakehouse import Layer, TableRegistry, TableSpec
from mdslab.workloads.lake import build_registry
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.steps import PLANS
from mdslab.workloads.simulator import SimulatedData, SimulationConfig, simulate
from mdslab.workloads.snowflake import transpile
from mdslab.workloads.snowflake.check import check_steps, unparsed_statements
from mdslab.workloads.snowflake.project import (
    ProjectSettings,
    SnowflakeFile,
    SnowflakeProjectError,
    project_files,
    snowflake_type,
    table_ddl,
)

from .test_gold_rules import labels
from .test_silver_rules import bronze

# Every function the generated SQL may call, each checked in Snowflake's SQL function reference
# (docs.snowflake.com/en/sql-reference/functions-all). A name sqlglot carried over from DuckDB and
# Snowflake lacks (REGEXP_FULL_MATCH, JSON_VALID, EPOCH_US...) fails the test below.
SNOWFLAKE_FUNCTIONS = frozenset({
    "ARRAY_CONTAINS", "ARRAY_SIZE", "ARRAY_TO_STRING", "ASIN", "AVG", "CAST", "CHARINDEX", "COALESCE", "CONCAT",
    "CONVERT_TIMEZONE", "COS", "COUNT", "DATEDIFF", "DATE_PART", "DATE_TRUNC", "FILTER", "HOUR", "IS_OBJECT",
    "JSON_EXTRACT_PATH_TEXT", "LAST_VALUE", "LEAD", "LENGTH", "MAX", "MIN", "OBJECT_KEYS", "POWER", "RADIANS",
    "REGEXP_LIKE", "ROUND", "ROW_NUMBER", "SIN", "SQRT", "SUBSTRING", "SUM", "TRANSFORM", "TRY_CAST",
    "TRY_PARSE_JSON"
})  # fmt: skip


@pytest.fixture(scope="module")
def files() -> list[SnowflakeFile]:
    return project_files(build_registry(), ProjectSettings())


@pytest.fixture(scope="module")
def data() -> SimulatedData:
    return simulate(SimulationConfig(transactions=8_000, seed=17))


def lake_inputs(data: SimulatedData, extra_payloads: list[str] = ()) -> dict[str, pa.Table]:  # type: ignore[assignment]
    """The bronze tables of a simulated run (plus raw payloads of one's own) and the silver the lab's plans
    build from them, by lake table name: what the gold steps read."""
    raw = data.transactions
    if extra_payloads:
        planted = pa.table(
            {"event_id": [f"planted-{i}" for i in range(len(extra_payloads))], "payload": list(extra_payloads)}
        )
        raw = pa.concat_tables([raw.select(["event_id", "payload"]), planted])
    tables = {
        "bronze.transactions": bronze(raw),
        "bronze.claims": bronze(data.claims),
        "bronze.customers": data.customers,
        "bronze.merchants": data.merchants,
        "bronze.policies": data.policies,
        "bronze.fraud_labels": labels(data),
    }
    for step in ("silver_transactions", "silver_claims"):
        plan = PLANS[step](DUCKDB)
        tables.update(run_duckdb(plan, {view: tables[table] for view, table in plan.inputs.items()}))
    return tables


def test_every_statement_parses_as_snowflake_sql(files: list[SnowflakeFile]) -> None:
    assert [file.name for file in files] == ["00_setup.sql", "01_bronze.sql", "02_silver.sql", "03_gold.sql"]
    assert unparsed_statements(files) == []
    for file in files:
        parsed = [tree for tree in sqlglot.parse(file.text(), read="snowflake") if tree is not None]
        assert len(parsed) == len(file.statements), file.name


def test_a_statement_sqlglot_cannot_parse_is_reported() -> None:
    """The parse check can fail: sqlglot falls back to an opaque command for grammar it does not know."""
    planted = SnowflakeFile("x.sql", "planted", ("CREATE STREAM s ON TABLE bronze.transactions", "SELECT 1"))
    assert unparsed_statements([planted]) == ["x.sql: CREATE STREAM s ON TABLE bronze.transactions"]
    assert unparsed_statements([SnowflakeFile("y.sql", "planted", ("SELECT (",))])[0].startswith("y.sql:")


def test_the_sql_calls_only_functions_snowflake_has(files: list[SnowflakeFile]) -> None:
    called: set[str] = set()
    for file in files:
        for statement in file.statements:
            text = sqlglot.parse_one(statement, read="snowflake").sql(dialect="snowflake")
            text = re.sub(r"'(?:[^']|'')*'", "''", text)  # not inside string literals
            called |= set(re.findall(r"\b([A-Z_][A-Z0-9_]*)\(", text))  # keywords print as `IN (`, `TAG (`
    assert called - SNOWFLAKE_FUNCTIONS == set()
    assert {"REGEXP_LIKE", "TRY_PARSE_JSON", "CONVERT_TIMEZONE", "LAST_VALUE"} <= called


def test_every_registered_table_is_created_once_with_its_documentation(files: list[SnowflakeFile]) -> None:
    registry = build_registry()
    created: dict[str, exp.Create] = {}
    for file in files[1:]:
        for statement in file.statements:
            tree = sqlglot.parse_one(statement, read="snowflake")
            assert isinstance(tree, exp.Create)
            name = tree.find(exp.Table)
            assert name is not None
            created[f"{name.db}.{name.name}"] = tree
    assert sorted(created) == sorted(spec.name for spec in registry)
    for spec in registry:
        tree = created[spec.name]
        comments = {
            column.name: column.find(exp.CommentColumnConstraint).this.name  # type: ignore[union-attr]
            for column in tree.find_all(exp.ColumnDef)
            if column.find(exp.CommentColumnConstraint)
        }
        assert comments == spec.column_docs, spec.name
        # a dynamic table lists bare names (its types come from the query) beside documented columns
        assert sorted(column.name for column in tree.this.expressions) == sorted(spec.schema.names), spec.name
        kind = "DYNAMIC" if spec.name in {o for f in PLANS.values() for o in f(DUCKDB).outputs} else None
        assert (tree.args.get("kind") == "TABLE") and (
            ("DYNAMIC" in tree.sql(dialect="snowflake")[:40]) == (kind == "DYNAMIC")
        ), spec.name
        assert f"COMMENT={transpile_literal(spec.description)}" in tree.sql(dialect="snowflake"), spec.name


def transpile_literal(text: str) -> str:
    return exp.Literal.string(text).sql(dialect="snowflake")


def test_quotes_and_backslashes_in_descriptions_survive() -> None:
    spec = TableSpec(
        "bronze.odd",
        Layer.BRONZE,
        "bronze/odd",
        pa.schema([pa.field("a", pa.string()), pa.field("b", pa.list_(pa.string()))]),
        "It's a path: C:\\lake\\odd; 'quoted'",
        column_docs={"a": "O'Brien's \\d{7} pattern"},
        column_tags={"a": ("pii.name",)},
    )
    tree = sqlglot.parse_one(table_ddl(spec), read="snowflake")
    column = next(c for c in tree.find_all(exp.ColumnDef) if c.name == "a")
    assert column.find(exp.CommentColumnConstraint).this.name == "O'Brien's \\d{7} pattern"  # type: ignore[union-attr]
    assert "It's a path: C:\\lake\\odd; 'quoted'" in {lit.name for lit in tree.find_all(exp.Literal)}
    assert "WITH TAG (governance.classification = 'pii.name')" in table_ddl(spec)
    assert snowflake_type(pa.list_(pa.string())) == "ARRAY"


def test_each_step_in_snowflake_sql_gives_the_labs_rows_on_duckdb(data: SimulatedData) -> None:
    tables = lake_inputs(data, ["[1, 2]", '"just text"', "{not json"])
    progress: list[str] = []
    checks = check_steps(tables.__getitem__, on_progress=progress.append)
    assert [check.table for check in checks] == [o for f in PLANS.values() for o in f(DUCKDB).outputs]
    for check in checks:
        assert check.equal, check
        assert check.expected_rows > 0, check.table
    assert any("silver_transactions" in line for line in progress)


def test_a_wrong_translation_is_caught(data: SimulatedData, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read IS_OBJECT as "is valid JSON" on the way back: the planted non-object payloads then pass as
    objects, and the check names the tables that differ."""
    tables = lake_inputs(data, ["[1, 2]", '"just text"'])
    monkeypatch.setitem(transpile.BACK_REWRITES, "is_object", "true")
    checks = {check.table: check for check in check_steps(tables.__getitem__, steps=["silver_transactions"])}
    quarantine = checks["silver.quarantine_transactions"]
    assert not quarantine.equal and quarantine.missing == 2, quarantine
    assert set(checks) == {"silver.transactions", "silver.quarantine_transactions"}


def test_an_unknown_step_is_named() -> None:
    with pytest.raises(ValueError, match="unknown SQL step silver_transaction; steps: silver_transactions"):
        check_steps(lambda _name: pa.table({}), steps=["silver_transaction"])


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"database": "my-db"}, "--database 'my-db' is not a Snowflake identifier"),
        ({"warehouse": "1wh"}, "--warehouse '1wh' is not a Snowflake identifier"),
        ({"target_lag": "5 minuts"}, "--target-lag '5 minuts' is not a Snowflake target lag"),
        ({"target_lag": "0 minutes"}, "--target-lag '0 minutes'"),
        ({"stage_url": "/tmp/lake"}, "--stage-url '/tmp/lake' must be an s3:// URL"),
    ],
)
def test_bad_project_settings_are_named(changes: dict[str, str], words: str) -> None:
    with pytest.raises(SnowflakeProjectError, match=re.escape(words)):
        ProjectSettings(**changes)


def test_settings_reach_the_sql() -> None:
    files = project_files(TableRegistry(list(build_registry())), ProjectSettings("LAB", "WH_2", "DOWNSTREAM"))
    text = "".join(file.text() for file in files)
    assert "USE DATABASE LAB" in text and "WAREHOUSE = WH_2" in text and "TARGET_LAG = DOWNSTREAM" in text
    assert "MDSLAB_WH" not in text


def test_the_command_writes_the_files_and_refuses_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["run", "snowflake", "--no-check", "--out", str(tmp_path / "sf")])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (tmp_path / "sf").iterdir()) == [
        "00_setup.sql", "01_bronze.sql", "02_silver.sql", "03_gold.sql",
    ]  # fmt: skip
    assert "CREATE OR REPLACE DYNAMIC TABLE silver.transactions" in (tmp_path / "sf" / "02_silver.sql").read_text()
    assert "not checked (--no-check)" in done.output
    refused = runner.invoke(app, ["run", "snowflake", "--no-check", "--target-lag", "soon", "--out", str(tmp_path)])
    assert refused.exit_code == 1
    assert "--target-lag 'soon' is not a Snowflake target lag" in refused.output
    assert len(refused.output.strip().splitlines()) <= 2
