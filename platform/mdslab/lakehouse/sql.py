"""Read-only SQL over the lakehouse: the consumption layer's query engine, on DuckDB over Delta snapshots.

A query names tables as the registry does (``gold.daily_spend``); ``name@vN`` reads version N of the
table (Delta time travel), a bare name the version readers see (audited tables: the one the quality gate
published). Each referenced snapshot is scanned through delta-rs's Arrow dataset, so DuckDB pushes
projections and filters into the Parquet reads and nothing is copied to disk.

Why the references are rewritten in the text rather than mapped to DuckDB schemas: the same text also runs
on Spark, where a temporary view cannot live in a schema called ``gold``, and ``@vN`` is no SQL dialect's
syntax. The rewrite works on DuckDB's own tokens, so a name inside a
string literal or a comment is left alone.

Read-only is enforced by the engine, not by looking at words: DuckDB parses the text and only a single
SELECT statement runs, on a connection whose file system access is switched off and locked before the
query starts (no COPY TO, no read_csv of local files, no ATTACH).
"""

from __future__ import annotations

import difflib
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from mdslab.errors import MdslabError
from mdslab.lakehouse.publications import Publication
from mdslab.lakehouse.registry import Layer
from mdslab.lakehouse.tables import Lakehouse, TableMissingError

DEFAULT_ROW_LIMIT = 10_000
DEFAULT_TIMEOUT_S = 60.0
_LAYERS = frozenset(layer.value for layer in Layer)
_VERSION = re.compile(r"v(\d+)")


class SqlError(MdslabError):
    """The query was refused or failed; the message says why in one line (what to fix)."""


class QueryTimeoutError(SqlError):
    """The query ran longer than its time limit and was cancelled."""


@dataclass(frozen=True)
class TableRef:
    """A table the query reads, at the version it reads."""

    table: str
    version: int

    @property
    def view(self) -> str:
        return f"{self.table}@v{self.version}"


@dataclass(frozen=True)
class ResolvedQuery:
    """The query with each table reference replaced by a quoted view name, and what each view reads."""

    text: str
    tables: tuple[TableRef, ...]
    opened: dict[TableRef, DeltaTable] = field(default_factory=dict, compare=False, repr=False)
    """Snapshots the lookup already opened (to learn a version), for the engine to scan as they are."""


@dataclass(frozen=True)
class QueryResult:
    rows: pa.Table
    truncated: bool  # more rows than the limit existed; ``rows`` holds the first ``limit``
    tables: tuple[TableRef, ...]
    seconds: float


def resolve(lake: Lakehouse, query: str, quote: Callable[[str], str]) -> ResolvedQuery:
    """Find every ``layer.table[@vN]`` reference, check it names a table and version the lake has, and
    replace it with ``quote(view)``; raises :class:`SqlError` naming an unknown table or version."""
    if not query.strip():
        raise SqlError("the query is empty: give a SELECT over the lake's tables (`mdslab tables` lists them)")
    tokens = _tokens(query)
    pieces: list[str] = []
    refs: dict[str, TableRef] = {}
    resolved: dict[tuple[str, str | None], TableRef] = {}
    lookup = _Lookup(lake)
    done = 0
    index = 0
    while index < len(tokens):
        matched = _reference_at(tokens, index)
        if matched is None:
            index += 1
            continue
        name, version_text, used = matched
        if (name, version_text) not in resolved:  # a table named twice is looked up once
            resolved[(name, version_text)] = _table_ref(lookup, name, version_text)
        ref = resolved[(name, version_text)]
        refs.setdefault(ref.view, ref)
        start, end = tokens[index][0], tokens[index + used - 1][1]
        pieces += [query[done:start], quote(ref.view)]
        done, index = end, index + used
    pieces.append(query[done:])
    return ResolvedQuery("".join(pieces), tuple(refs.values()), lookup.opened)


def run_duckdb(
    lake: Lakehouse, query: str, *, limit: int = DEFAULT_ROW_LIMIT, timeout_s: float = DEFAULT_TIMEOUT_S
) -> QueryResult:
    """Run a read-only query on DuckDB over the referenced snapshots; at most ``limit`` rows come back."""
    started = time.perf_counter()
    resolved = resolve(lake, query, duckdb_quote)
    con = duckdb.connect()
    timer = threading.Timer(timeout_s, con.interrupt)
    try:
        con.execute("SET TimeZone = 'UTC'")
        for ref in resolved.tables:
            snapshot = resolved.opened.get(ref) or lake.delta(ref.table, version=ref.version)
            con.register(ref.view, snapshot.to_pyarrow_dataset())
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        check_read_only(resolved.text, con)
        timer.start()
        rows, truncated = first_rows(con.sql(resolved.text).to_arrow_reader(), limit)
    except duckdb.InterruptException:
        raise QueryTimeoutError(f"the query ran longer than {timeout_s:g} s and was cancelled") from None
    except duckdb.Error as exc:
        raise SqlError(one_line(exc)) from None
    finally:
        timer.cancel()
        con.close()
    return QueryResult(rows, truncated, resolved.tables, time.perf_counter() - started)


def duckdb_quote(view: str) -> str:
    return '"' + view.replace('"', '""') + '"'


def check_limits(limit: int, timeout_s: float) -> None:
    """Refuse a limit or timeout that cannot be meant (the CLI and the API share these words)."""
    if limit < 1:
        raise SqlError(f"the row limit must be at least 1 (got {limit})")
    if not timeout_s > 0:
        raise SqlError(f"the timeout must be more than 0 s (got {timeout_s:g})")


