"""Registering the lab's tables in Trino (Compose profile `bi`): the statements come from the table registry,
are valid Trino SQL naming each table where the lab writes it, and the registration is idempotent, skips what
is not built yet and reports Trino's refusals and a missing or wrong server in one line.

No Trino runs here (it needs Docker or a JDK 24): Trino's client protocol is played by a stand-in HTTP
transport that follows the protocol's documented shape (``POST /v1/statement``, pages linked by ``nextUri``,
an ``error`` object on failure)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlglot
from sqlglot import exp
from typer.testing import CliRunner

from mdslab.cli.main import app
from mdslab.lakehouse import Lakehouse
from mdslab.lakehouse.trino import (
    READ_CATALOG,
    REGISTER_CATALOG,
    TrinoClient,
    TrinoError,
    register_tables,
    registration_sql,
    trino_name,
)
from mdslab.settings import LakeSettings
from mdslab.workloads.lake import build_registry

CALL = re.compile(
    rf"CALL {REGISTER_CATALOG}\.system\.register_table\(schema_name => '(?P<schema>[^']*)', "
    r"table_name => '(?P<table>[^']*)', table_location => '(?P<location>[^']*)'\)"
)


def test_the_registration_sql_is_trino_sql_for_every_registered_table() -> None:
    registry, lake = build_registry(), LakeSettings(raw_bucket="raw-b", curated_bucket="cur-b")
    statements = registration_sql(registry, lake)
    schemas = [s for s in statements if s.startswith("CREATE SCHEMA")]
    calls = [s for s in statements if s.startswith("CALL")]
    assert len(schemas) + len(calls) == len(statements)
    for statement in schemas:
        parsed = sqlglot.parse_one(statement, read="trino")
        assert isinstance(parsed, exp.Create) and parsed.args.get("exists"), statement
    assert [sqlglot.parse_one(s, read="trino").this.sql() for s in schemas] == [
        f"{REGISTER_CATALOG}.bronze",
        f"{REGISTER_CATALOG}.silver",
        f"{REGISTER_CATALOG}.gold",
    ]
    # sqlglot keeps a CALL opaque; the procedure invocation after it parses as a call with named arguments
    expected = {trino_name(spec): spec.uri(lake) for spec in registry}
    registered = {}
    for statement in calls:
        assert statement.startswith("CALL "), statement
        invocation = sqlglot.parse_one(statement.removeprefix("CALL "), read="trino")
        procedure = invocation.find(exp.Anonymous)
        assert procedure is not None and invocation.sql("trino") == statement.removeprefix("CALL "), statement
        assert invocation.sql("trino").startswith(f"{REGISTER_CATALOG}.system.register_table(")
        arguments = {kwarg.this.name: kwarg.expression for kwarg in procedure.expressions}
        assert set(arguments) == {"schema_name", "table_name", "table_location"}, statement
        assert all(isinstance(value, exp.Literal) and value.is_string for value in arguments.values()), statement
        registered[(arguments["schema_name"].name, arguments["table_name"].name)] = arguments["table_location"].name
    assert registered == expected  # every table, once, at the lab's location; nothing hand-listed
    assert {location.split("/")[2] for location in registered.values()} == {"raw-b", "cur-b"}
    # the names readers then use are plain Trino identifiers, read back the same
    for schema, table in registered:
        select = sqlglot.parse_one(f"SELECT * FROM {READ_CATALOG}.{schema}.{table} FOR VERSION AS OF 1", read="trino")
        source = select.find(exp.Table)
        assert source is not None and (source.catalog, source.db, source.name) == (READ_CATALOG, schema, table)


class TrinoStandIn:
    """Trino's client protocol over an httpx transport: every answer takes two pages (the rows on the
    second, behind ``nextUri``), as a real coordinator's often do."""

    def __init__(self, known: set[tuple[str, str]], refuse: str = "") -> None:
        self.known, self.refuse = known, refuse
        self.statements: list[str] = []
        self._pending: dict[str, dict[str, Any]] = {}

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["X-Trino-User"]
        if request.method == "POST":
            sql = request.content.decode()
            self.statements.append(sql)
            query = f"q{len(self.statements)}"
            if self.refuse and self.refuse in sql:
                self._pending[query] = {"error": {"message": "Table location is not a Delta table", "errorName": "X"}}
            elif "information_schema.tables" in sql:
                self._pending[query] = {"data": [list(name) for name in sorted(self.known)]}
            else:
                self._pending[query] = {"data": [[True]] if sql.startswith("CALL") else []}
            return httpx.Response(200, json={"id": query, "nextUri": f"http://trino.test/v1/statement/{query}/1"})
        query = request.url.path.split("/")[3]
        return httpx.Response(200, json={"id": query, **self._pending.pop(query)})


