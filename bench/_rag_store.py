"""The pgvector side of bench/rag.py: bulk loads, HNSW (re)builds, plans, and the three ways of finding a
question's nearest chunks that the retrieval figures compare. Everything here works on schema ``rag_bench``
only (``BENCH_SCHEMA``); the platform's index (``rag``) is never read or written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from _harness import Advance
from psycopg import sql

from mdslab.llm.chunking import content_hash
from mdslab.llm.embeddings import MODEL_ID
from mdslab.llm.store import HIT_COLUMNS, HNSW_EF_CONSTRUCTION, HNSW_M, PgVectorStore

BENCH_SCHEMA = "rag_bench"
SYNTHETIC_SCOPE = "bench:synthetic"
HNSW_INDEX = "chunks_embedding_hnsw"  # the name PgVectorStore.ensure_schema gives it

Vectors = npt.NDArray[np.float32]
Vector = npt.NDArray[np.float32]
Searched = tuple[list[float], list[list[str]]]  # ms per search, the chunk ids each returned


def _mine(store: PgVectorStore) -> None:
    if store.schema != BENCH_SCHEMA:
        raise RuntimeError(f"bench/rag.py only writes schema {BENCH_SCHEMA}, not {store.schema}")


def drop_schema(store: PgVectorStore) -> None:
    _mine(store)
    with store.connection() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(BENCH_SCHEMA)))


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(BENCH_SCHEMA, name)


def rebuild_hnsw(
    store: PgVectorStore, maintenance_work_mem: str, *, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION
) -> dict[str, Any]:
    """Drop the HNSW index and build it again over every row (by default with the definition
    ``ensure_schema`` uses), then ANALYZE; seconds and any notice (e.g. the graph outgrowing
    maintenance_work_mem)."""
    drop_hnsw(store)
    notices: list[str] = []
    with store.connection() as conn:

        def notice(diagnostic: Any) -> None:
            notices.append(str(diagnostic.message_primary))

        conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(maintenance_work_mem)))
        workers = conn.execute("SHOW max_parallel_maintenance_workers").fetchone()
        conn.add_notice_handler(notice)
        try:
            started = time.perf_counter()
            conn.execute(
                sql.SQL(
                    "CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops) WITH (m = {}, ef_construction = {})"
                ).format(
                    sql.Identifier(HNSW_INDEX),
                    _table("chunks"),
                    sql.Literal(m),
                    sql.Literal(ef_construction),
                )
            )
            seconds = time.perf_counter() - started
            conn.execute(sql.SQL("ANALYZE {}").format(_table("chunks")))
        finally:
            conn.execute("RESET maintenance_work_mem")
            conn.remove_notice_handler(notice)
    return {
        "seconds": round(seconds, 3),
        "m": m,
        "ef_construction": ef_construction,
        "maintenance_work_mem": maintenance_work_mem,
        "max_parallel_maintenance_workers": int(workers[0]) if workers else None,
        "notices": notices,
    }


def analyze(store: PgVectorStore) -> float:
    """ANALYZE the chunks table (what autovacuum does within a minute or so of a large write): seconds."""
    _mine(store)
    started = time.perf_counter()
    with store.connection() as conn:
        conn.execute(sql.SQL("ANALYZE {}").format(_table("chunks")))
    return time.perf_counter() - started


def analyzed(store: PgVectorStore) -> bool:
    """Whether the chunks table has planner statistics (ANALYZE or autovacuum ran since it was created)."""
    with store.connection() as conn:
        row = conn.execute(
            "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL FROM pg_stat_user_tables "
            "WHERE schemaname = %s AND relname = 'chunks'",
            (BENCH_SCHEMA,),
        ).fetchone()
    return bool(row and row[0])


def sizes_on_disk(store: PgVectorStore) -> dict[str, int]:
    with store.connection() as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size(%s::regclass), pg_relation_size(%s::regclass)",
            (f"{BENCH_SCHEMA}.chunks", f"{BENCH_SCHEMA}.{HNSW_INDEX}"),
        ).fetchone()
    assert row is not None
    return {"table_with_indexes_bytes": int(row[0]), "hnsw_index_bytes": int(row[1])}


def load_synthetic(
    store: PgVectorStore,
    vectors: Vectors,
    parents: npt.NDArray[np.int64],
    parent_chunks: Sequence[tuple[str, str]],
    *,
    first: int,
    advance: Advance,
) -> dict[str, Any]:
    """COPY (binary) synthetic chunks into the table, as one new index version. Each row carries its
    original's text (so rows are as wide as real ones, lexemes and all) under its own id and kind."""
    _mine(store)
    names = ["chunk_id", "scope", "kind", "content", "content_hash", "label_hash", "source_table", "row_key"]
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in [*names, "embedding", "index_version"])
    started = time.perf_counter()
    with store.connection() as conn, conn.transaction():
        version_row = conn.execute(
            sql.SQL(
                "INSERT INTO {} (embedding_model, chunks, embedded, relabelled, removed, scopes) "
                "VALUES (%s, 0, %s, 0, 0, %s) RETURNING version"
            ).format(_table("index_versions")),
            (f"synthetic: {MODEL_ID} vectors + Gaussian noise", len(vectors), [SYNTHETIC_SCOPE]),
        ).fetchone()
        assert version_row is not None
        version = int(version_row[0])
        label = content_hash(json.dumps({"synthetic": True}))
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT BINARY)").format(_table("chunks"), columns)
        with conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.set_types(["text"] * 8 + ["vector", "int4"])
            for i, (vector, parent) in enumerate(zip(vectors, parents, strict=True)):
                parent_id, text = parent_chunks[int(parent)]
                chunk_id = f"synthetic:{first + i:07d}"
                row_key = f"{parent_id}~{first + i}"
                fields = [chunk_id, SYNTHETIC_SCOPE, "synthetic", text, content_hash(chunk_id), label]
                copy.write_row([*fields, "bench.synthetic", row_key, vector, version])
                if i % 5_000 == 4_999:
                    advance(5_000)
        total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_table("chunks"))).fetchone()
        assert total is not None
        conn.execute(
            sql.SQL("UPDATE {} SET chunks = %s WHERE version = %s").format(_table("index_versions")),
            (int(total[0]), version),
        )
    advance(len(vectors) % 5_000)
    return {"rows": len(vectors), "seconds": round(time.perf_counter() - started, 3), "chunks_after": int(total[0])}


