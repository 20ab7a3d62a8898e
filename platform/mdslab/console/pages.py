"""The console's pages other than the overview, each one library call: SQL (the engine of `mdslab sql` and
``POST /v1/sql``), a question (the chain `mdslab ask` builds), a table (`mdslab catalog show`) and the
lineage graph (the store `mdslab lineage` reads). Refusals come back as one line with a 4xx status; an
unknown table or dataset raises a 404 that names it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, status
from jinja2 import Environment

from mdslab.console.lineage_map import LineageMap, layout, neighbourhood
from mdslab.console.overview import READ_ERRORS
from mdslab.errors import MdslabError, ServiceUnavailableError
from mdslab.lakehouse import Lakehouse
from mdslab.lakehouse.registry import UnknownTableError
from mdslab.lakehouse.sql import QueryTimeoutError, SqlError, run_duckdb
from mdslab.llm.chain import LazyChain, RagAnswer
from mdslab.llm.store import IndexMissingError
from mdslab.settings import Settings
from mdslab.workloads.lineage.catalog import CatalogTable, TableState, find_table, table_state
from mdslab.workloads.lineage.columns import ColumnSource
from mdslab.workloads.lineage.recorded import Names, RecordedLineage, load_lineage
from mdslab.workloads.lineage.traversal import UnknownNodeError, resolve


@dataclass(frozen=True)
class SqlAnswer:
    status: int
    error: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    truncated: bool = False
    tables: list[str] = field(default_factory=list)
    seconds: float = 0.0
    limit: int = 0


def run_sql(settings: Settings, lake: Lakehouse, query: str) -> SqlAnswer:
    """The rows of a read-only query (at most ``MDSLAB_CONSOLE__SQL_MAX_ROWS``, cancelled after the API's
    ``MDSLAB_API__SQL_TIMEOUT_S``), or the engine's one-line refusal."""
    limit = settings.console.sql_max_rows
    try:
        result = run_duckdb(lake, query, limit=limit, timeout_s=settings.api.sql_timeout_s)
    except QueryTimeoutError as exc:
        return SqlAnswer(status.HTTP_408_REQUEST_TIMEOUT, str(exc))
    except SqlError as exc:
        return SqlAnswer(status.HTTP_400_BAD_REQUEST, str(exc))
    except ServiceUnavailableError as exc:
        return SqlAnswer(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))
    rows = [["" if value is None else str(value) for value in row.values()] for row in result.rows.to_pylist()]
    return SqlAnswer(
        status.HTTP_200_OK,
        None,
        result.rows.column_names,
        rows,
        result.truncated,
        [ref.view for ref in result.tables],
        result.seconds,
        limit,
    )


@dataclass(frozen=True)
class AskAnswer:
    status: int
    error: str | None = None
    answer: RagAnswer | None = None


def ask(chain: LazyChain, question: str) -> AskAnswer:
    """The grounded answer with its citations (the chain of `mdslab ask` and ``POST /v1/rag/query``); an
    empty index is one line naming the command that builds it."""
    try:
        return AskAnswer(status.HTTP_200_OK, answer=chain.get().ask(question.strip()))
    except (IndexMissingError, ServiceUnavailableError) as exc:
        return AskAnswer(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))
    except MdslabError as exc:
        return AskAnswer(status.HTTP_400_BAD_REQUEST, str(exc))


@dataclass(frozen=True)
class TablePage:
    entry: CatalogTable
    state: TableState | None
    column_sources: dict[str, tuple[ColumnSource, ...]]
    graph: LineageMap
    problems: list[str]


def table_page(settings: Settings, lake: Lakehouse, names: Names, entries: list[CatalogTable], name: str) -> TablePage:
    """`mdslab catalog show NAME` as a page, with its column lineage and its part of the lineage graph."""
    try:
        entry = find_table(entries, name)
    except UnknownTableError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    problems: list[str] = []
    graph = _recorded(settings, names, problems)
    state = None
    try:
        state = table_state(lake, graph, entry.name)
    except READ_ERRORS as exc:
        problems.append(f"lake: {exc}")
    drawn = layout(neighbourhood(graph.inputs, entry.name), focus=entry.name) if entry.name in graph.datasets else None
    return TablePage(
        entry,
        state,
        graph.columns.get(entry.name, {}),
        drawn or layout({}),
        problems,
    )


@dataclass(frozen=True)
class LineagePage:
    focus: str | None
    graph: LineageMap
    problems: list[str]


def lineage_page(settings: Settings, names: Names, focus: str | None) -> LineagePage:
    """The whole table-level graph, or the part of it one dataset is built from and feeds."""
    problems: list[str] = []
    graph = _recorded(settings, names, problems)
    if focus is None or not focus.strip():
        return LineagePage(None, layout(graph.inputs), problems)
    if problems:  # the store does not answer: nothing to look the dataset up in
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, problems[0])
    try:
        node = resolve(graph, focus)
    except UnknownNodeError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return LineagePage(node.table, layout(neighbourhood(graph.inputs, node.table), focus=node.table), [])


def _recorded(settings: Settings, names: Names, problems: list[str]) -> RecordedLineage:
    try:
        return load_lineage(settings.postgres, names)
    except READ_ERRORS as exc:
        problems.append(f"lineage store: {exc}")
        return RecordedLineage()


def age(seconds: float | None) -> str:
    """``95`` -> ``1.6 min``: how long ago, in the largest unit that fits."""
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{max(seconds, 0):.0f} s"


def when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def ago(moment: datetime | None) -> str:
    """``3.2 min ago`` (the full time goes in the cell's title)."""
    if moment is None:
        return ""
    stamp = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"{age((datetime.now(UTC) - stamp).total_seconds())} ago"


def number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int | float) else str(value)


def add_filters(env: Environment) -> None:
    """The templates' formatting: ages, times and thousands (sizes: Jinja's own ``filesizeformat``)."""
    env.filters |= {"age": age, "ago": ago, "when": when, "num": number}