class LakeWithSomeTablesBuilt(Lakehouse):
    """The lab's registry; which tables exist is given (no S3 here)."""

    def __init__(self, built: set[str]) -> None:
        super().__init__(build_registry(), LakeSettings(), {})
        self.built = built

    def exists(self, name: str) -> bool:
        return name in self.built


def test_registration_registers_what_is_built_and_not_yet_known_and_is_idempotent() -> None:
    lake = LakeWithSomeTablesBuilt({"bronze.transactions", "silver.transactions", "gold.daily_spend"})
    trino = TrinoStandIn(known={("silver", "transactions")})
    client = TrinoClient("http://trino.test", http=httpx.Client(transport=httpx.MockTransport(trino.handle)))
    done = register_tables(client, lake)
    assert done.registered == ["bronze.transactions", "gold.daily_spend"]
    assert done.already == ["silver.transactions"]
    assert len(done.not_built) == len(lake.registry) - 3
    calls = [s for s in trino.statements if s.startswith("CALL")]
    assert [CALL.fullmatch(s)["table"] for s in calls] == ["transactions", "daily_spend"]  # type: ignore[index]

    trino.known |= {("bronze", "transactions"), ("gold", "daily_spend")}
    again = register_tables(client, lake)
    assert again.registered == [] and sorted(again.already) == sorted(lake.built)


def test_trinos_refusal_is_one_line_naming_the_statement() -> None:
    lake = LakeWithSomeTablesBuilt({"gold.daily_spend"})
    trino = TrinoStandIn(known=set(), refuse="daily_spend")
    client = TrinoClient("http://trino.test", http=httpx.Client(transport=httpx.MockTransport(trino.handle)))
    with pytest.raises(TrinoError, match=r"^Trino: Table location is not a Delta table \(in: CALL lake_register"):
        register_tables(client, lake)


@pytest.fixture(scope="module")
def not_trino() -> Iterator[str]:
    """A web server that is not Trino (answers every request with an HTML page)."""

    class Page(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("trino", "says"),
    [
        ("ftp://127.0.0.1:8090", "error: --trino 'ftp://127.0.0.1:8090' is not an http(s) address"),
        ("http://127.0.0.1:1", "error: Trino does not answer at http://127.0.0.1:1 (ConnectError): start the Compose"),
        ("{not_trino}", "answered 200 '<html>hello</html>', not Trino's protocol: is --trino Trino's address?"),
    ],
)
def test_bi_register_refuses_a_bad_or_absent_trino_in_one_line(
    trino: str, says: str, not_trino: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MDSLAB_STATE_DIR", str(tmp_path / "state"))
    result = CliRunner().invoke(
        app, ["bi", "register", "--trino", trino.format(not_trino=not_trino)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 1, result.output
    assert says in result.output and "Traceback" not in result.output
    assert result.output.count("\n") == 1, result.output


def test_bi_register_print_lists_the_sql_without_any_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MDSLAB_STATE_DIR", str(tmp_path / "state"))
    result = CliRunner().invoke(app, ["bi", "register", "--print"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines == [f"{statement};" for statement in registration_sql(build_registry(), LakeSettings())]