def drop_hnsw(store: PgVectorStore) -> None:
    """Bulk loads go in without the HNSW index (it is built once afterwards, see rebuild_hnsw)."""
    _mine(store)
    with store.connection() as conn:
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(_table(HNSW_INDEX)))


def _search_sql() -> sql.Composed:
    return sql.SQL("SELECT {} FROM {} ORDER BY embedding <=> %s LIMIT %s").format(HIT_COLUMNS, _table("chunks"))


def plan(store: PgVectorStore, vector: npt.NDArray[np.float32], k: int, *, exact: bool = False) -> str:
    """The top plan nodes of the search query (e.g. 'Limit > Index Scan using chunks_embedding_hnsw')."""
    return _explain(store, _search_sql(), [vector, vector, k], exact=exact)


def identifier_plan(store: PgVectorStore, vector: npt.NDArray[np.float32], identifier: str, k: int) -> str:
    """The plan of ``PgVectorStore.identifier_search`` for one key (full-text match, nearest first)."""
    query = sql.SQL(
        "SELECT {} FROM {} WHERE lexemes @@ (plainto_tsquery('simple', %s)) AND TRUE ORDER BY embedding <=> %s LIMIT %s"
    ).format(HIT_COLUMNS, _table("chunks"))
    return _explain(store, query, [vector, identifier, vector, k])


