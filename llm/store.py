"""The vector index: chunks, their sources and embeddings in PostgreSQL with pgvector (HNSW, cosine).

Written directly against pgvector rather than through langchain-postgres: the index needs typed source
columns to filter and cite by (table, version, row key, file, heading, date), a content hash per chunk
for incremental updates, and a version per indexing run, in one transaction with the chunk changes.
LangChain sees it through :class:`mdslab.llm.retriever.LakeRetriever`.
"""

from __future__ import annotations

import dataclasses
import json
import queue
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from mdslab.database import DatabaseUnavailableError, connect
from mdslab.errors import MdslabError, ServiceUnavailableError
from mdslab.llm.chunking import Chunk, content_hash
from mdslab.llm.embeddings import DIMENSIONS
from mdslab.settings import PostgresSettings

CHUNKS_TABLE = "chunks"  # <schema>.chunks: the index itself (text, sources, embeddings)
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 200  # ef_construction 64 gave recall@10 0.65 at 100k chunks, 200 0.72 (bench/rag.py)


class IndexMissingError(MdslabError):
    """Raised when the index has no chunks yet; the message names the command that builds it."""


@dataclass(frozen=True)
class RetrievalFilter:
    """Optional metadata filters applied inside the vector search (HNSW iterative scan keeps k results)."""

    kinds: tuple[str, ...] = ()
    table: str | None = None
    file: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def where(self) -> tuple[sql.Composable, list[Any]]:
        clauses: list[sql.Composable] = [sql.SQL("TRUE")]
        params: list[Any] = []
        if self.kinds:
            clauses.append(sql.SQL("kind = ANY(%s)"))
            params.append(list(self.kinds))
        if self.table:
            clauses.append(sql.SQL("source_table = %s"))
            params.append(self.table)
        if self.file:
            clauses.append(sql.SQL("file LIKE %s"))
            params.append(self.file.replace("%", r"\%") + "%")
        if self.date_from:
            clauses.append(sql.SQL("event_date >= %s"))
            params.append(self.date_from)
        if self.date_to:
            clauses.append(sql.SQL("event_date <= %s"))
            params.append(self.date_to)
        return sql.SQL(" AND ").join(clauses), params


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its source and cosine similarity to the question."""

    chunk_id: str
    text: str
    kind: str
    source_table: str | None
    table_version: int | None
    row_key: str | None
    file: str | None
    heading: str | None
    event_date: date | None
    similarity: float
    matched_identifier: bool = False

    @property
    def source(self) -> str:
        if self.file is not None:
            return f"{self.file} > {self.heading}" if self.heading else self.file
        return f"{self.source_table} v{self.table_version} [{self.row_key}]"


@dataclass(frozen=True)
class IndexVersion:
    version: int
    created_at: datetime
    embedding_model: str
    chunks: int
    embedded: int
    relabelled: int
    removed: int
    scopes: list[str]


@dataclass(frozen=True)
class ChunkChanges:
    """One indexing run's changes, applied atomically as a new index version."""

    embed: Sequence[Chunk]
    vectors: npt.NDArray[np.float32]
    relabel: Sequence[Chunk]
    remove: Sequence[str]
    scopes: Sequence[str]
    embedding_model: str


HIT_COLUMNS = sql.SQL(
    "chunk_id, content, kind, source_table, table_version, row_key, file, heading, event_date, "
    "1 - (embedding <=> %s) AS similarity"
)


