"""Read-only SQL over a built lake (`mdslab sql`, `POST /v1/sql`): the rows the tables hold, time travel
by version, and every way a query can be wrong refused in one line (a 4xx in the API) with nothing run."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr

from mdslab.lakehouse.sql import QueryTimeoutError, SqlError, run_duckdb
from mdslab.settings import Settings
from tests.conftest import invoke_cli
from tests.integration.conftest import SPEND, Built

pytestmark = pytest.mark.integration

SLOW = "SELECT count(*) FROM range(100000000000) a, range(1000) b"  # runs for minutes unless cancelled


def test_a_join_of_gold_and_bronze_gives_what_the_tables_hold(built: Built) -> None:
    result = run_duckdb(
        built.lake,
        f"SELECT c.segment, round(sum(d.total_usd), 2) AS usd FROM {SPEND} d "
        "JOIN bronze.customers c USING (customer_id) GROUP BY 1 ORDER BY 1",
    )
    spend = built.lake.read_current(SPEND, columns=["customer_id", "total_usd"])
    customers = built.lake.read_table("bronze.customers", columns=["customer_id", "segment"])
    expected = (
        spend.join(customers, "customer_id").group_by("segment").aggregate([("total_usd", "sum")]).sort_by("segment")
    )
    assert result.rows.column("segment").to_pylist() == expected.column("segment").to_pylist()
    assert result.rows.column("usd").to_pylist() == pytest.approx(expected.column("total_usd_sum").to_pylist())
    current = built.lake.current_version(SPEND)
    assert [ref.view for ref in result.tables] == [
        f"{SPEND}@v{current}",
        f"bronze.customers@v{built.lake.version('bronze.customers')}",
    ]
    assert not result.truncated


def test_a_version_reads_that_snapshot(built: Built) -> None:
    first = built.first_spend_version
    counts = run_duckdb(
        built.lake,
        f"SELECT (SELECT count(*) FROM {SPEND}@v{first}) AS then, (SELECT count(*) FROM {SPEND}) AS now",
    ).rows.to_pylist()[0]
    assert counts["then"] == built.lake.row_count(SPEND, version=first)
    assert counts["now"] == built.lake.row_count(SPEND, version=built.lake.current_version(SPEND))
    assert counts["now"] > counts["then"]


def test_names_in_strings_and_comments_are_left_alone_and_the_limit_truncates(built: Built) -> None:
    literal = run_duckdb(built.lake, "SELECT 'gold.nope@v9' AS s -- silver.nothing\n")
    assert literal.rows.column("s").to_pylist() == ["gold.nope@v9"] and literal.tables == ()
    first_five = run_duckdb(built.lake, "SELECT event_id FROM silver.transactions", limit=5)
    assert first_five.rows.num_rows == 5 and first_five.truncated


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("SELECT * FROM gold.daily_spnd", "unknown table gold.daily_spnd: did you mean gold.daily_spend?"),
        (f"SELECT * FROM {SPEND}@v999", f"{SPEND}@v999 does not exist: the table has versions 0.."),
        (f"SELECT * FROM {SPEND}@3", "a version is written @v<number>"),
        ("SELECT * FROM gold.claims_features_nothing", "unknown table gold.claims_features_nothing"),
        ("CREATE TABLE t AS SELECT 1", "the lake is read-only here: only SELECT queries run (this is CREATE)"),
        (f"INSERT INTO {SPEND} SELECT * FROM {SPEND}", "only SELECT queries run (this is INSERT)"),
        (f"COPY (SELECT * FROM {SPEND}) TO '/tmp/out.csv'", "only SELECT queries run (this is COPY)"),
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("SELECT 1; SELECT 2", "one statement per query, got 2"),
        ("SELEC 1", 'syntax error at or near "SELEC"'),
        ("SELECT nope FROM silver.transactions", 'column "nope" not found'),
        ("  ", "the query is empty"),
    ],
)
def test_a_wrong_query_is_refused_in_one_line(built: Built, query: str, words: str) -> None:
    with pytest.raises(SqlError) as refused:
        run_duckdb(built.lake, query)
    assert words in str(refused.value) and "\n" not in str(refused.value)


def test_a_query_over_its_time_is_cancelled(built: Built) -> None:
    with pytest.raises(QueryTimeoutError, match=r"longer than 0.5 s and was cancelled"):
        run_duckdb(built.lake, SLOW, timeout_s=0.5)


def _cli(settings: Settings, *args: str) -> Any:
    return invoke_cli(settings, "sql", *args)


def test_the_command_prints_and_writes_each_format(built: Built, tmp_path: Path) -> None:
    query = f"SELECT customer_id, total_usd FROM {SPEND} ORDER BY customer_id, total_usd"
    expected = built.lake.read_current(SPEND, columns=["customer_id", "total_usd"]).sort_by(
        [("customer_id", "ascending"), ("total_usd", "ascending")]
    )
    shown = _cli(built.settings, query, "--limit", "3")
    assert shown.exit_code == 0, shown.output
    assert expected.column("customer_id")[0].as_py() in shown.stdout
    assert "first 3 rows (there are more: --limit raises it)" in shown.output and f"read {SPEND}@v" in shown.output

    csv = _cli(built.settings, query, "--format", "csv", "--limit", "100000")
    assert csv.exit_code == 0, csv.output
    assert pa_csv.read_csv(io.BytesIO(csv.stdout.encode())).column("total_usd").to_pylist() == pytest.approx(
        expected.column("total_usd").to_pylist()
    )
    as_json = _cli(built.settings, query, "--format", "json", "--limit", "2")
    assert [row["customer_id"] for row in json.loads(as_json.stdout)] == expected.column("customer_id").to_pylist()[:2]
    parquet = tmp_path / "spend.parquet"
    written = _cli(built.settings, query, "--format", "parquet", "--output", str(parquet), "--limit", "100000")
    assert written.exit_code == 0 and f"written to {parquet}" in written.output, written.output
    assert pq.read_table(parquet).num_rows == expected.num_rows


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["SELECT * FROM gold.nope"], "error: unknown table gold.nope"),
        (["SELECT 1", "--format", "parquet"], "--format parquet writes a file: give --output FILE"),
        (["SELECT 1", "--output", "x.csv"], "--format table prints to the terminal"),
        (["SELECT 1", "--limit", "0"], "the row limit must be at least 1 (got 0)"),
        (["SELECT 1", "--timeout", "0"], "the timeout must be more than 0 s"),
        (["SELECT 1", "--format", "xml"], "Invalid value for '--format'"),
    ],
)
def test_the_command_refuses_in_one_line(built: Built, args: list[str], words: str) -> None:
    refused = _cli(built.settings, *args)
    assert refused.exit_code != 0 and words in " ".join(refused.output.split()), refused.output


def test_the_api_answers_json_and_arrow_and_refuses_with_4xx(built: Built) -> None:
    from fastapi.testclient import TestClient

    from mdslab.api.app import create_app

    api = built.settings.api.model_copy(update={"api_key": SecretStr("k"), "sql_max_rows": 50, "sql_timeout_s": 1.0})
    key = {"X-API-Key": "k"}
    query = f"SELECT customer_id, spend_date, total_usd FROM {SPEND} ORDER BY ALL"
    with TestClient(create_app(built.settings.model_copy(update={"api": api}))) as client:
        answer = client.post("/v1/sql", json={"query": query, "limit": 4}, headers=key)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (
            body["row_count"] == 4
            and body["truncated"]
            and body["tables"] == [f"{SPEND}@v{built.lake.current_version(SPEND)}"]
        )
        assert [column["name"] for column in body["columns"]] == ["customer_id", "spend_date", "total_usd"]
        expected = built.lake.read_current(SPEND, columns=["customer_id", "spend_date", "total_usd"])
        expected = expected.sort_by([(name, "ascending") for name in expected.column_names])
        assert body["rows"][0]["spend_date"] == expected.column("spend_date")[0].as_py().isoformat()

        capped = client.post("/v1/sql", json={"query": query, "limit": 10_000}, headers=key).json()
        assert capped["row_count"] == 50 and capped["truncated"]  # the server's limit wins
        arrow = client.post(
            "/v1/sql", json={"query": query}, headers={**key, "Accept": "application/vnd.apache.arrow.stream"}
        )
        assert arrow.status_code == 200 and arrow.headers["x-mdslab-truncated"] == "true"
        table = pa.ipc.open_stream(arrow.content).read_all()
        assert table.num_rows == 50 and pc.sum(table.column("total_usd")).as_py() == pytest.approx(
            pc.sum(expected.column("total_usd").slice(0, 50)).as_py()
        )

        for body, code, words in (
            ({"query": "SELECT * FROM gold.nope"}, 400, "unknown table gold.nope"),
            ({"query": "DROP TABLE x"}, 400, "only SELECT queries run (this is DROP)"),
            ({"query": SLOW}, 408, "longer than 1 s and was cancelled"),
            ({"query": ""}, 422, "query"),
            ({"query": "SELECT 1", "limit": 0}, 422, "limit"),
        ):
            refused = client.post("/v1/sql", json=body, headers=key)
            assert refused.status_code == code and words in refused.text, (body, refused.text)
        assert client.post("/v1/sql", json={"query": "SELECT 1"}).status_code == 401


def test_spark_runs_the_same_text_to_the_same_rows(built: Built, spark: Any) -> None:
    from mdslab.workloads.sql_on_spark import run_spark_sql

    query = (
        f"SELECT c.segment, count(*) AS days, round(sum(d.total_usd), 2) AS usd FROM {SPEND} d "
        f"JOIN bronze.customers c ON d.customer_id = c.customer_id "
        f"WHERE d.spend_date >= (SELECT min(spend_date) FROM {SPEND}@v{built.first_spend_version}) "
        "GROUP BY 1 ORDER BY 1"
    )
    on_spark = run_spark_sql(spark, built.lake, query, limit=100, timeout_s=300)
    on_duckdb = run_duckdb(built.lake, query)
    assert on_spark.rows.column("segment").to_pylist() == on_duckdb.rows.column("segment").to_pylist()
    assert on_spark.rows.column("days").to_pylist() == on_duckdb.rows.column("days").to_pylist()
    assert on_spark.rows.column("usd").to_pylist() == pytest.approx(on_duckdb.rows.column("usd").to_pylist())
    assert on_spark.tables == on_duckdb.tables

    with pytest.raises(SqlError, match=r"only SELECT queries run \(this is INSERT\)"):
        run_spark_sql(spark, built.lake, f"INSERT INTO {SPEND} SELECT * FROM {SPEND}", limit=10, timeout_s=60)
    with pytest.raises(SqlError) as unknown_column:
        run_spark_sql(spark, built.lake, f"SELECT nope FROM {SPEND}", limit=10, timeout_s=60)
    assert "nope" in str(unknown_column.value) and "\n" not in str(unknown_column.value)
    with pytest.raises(QueryTimeoutError, match=r"longer than 2 s and was cancelled"):
        slow = "SELECT sum(a.id * b.id) AS s FROM range(100000000) a CROSS JOIN range(100000) b"  # Spark folds count(*)
        run_spark_sql(spark, built.lake, slow, limit=10, timeout_s=2)
    again = run_spark_sql(spark, built.lake, f"SELECT count(*) AS n FROM {SPEND}", limit=10, timeout_s=300)
    assert again.rows.column("n").to_pylist() == [
        built.lake.row_count(SPEND, version=built.lake.current_version(SPEND))
    ]
