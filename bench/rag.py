"""Benchmark: the RAG index and query path (MiniLM -> pgvector HNSW -> extractive answer -> API), in schema
rag_bench (dropped at the end unless --keep): index build chunks/s against the embedding alone, retrieval
(PgVectorStore.search, recall@10) at each index size against exact search, POST /v1/rag/query against the
chain in-process. Sizes above the real corpus are filled with synthetic vectors unless --real. What each
figure means: bench/README.md; a smoke run: --sizes 2000 --queries 50 --requests 30.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any

from _harness import arguments, finish, header, parser, progress
from _measure import TreeSampler
from _rag_bench import WARM_UP, Bench, K
from _rag_corpus import build_corpus, questions, warm_up_questions
from _rag_report import print_report, targets
from _rag_store import BENCH_SCHEMA, drop_schema

from mdslab.llm.embeddings import MODEL_ID, MiniLmEmbeddings
from mdslab.llm.store import HNSW_EF_CONSTRUCTION, HNSW_M
from mdslab.settings import load_settings
from mdslab.workloads.bootstrap import ensure_platform

PACKAGES = ("onnxruntime", "tokenizers", "pgvector", "psycopg", "langchain-core", "fastapi", "uvicorn", "httpx")


def parse_args(argv: list[str] | None) -> Any:
    found = parser("rag.py", __doc__)
    found.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], metavar="N", help="Index sizes in "
                       "chunks (default 10000 100000). The smallest is all real chunks; larger ones add synthetic "
                       "vectors unless --real.")  # fmt: skip
    found.add_argument("--real", action="store_true", help="Embed real chunks for every size (slow: ~40 chunks/s).")
    found.add_argument("--queries", type=int, default=200, help="Question vectors per retrieval run (default 200).")
    found.add_argument("--requests", type=int, default=200, help="Questions per end-to-end path (default 200).")
    found.add_argument("--ef-search", type=int, nargs="+", default=[40, 100, 200, 400, 1000], metavar="EF",
                       help="HNSW ef_search values to run at each size; the settings' value (MDSLAB_RAG__EF_SEARCH) "
                       "is always added and is the headline figure (default 40 100 200 400 1000).")  # fmt: skip
    found.add_argument("--exact-sql-queries", type=int, default=50, help="Questions for exact search in PostgreSQL "
                       "(a full scan each; 0 skips it; default 50).")  # fmt: skip
    found.add_argument("--m", type=int, default=HNSW_M, help=f"HNSW m of the bulk-built index (default {HNSW_M}, "
                       "what PgVectorStore creates).")  # fmt: skip
    found.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION, help="HNSW ef_construction of "
                       f"the bulk-built index (default {HNSW_EF_CONSTRUCTION}, as PgVectorStore).")  # fmt: skip
    found.add_argument("--threads", type=int, default=2, help="MiniLM threads while indexing (default 2).")
    found.add_argument("--maintenance-work-mem", default="1GB", help="maintenance_work_mem of the session that "
                       "builds the HNSW index (default 1GB; the server's is 64MB).")  # fmt: skip
    found.add_argument("--keep", action="store_true", help=f"Keep schema {BENCH_SCHEMA} (default: drop it).")
    args = found.parse_args(argv)
    if min(args.sizes) < 100 or args.queries < 1 or args.requests < 1 or min(args.ef_search) < 10:
        found.error("--sizes must be >= 100, --queries and --requests >= 1, --ef-search >= 10")
    if args.m < 2 or args.ef_construction < 2 * args.m:
        found.error("--m must be >= 2 and --ef-construction >= 2 x --m (pgvector's limits)")
    if args.threads < 1 or args.exact_sql_queries < 0:
        found.error("--threads must be >= 1 and --exact-sql-queries >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = sorted(set(args.sizes))
    report = header("rag", PACKAGES, argv) | {"arguments": arguments(args), "sizes": []}
    with progress() as stage, TreeSampler() as sampler:
        base = ensure_platform(load_settings(), on_step=stage.say).settings
        settings = base.model_copy(update={"rag": base.rag.model_copy(update={"schema_name": BENCH_SCHEMA})})
        rag = settings.rag
        report["settings"] = {
            "schema": BENCH_SCHEMA,
            "embedding_model": MODEL_ID,
            "index_threads": args.threads,
            "hnsw_m": args.m,
            "hnsw_ef_construction": args.ef_construction,
            "store_hnsw": {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
            "ef_search": rag.ef_search,
            "top_k": rag.top_k,
            "chunk_chars": rag.chunk_chars,
            "chunk_overlap": rag.chunk_overlap,
            "answerer": rag.answerer.value,
        }
        bench = Bench(args, settings, sampler, stage)
        try:
            stage(f"dropping schema {BENCH_SCHEMA} left by an earlier run, if any")
            drop_schema(bench.store)
            real_chunks = sizes[-1] if args.real else sizes[0]
            stage(f"simulating claims for {real_chunks:,} chunks")
            with bench.measure("simulate"):
                corpus = build_corpus(real_chunks, args.seed, max_chars=rag.chunk_chars, overlap=rag.chunk_overlap)
            first_documents = corpus.prefix(sizes[0])
            asked = questions(first_documents, max(args.queries, args.requests), args.seed)
            embeddings = MiniLmEmbeddings(threads=args.threads)
            embeddings.embed(["loading the model"])
            embedded_at = time.perf_counter()
            query_vectors = embeddings.embed([q.text for q in asked[: args.queries]])
            categories = dict(Counter(question.category for question in asked[: args.queries]))
            report["corpus"] = {"claims": len(corpus.documents), "transactions": corpus.transactions, "seed": args.seed}
            report["queries"] = {
                "count": args.queries,
                "k": K,
                "categories": categories,
                "embed_ms_per_question": (time.perf_counter() - embedded_at) * 1000 / args.queries,
                "examples": [q.text for q in asked[:5]],
            }
            for position, size in enumerate(sizes):
                through_indexer = position == 0 or args.real
                if through_indexer:
                    loaded = {"build": bench.index(corpus.prefix(size), embeddings, size)}
                else:
                    loaded = {"synthetic_load": bench.fill_synthetic(size, report)}
                if position == 0:
                    report["e2e"] = bench.end_to_end(
                        asked, warm_up_questions(first_documents, WARM_UP), query_vectors[0]
                    )
                found = bench.retrieval(size, query_vectors, as_indexed=through_indexer, keep_real=position == 0)
                report["sizes"].append({"chunks": size, **loaded, **found})
        finally:
            bench.close()
    report["phases"] = bench.phases
    report["targets"] = targets(report)
    return finish(report, args.results_dir, print_report)


if __name__ == "__main__":
    sys.exit(main())