class PgVectorStore:
    """Chunks in ``<schema>.chunks`` with an HNSW index; a small pool of connections, safe across threads."""

    def __init__(
        self,
        pg: PostgresSettings,
        *,
        schema: str = "rag",
        ef_search: int = 100,
        m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        pool_size: int = 4,
    ) -> None:
        self.pg = pg
        self.schema = schema
        self.ef_search = ef_search
        self.m = m
        self.ef_construction = ef_construction
        self._pool: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue(maxsize=pool_size)
        self._schema_ready = False

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    def _open(self) -> psycopg.Connection:
        try:
            conn = connect(self.pg)
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ServiceUnavailableError(
                f"PostgreSQL at {self.pg.host}:{self.pg.port} (the vector index) is unreachable ({reason}): "
                "start it with `mdslab up` or check MDSLAB_POSTGRES__*"
            ) from None
        conn.autocommit = True
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(self.ef_search)))
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        return conn

    def _checked_out(self) -> psycopg.Connection:
        """A pooled connection that still answers, else a new one: after PostgreSQL restarted every
        pooled connection is dead, and the first request to meet one failed (seen: a 500)."""
        while True:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                return self._open()
            try:
                conn.execute("SELECT 1")
                return conn
            except psycopg.Error:
                conn.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        conn = self._checked_out()
        broken = False
        try:
            yield conn
        except psycopg.OperationalError as exc:
            broken = True
            self.close()  # the others went with the server, most likely
            if isinstance(exc, DatabaseUnavailableError):
                raise
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise DatabaseUnavailableError(
                f"PostgreSQL at {self.pg.host}:{self.pg.port} (the vector index) lost the connection ({reason}): "
                "retry; `mdslab status` shows whether it is up (`mdslab up` starts it)"
            ) from exc
        finally:
            if broken or conn.closed:
                conn.close()
            else:
                try:
                    self._pool.put_nowait(conn)
                except queue.Full:
                    conn.close()

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        chunks, versions = self._table(CHUNKS_TABLE), self._table("index_versions")
        statements = [
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)),
            sql.SQL(
                """CREATE TABLE IF NOT EXISTS {} (
                    version serial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(),
                    embedding_model text NOT NULL, chunks integer NOT NULL, embedded integer NOT NULL,
                    relabelled integer NOT NULL, removed integer NOT NULL, scopes text[] NOT NULL)"""
            ).format(versions),
            sql.SQL(
                """CREATE TABLE IF NOT EXISTS {} (
                    chunk_id text PRIMARY KEY, scope text NOT NULL, kind text NOT NULL,
                    content text NOT NULL, content_hash text NOT NULL, label_hash text NOT NULL,
                    source_table text, table_version bigint, row_key text, file text, heading text,
                    event_date date, metadata jsonb NOT NULL DEFAULT '{{}}',
                    embedding vector({}) NOT NULL,
                    lexemes tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED,
                    index_version integer NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"""
            ).format(chunks, sql.Literal(DIMENSIONS)),
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON {} USING hnsw (embedding vector_cosine_ops) "
                "WITH (m = {}, ef_construction = {})"
            ).format(chunks, sql.Literal(self.m), sql.Literal(self.ef_construction)),
            sql.SQL("CREATE INDEX IF NOT EXISTS chunks_lexemes ON {} USING gin (lexemes)").format(chunks),
            sql.SQL("CREATE INDEX IF NOT EXISTS chunks_scope ON {} (scope)").format(chunks),
        ]
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"mdslab-rag-schema:{self.schema}",))
            for statement in statements:
                conn.execute(statement)
        self._schema_ready = True

    def hashes(self, scopes: Iterable[str]) -> dict[str, tuple[str, str]]:
        """chunk id -> (content hash, label hash) of what is indexed in ``scopes``."""
        self.ensure_schema()
        with self.connection() as conn:
            rows = conn.execute(
                sql.SQL("SELECT chunk_id, content_hash, label_hash FROM {} WHERE scope = ANY(%s)").format(
                    self._table(CHUNKS_TABLE)
                ),
                (list(scopes),),
            ).fetchall()
        return {chunk_id: (content, label) for chunk_id, content, label in rows}

    def apply(self, changes: ChunkChanges) -> IndexVersion:
        """Write one run's changes and its version row in a single transaction: readers see the old
        index or the new one, and a crash leaves the old one."""
        self.ensure_schema()
        chunks, versions = self._table(CHUNKS_TABLE), self._table("index_versions")
        upsert = sql.SQL(
            """INSERT INTO {} (chunk_id, scope, kind, content, content_hash, label_hash, source_table, table_version,
                               row_key, file, heading, event_date, metadata, embedding, index_version)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (chunk_id) DO UPDATE SET scope = EXCLUDED.scope, kind = EXCLUDED.kind,
                 content = EXCLUDED.content, content_hash = EXCLUDED.content_hash, label_hash = EXCLUDED.label_hash,
                 source_table = EXCLUDED.source_table, table_version = EXCLUDED.table_version,
                 row_key = EXCLUDED.row_key, file = EXCLUDED.file, heading = EXCLUDED.heading,
                 event_date = EXCLUDED.event_date, metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding,
                 index_version = EXCLUDED.index_version, updated_at = now()"""
        ).format(chunks)
        relabel = sql.SQL(
            """UPDATE {} SET label_hash = %s, table_version = %s, event_date = %s, metadata = %s, heading = %s,
                 file = %s, updated_at = now() WHERE chunk_id = %s"""
        ).format(chunks)
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"mdslab-rag-index:{self.schema}",))
            version = conn.execute(
                sql.SQL(
                    "INSERT INTO {} (embedding_model, chunks, embedded, relabelled, removed, scopes) "
                    "VALUES (%s, 0, %s, %s, %s, %s) RETURNING version"
                ).format(versions),
                (changes.embedding_model, len(changes.embed), len(changes.relabel), len(changes.remove),
                 list(changes.scopes)),
            ).fetchone()[0]  # type: ignore[index]  # fmt: skip
            with conn.cursor() as cursor:
                cursor.executemany(
                    upsert,
                    [
                        (*_row(chunk), vector, version)
                        for chunk, vector in zip(changes.embed, changes.vectors, strict=True)
                    ],
                )
                cursor.executemany(
                    relabel,
                    [
                        (
                            label_hash(c),
                            c.document.table_version,
                            c.document.event_date,
                            _metadata(c),
                            c.document.heading,
                            c.document.file,
                            c.chunk_id,
                        )
                        for c in changes.relabel
                    ],
                )
            if changes.remove:
                conn.execute(sql.SQL("DELETE FROM {} WHERE chunk_id = ANY(%s)").format(chunks), (list(changes.remove),))
            total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(chunks)).fetchone()[0]  # type: ignore[index]
            conn.execute(sql.SQL("UPDATE {} SET chunks = %s WHERE version = %s").format(versions), (total, version))
        with self.connection() as conn:
            # fresh statistics: before autovacuum analyses the table, the planner walked the HNSW graph with
            # a text filter for identifier lookups (55 ms) instead of using the GIN index (1 ms)
            conn.execute(sql.SQL("ANALYZE {}").format(chunks))
        found = self.version()
        assert found is not None
        return found

    def version(self) -> IndexVersion | None:
        """The newest index version, or None before the first indexing run."""
        self.ensure_schema()
        with self.connection() as conn:
            row = conn.execute(
                sql.SQL(
                    "SELECT version, created_at, embedding_model, chunks, embedded, relabelled, removed, scopes "
                    "FROM {} ORDER BY version DESC LIMIT 1"
                ).format(self._table("index_versions"))
            ).fetchone()
        return IndexVersion(*row) if row else None

    def scopes(self) -> list[str]:
        """The scopes the index holds (``tables``, ``docs:<folder>``)."""
        self.ensure_schema()
        with self.connection() as conn:
            rows = conn.execute(sql.SQL("SELECT DISTINCT scope FROM {} ORDER BY 1").format(self._table(CHUNKS_TABLE)))
            return [scope for (scope,) in rows.fetchall()]

    def summary(self) -> list[tuple[str, str, int, int | None]]:
        """(kind, table or file, chunks, newest table version) for ``mdslab rag status``."""
        self.ensure_schema()
        query = sql.SQL(
            "SELECT kind, coalesce(source_table, file), count(*), max(table_version) FROM {} "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ).format(self._table(CHUNKS_TABLE))
        with self.connection() as conn:
            return [
                (kind, source, int(count), version) for kind, source, count, version in conn.execute(query).fetchall()
            ]

    def count(self) -> int:
        self.ensure_schema()
        with self.connection() as conn:
            return int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self._table(CHUNKS_TABLE))).fetchone()[0])  # type: ignore[index]

    def search(self, vector: npt.NDArray[np.float32], k: int, where: RetrievalFilter | None = None) -> list[Hit]:
        """The ``k`` nearest chunks by cosine distance through the HNSW index (approximate)."""
        self.ensure_schema()
        condition, params = (where or RetrievalFilter()).where()
        query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY embedding <=> %s LIMIT %s").format(
            HIT_COLUMNS, self._table(CHUNKS_TABLE), condition
        )
        with self.connection() as conn:
            rows = conn.execute(query, [vector, *params, vector, k]).fetchall()
        hits = [Hit(*row) for row in rows]
        return sorted(hits, key=lambda hit: -hit.similarity)  # relaxed_order scans may return near-sorted rows

    def identifier_search(
        self, identifiers: Sequence[str], vector: npt.NDArray[np.float32], k: int, where: RetrievalFilter | None = None
    ) -> list[Hit]:
        """Chunks that contain any of ``identifiers`` as words (full-text, GIN index), nearest first."""
        if not identifiers:
            return []
        self.ensure_schema()
        condition, params = (where or RetrievalFilter()).where()
        query = sql.SQL("SELECT {} FROM {} WHERE lexemes @@ ({}) AND {} ORDER BY embedding <=> %s LIMIT %s").format(
            HIT_COLUMNS,
            self._table(CHUNKS_TABLE),
            sql.SQL(" || ").join([sql.SQL("plainto_tsquery('simple', %s)")] * len(identifiers)),
            condition,
        )
        with self.connection() as conn:
            rows = conn.execute(query, [vector, *identifiers, *params, vector, k]).fetchall()
        return [dataclasses.replace(Hit(*row), matched_identifier=True) for row in rows]

    def all_vectors(self) -> tuple[list[str], npt.NDArray[np.float32]]:
        """Every chunk id and embedding, ordered by id (for exact-search baselines), read in binary."""
        self.ensure_schema()
        query = sql.SQL("SELECT chunk_id, embedding FROM {} ORDER BY chunk_id").format(self._table(CHUNKS_TABLE))
        with self.connection() as conn, conn.cursor(binary=True) as cursor:
            rows = cursor.execute(query).fetchall()
        if not rows:
            return [], np.zeros((0, DIMENSIONS), dtype=np.float32)
        matrix = np.vstack([row[1].to_numpy() for row in rows]).astype(np.float32, copy=False)
        return [row[0] for row in rows], np.ascontiguousarray(matrix)


def label_hash(chunk: Chunk) -> str:
    """What a citation shows besides the text (version, date, heading, metadata): changes here update
    the row without a new embedding."""
    d = chunk.document
    return content_hash(
        json.dumps([d.table_version, d.event_date, d.heading, d.file, d.extra], default=str, sort_keys=True)
    )


def _metadata(chunk: Chunk) -> str:
    return json.dumps(chunk.document.extra, default=str, sort_keys=True)


def _row(chunk: Chunk) -> tuple[Any, ...]:
    d = chunk.document
    return (
        chunk.chunk_id, d.scope, d.kind, chunk.text, chunk.content_hash, label_hash(chunk), d.source_table,
        d.table_version, d.row_key, d.file, d.heading, d.event_date, _metadata(chunk),
    )  # fmt: skip