def _explain(store: PgVectorStore, query: sql.Composed, params: list[Any], *, exact: bool = False) -> str:
    """The plan's first node of each level, top down; ``exact``: with index scans off."""
    with store.connection() as conn, conn.transaction():
        if exact:
            conn.execute("SET LOCAL enable_indexscan = off")
        row = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + query, params).fetchone()
    assert row is not None
    node: dict[str, Any] | None = row[0][0]["Plan"]
    names = []
    while node is not None:
        names.append(node["Node Type"] + (f" using {node['Index Name']}" if node.get("Index Name") else ""))
        children = node.get("Plans") or []
        node = children[0] if children else None
    return " > ".join(names)


def timed(search: Callable[[Vector], list[str]], queries: Vectors, warm_up: int, advance: Advance) -> Searched:
    """Each question vector searched once after ``warm_up`` untimed searches: ms per search, ids found."""
    for vector in queries[:warm_up]:
        search(vector)
    latencies, found = [], []
    for vector in queries:
        started = time.perf_counter()
        found.append(search(vector))
        latencies.append((time.perf_counter() - started) * 1000)
        advance(1)
    return latencies, found


def search_hnsw(store: PgVectorStore, queries: Vectors, k: int, warm_up: int, advance: Advance) -> Searched:
    """``PgVectorStore.search`` per question vector (the library's HNSW search through SQL)."""
    return timed(lambda vector: [hit.chunk_id for hit in store.search(vector, k)], queries, warm_up, advance)


def search_numpy(ids: list[str], matrix: Vectors, queries: Vectors, k: int, warm_up: int, advance: Advance) -> Searched:
    """Exact search in this process: dot products with every vector (unit vectors: cosine), top k."""

    def top(vector: Vector) -> list[str]:
        scores = matrix @ vector
        best = np.argpartition(-scores, k)[:k]
        return [ids[int(row)] for row in best[np.argsort(-scores[best])]]

    return timed(top, queries, warm_up, advance)


def search_exact_sql(store: PgVectorStore, queries: Vectors, k: int, warm_up: int, advance: Advance) -> Searched:
    """The same SQL as ``PgVectorStore.search`` with index scans off: an exact scan of every row."""
    with store.connection() as conn:

        def search(vector: Vector) -> list[str]:
            return [row[0] for row in conn.execute(_search_sql(), [vector, vector, k]).fetchall()]

        conn.execute("SET enable_indexscan = off")
        try:
            return timed(search, queries, warm_up, advance)
        finally:
            conn.execute("RESET enable_indexscan")


def recall(found: list[list[str]], truth: list[list[str]], k: int) -> float:
    """Mean share of the exact top k that a search returned."""
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth, strict=False)]))


def shortfall(found: list[list[str]], truth: list[list[str]], scores: Vectors, row_of: dict[str, int]) -> float:
    """Mean over questions of (mean cosine of the exact top k - mean cosine of what the search returned):
    0 when the results are as close as the true neighbours, whichever chunks they are (near-ties)."""
    gaps = []
    for q, (got, best) in enumerate(zip(found, truth, strict=False)):
        exact = float(np.mean([scores[q, row_of[i]] for i in best]))
        returned = float(np.mean([scores[q, row_of[i]] for i in got])) if got else 0.0
        gaps.append(exact - returned)
    return float(np.mean(gaps))


def spread(scores: Vectors, k: int) -> dict[str, float]:
    """How close the exact neighbours are to each other (medians over questions): cosine of the 1st minus
    the k-th, and of the k-th minus the (k+1)-th, the margin a search must resolve to get recall 1."""
    top = -np.sort(-np.partition(scores, scores.shape[1] - k - 1, axis=1)[:, -(k + 1) :], axis=1)
    return {
        "top1_minus_topk_cosine_median": round(float(np.median(top[:, 0] - top[:, k - 1])), 5),
        "topk_minus_next_cosine_median": round(float(np.median(top[:, k - 1] - top[:, k])), 5),
        "topk_cosine_median": round(float(np.median(top[:, k - 1])), 4),
    }