def _tokens(query: str) -> list[tuple[int, int, str, str]]:
    """(start, end, type, text) of DuckDB's tokens; the end excludes whitespace before the next token."""
    try:
        raw = duckdb.tokenize(query)
    except duckdb.Error as exc:
        raise SqlError(one_line(exc)) from None
    spans = []
    for position, (start, kind) in enumerate(raw):
        stop = raw[position + 1][0] if position + 1 < len(raw) else len(query)
        text = query[start:stop].rstrip()
        spans.append((start, start + len(text), kind.name, text))
    return spans


def _reference_at(tokens: list[tuple[int, int, str, str]], index: int) -> tuple[str, str | None, int] | None:
    """``(table name, version text or None, tokens used)`` when a ``layer . table [@ vN]`` starts at
    ``index``, with no space inside it; else None."""
    window = tokens[index : index + 5]
    kinds = [token[2] for token in window]
    texts = [token[3] for token in window]
    if kinds[:3] != ["identifier", "operator", "identifier"] or texts[0].lower() not in _LAYERS or texts[1] != ".":
        return None
    if not _adjacent(window[:3]):
        return None
    name = f"{texts[0].lower()}.{texts[2].lower()}"
    if len(window) == 5 and texts[3] == "@" and _adjacent(window[2:]):
        return name, texts[4], 5
    if len(window) >= 4 and texts[3].startswith("@") and _adjacent(window[2:4]):
        return name, texts[3][1:], 4  # `@v3` read as one operator token
    return name, None, 3


def _adjacent(tokens: list[tuple[int, int, str, str]]) -> bool:
    return all(left[1] == right[0] for left, right in itertools.pairwise(tokens))


class _Lookup:
    """What one query's references need from the lake, each asked once: the publications are read once
    for all audited tables, and a table opened to learn its version is kept for the engine to scan.

    Why: opening a table replays its Delta log (10-40 ms on the lab's S3, measured), and reading the
    publications is another table read; for a query over a few small gold tables that was most of the
    time (bench/sql.py)."""

    def __init__(self, lake: Lakehouse) -> None:
        self.lake = lake
        self.opened: dict[TableRef, DeltaTable] = {}
        self._publications: dict[str, Publication] | None = None

    def current(self, name: str) -> int | None:
        """The version readers see (:meth:`Lakehouse.current_version`), opening an unaudited table once."""
        if self.lake.spec(name).audited:
            if self._publications is None:
                self._publications = self.lake.publications()
            found = self._publications.get(name)
            return found.version if found else None
        try:
            table = self.lake.delta(name)
        except TableMissingError:
            return None
        ref = TableRef(name, table.version())
        self.opened[ref] = table
        return ref.version

    def at(self, name: str, version: int) -> str | None:
        """Open version ``version`` of a table; why it could not be opened (no such table or version), or None."""
        try:
            self.opened[TableRef(name, version)] = self.lake.delta(name, version=version)
        except (TableMissingError, DeltaError) as exc:
            return one_line(exc)
        return None


def _table_ref(lookup: _Lookup, name: str, version_text: str | None) -> TableRef:
    lake = lookup.lake
    known = sorted(spec.name for spec in lake.registry)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}?" if close else "`mdslab tables` lists them"
        raise SqlError(f"unknown table {name}: {hint}")
    if version_text is None:
        current = lookup.current(name)
        if current is not None:
            return TableRef(name, current)
        latest = lake.version(name)
        if latest is None:
            raise SqlError(f"table {name} has not been built yet: `mdslab pipeline run` (or `mdslab demo`) builds it")
        raise SqlError(
            f"table {name} has been built but no build of it has passed the quality gate yet (`mdslab pipeline "
            f"check` says why); {name}@v{latest} reads the latest build anyway"
        )
    matched = _VERSION.fullmatch(version_text)
    if matched is None:
        latest = lake.version(name)
        raise SqlError(f"{name}@{version_text}: a version is written @v<number>, e.g. {name}@v{latest or 0}")
    version = int(matched.group(1))
    if (failed := lookup.at(name, version)) is not None:
        latest = lake.version(name)
        if latest is not None and version <= latest:
            raise SqlError(f"{name}@v{version} cannot be read: {failed}")
        has = f"versions 0..{latest}" if latest is not None else "no version yet"
        raise SqlError(f"{name}@v{version} does not exist: the table has {has}")
    return TableRef(name, version)


def check_read_only(text: str, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Refuse anything but one SELECT, as DuckDB's parser reads the text (also before Spark runs it)."""
    parser = con or duckdb.connect()
    try:
        statements = parser.extract_statements(text)
    except duckdb.Error as exc:
        raise SqlError(one_line(exc)) from None
    finally:
        if con is None:
            parser.close()
    if len(statements) != 1:
        raise SqlError(f"one statement per query, got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise SqlError(f"the lake is read-only here: only SELECT queries run (this is {kind.name})")


def first_rows(reader: pa.RecordBatchReader, limit: int) -> tuple[pa.Table, bool]:
    """The first ``limit`` rows, and whether there were more (read one batch past the limit at most)."""
    batches: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        batches.append(batch)
        rows += batch.num_rows
        if rows > limit:
            return pa.Table.from_batches(batches, reader.schema).slice(0, limit), True
    return pa.Table.from_batches(batches, reader.schema), False


def one_line(exc: Exception) -> str:
    """An engine's error as one line: its first line, with DuckDB's pointer to the place when it gives one."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:1] + [line for line in lines[1:2] if line.startswith(("LINE", "Did you mean"))])
