"""The lab's tables in Trino (the Compose profile `bi`, under Superset): the statements that register every
table of the registry in a Trino Delta Lake catalog, and a small client of Trino's HTTP protocol to run them.

Invariant: Trino reads each table where the lab writes it, the same Delta log on the same S3. Registering
records a name and a location in Trino's metastore and copies nothing, so every later commit is visible in
Trino at once (Trino reads a table's *latest* commit; `FOR VERSION AS OF n` reads an earlier one). The names
are the registry's, ``<layer>.<table>`` becoming ``<catalog>.<layer>.<table>``: generated from it, never
listed by hand, so a new table reaches the BI tool by running the registration again.

Two catalogs share one metastore: :data:`REGISTER_CATALOG` may register tables and nothing reads through it;
:data:`READ_CATALOG`, the one Superset connects to, is read-only in Trino itself (``delta.security=READ_ONLY``),
as the lab's own SQL is: only the lab writes its tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from mdslab.errors import MdslabError, ServiceUnavailableError
from mdslab.lakehouse.registry import Layer, TableSpec
from mdslab.lakehouse.tables import Lakehouse
from mdslab.settings import LakeSettings

READ_CATALOG = "lake"
REGISTER_CATALOG = "lake_register"
TRINO_URL = "http://127.0.0.1:8090"  # where compose/docker-compose.yml publishes Trino on the host
TRINO_USER = "mdslab"


class TrinoError(MdslabError):
    """Trino refused a statement; the message is Trino's own."""


def trino_name(spec: TableSpec) -> tuple[str, str]:
    """(schema, table) of a registered table in Trino: the layer and the table's name within it."""
    _layer, _, table = spec.name.partition(".")
    return spec.layer.value, table


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _schemas(specs: Iterable[TableSpec]) -> list[str]:
    """The Trino schemas of ``specs``: their layers, bronze to gold."""
    present = {spec.layer for spec in specs}
    return [layer.value for layer in Layer if layer in present]


def schema_statements(specs: Iterable[TableSpec], catalog: str = REGISTER_CATALOG) -> list[str]:
    """One ``CREATE SCHEMA IF NOT EXISTS`` per layer that has tables, bronze to gold."""
    return [f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}" for schema in _schemas(specs)]


def register_statement(spec: TableSpec, lake: LakeSettings, catalog: str = REGISTER_CATALOG) -> str:
    """Trino's ``register_table`` call for one table, at the location the lab writes it."""
    schema, table = trino_name(spec)
    return (
        f"CALL {catalog}.system.register_table(schema_name => {_literal(schema)}, "
        f"table_name => {_literal(table)}, table_location => {_literal(spec.uri(lake))})"
    )


def registration_sql(specs: Iterable[TableSpec], lake: LakeSettings, catalog: str = REGISTER_CATALOG) -> list[str]:
    """Every statement that registers ``specs`` in an empty metastore: the schemas, then each table."""
    ordered = list(specs)
    return [*schema_statements(ordered, catalog), *(register_statement(spec, lake, catalog) for spec in ordered)]


class TrinoClient:
    """Runs statements through Trino's client protocol (``POST /v1/statement``, then ``nextUri`` until the
    query ends): the whole protocol this needs, on the HTTP client the lab already has."""

    def __init__(self, url: str, *, user: str = TRINO_USER, http: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self._user = user
        self._http = http or httpx.Client(timeout=60.0)

    def execute(self, sql: str) -> list[list[Any]]:
        """The rows of ``sql``; :class:`TrinoError` with Trino's message when it fails."""
        headers = {"X-Trino-User": self._user, "X-Trino-Source": "mdslab"}
        rows: list[list[Any]] = []
        try:
            response = self._http.post(f"{self.url}/v1/statement", content=sql.encode(), headers=headers)
            while True:
                page = self._page(response)
                if "error" in page:
                    raise TrinoError(f"Trino: {page['error'].get('message', page['error'])} (in: {sql[:120]})")
                rows.extend(page.get("data") or [])
                if not page.get("nextUri"):
                    return rows
                response = self._http.get(page["nextUri"], headers=headers)
        except httpx.TransportError as exc:
            raise ServiceUnavailableError(
                f"Trino does not answer at {self.url} ({exc.__class__.__name__}): start the Compose profile "
                "`bi` (compose/README.md) or pass --trino URL"
            ) from None

    def _page(self, response: httpx.Response) -> dict[str, Any]:
        """One page of Trino's answer; a server that does not speak Trino's protocol is named as such."""
        try:
            response.raise_for_status()
            page = response.json()
        except (httpx.HTTPStatusError, ValueError):
            raise TrinoError(
                f"{self.url} answered {response.status_code} {response.text[:80]!r}, not Trino's protocol: "
                "is --trino Trino's address?"
            ) from None
        if not isinstance(page, dict):
            raise TrinoError(
                f"{self.url} answered {str(page)[:80]!r}, not Trino's protocol: is --trino Trino's address?"
            )
        return page


@dataclass
class Registration:
    """What a registration did, per table name (``<layer>.<table>``)."""

    registered: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    not_built: list[str] = field(default_factory=list)  # no Delta table at its location yet


def register_tables(client: TrinoClient, lake: Lakehouse, catalog: str = REGISTER_CATALOG) -> Registration:
    """Register every table of ``lake``'s registry that exists and Trino does not know yet.

    Idempotent: run it again after new tables were built (a first `mdslab demo`, a new step). A table
    registered before keeps its registration; Trino follows its location, not a version."""
    specs = list(lake.registry)
    for statement in schema_statements(specs, catalog):
        client.execute(statement)
    layers = ", ".join(_literal(schema) for schema in _schemas(specs))
    known = {
        (schema, table)
        for schema, table in client.execute(
            f"SELECT table_schema, table_name FROM {catalog}.information_schema.tables WHERE table_schema IN ({layers})"
        )
    }
    done = Registration()
    for spec in specs:
        if trino_name(spec) in known:
            done.already.append(spec.name)
        elif not lake.exists(spec.name):
            done.not_built.append(spec.name)
        else:
            client.execute(register_statement(spec, lake.lake, catalog))
            done.registered.append(spec.name)
    return done
