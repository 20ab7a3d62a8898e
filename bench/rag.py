"""Benchmark: the RAG index and query path (MiniLM -> pgvector HNSW -> extractive answer -> API).

One run, in PostgreSQL schema ``rag_bench`` (dropped at the end unless ``--keep``; the platform's
index in schema ``rag`` is never touched), measures:

1. index build: simulated claims (the simulator's adjuster notes, shaped like ``silver.claims``) as
   claim documents through ``index_documents`` into a fresh schema: chunks/s of the embedding alone
   (the baseline) and of the whole build (chunking, embedding, pgvector upserts with HNSW inserts).
2. end to end over that index: the same questions answered by ``build_chain(settings).ask`` in this
   process (the baseline) and through ``POST /v1/rag/query`` on a real uvicorn server with httpx, one
   request at a time; p50/p95 and the server-reported retrieve/answer split. Both run once the table
   has planner statistics (ANALYZE, as autovacuum would soon); before that, the chain in-process also
   runs on the table exactly as ``index_documents`` left it.
3. retrieval at each ``--sizes`` index size: ``PgVectorStore.search`` (HNSW through SQL, k=10) per
   question vector at several ``ef_search`` values, against exact search over the same vectors in numpy
   (the baseline: latency, and the true top 10 for recall@10) and, for a subset, exact search in
   PostgreSQL (the same SQL with index scans off). The HNSW index is built in bulk after the rows are
   loaded (timed), by default with the definition the store uses (m=16, ef_construction=200).

Indexes larger than the real corpus (default: 100k, with 10k real chunks) are filled with synthetic
vectors: a real chunk's vector plus Gaussian noise, renormalised, the noise chosen so a copy is as close
to its original as a real chunk is to its nearest real neighbour (median); they go in by binary COPY.
Embedding 100k chunks for real takes ~40 min on 2 cores; ``--real`` does that instead.

Run ``python bench/rag.py --help`` for the options; a smoke run: ``--sizes 2000 --queries 50 --requests
30``. Results: tables on the console and JSON in bench/results/. Nothing here fails on a slow figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _measure import TreeSampler, bench_progress, load_average, machine, package_versions
from _rag_corpus import build_corpus, questions, warm_up_questions
from _rag_report import console, print_report, targets
from _rag_steps import WARM_UP, Bench, K, Stage
from _rag_store import BENCH_SCHEMA, drop_schema

from mdslab.llm.embeddings import MODEL_ID, MiniLmEmbeddings
from mdslab.llm.store import HNSW_EF_CONSTRUCTION, HNSW_M
from mdslab.settings import load_settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = ("onnxruntime", "tokenizers", "pgvector", "psycopg", "langchain-core", "fastapi", "uvicorn", "httpx")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/rag.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000],
        metavar="N",
        help="Index sizes in chunks (default 10000 100000). The smallest is all real chunks; larger ones add "
        "synthetic vectors unless --real.",
    )
    parser.add_argument(
        "--real", action="store_true", help="Embed real chunks for every size (slow: ~40 chunks/s on 2 cores)."
    )
    parser.add_argument("--queries", type=int, default=200, help="Question vectors per retrieval run (default 200).")
    parser.add_argument(
        "--requests", type=int, default=200, help="Questions per end-to-end path, API and in-process (default 200)."
    )
    parser.add_argument(
        "--ef-search",
        type=int,
        nargs="+",
        default=[40, 100, 200, 400, 1000],
        metavar="EF",
        help="HNSW ef_search values to run at each size; the settings' value (MDSLAB_RAG__EF_SEARCH) is always "
        "added and is the headline figure (default 40 100 200 400 1000; the settings allow 10 to 1000).",
    )
    parser.add_argument(
        "--exact-sql-queries",
        type=int,
        default=50,
        help="Questions for exact search in PostgreSQL (a full scan each; 0 skips it; default 50).",
    )
    parser.add_argument(
        "--m",
        type=int,
        default=HNSW_M,
        help=f"HNSW m of the bulk-built index (default {HNSW_M}, what PgVectorStore creates).",
    )
    parser.add_argument(
        "--ef-construction",
        type=int,
        default=HNSW_EF_CONSTRUCTION,
        help=f"HNSW ef_construction of the bulk-built index (default {HNSW_EF_CONSTRUCTION}, what PgVectorStore "
        "creates). The index that index_documents builds row by row always has the store's definition.",
    )
    parser.add_argument("--threads", type=int, default=2, help="MiniLM threads while indexing (default 2).")
    parser.add_argument(
        "--maintenance-work-mem",
        default="1GB",
        help="maintenance_work_mem of the session that builds the HNSW index (default 1GB; the server's is 64MB).",
    )
    parser.add_argument("--seed", type=int, default=42, help="Simulation and sampling seed (default 42).")
    parser.add_argument("--keep", action="store_true", help=f"Keep schema {BENCH_SCHEMA} (default: drop it).")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=f"Where the JSON goes ({RESULTS_DIR}).")
    args = parser.parse_args(argv)
    if min(args.sizes) < 100 or args.queries < 1 or args.requests < 1 or min(args.ef_search) < 10:
        parser.error("--sizes must be >= 100, --queries and --requests >= 1, --ef-search >= 10")
    if args.m < 2 or args.ef_construction < 2 * args.m:
        parser.error("--m must be >= 2 and --ef-construction >= 2 x --m (pgvector's limits)")
    if args.threads < 1 or args.exact_sql_queries < 0:
        parser.error("--threads must be >= 1 and --exact-sql-queries >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mdslab.workloads.bootstrap import ensure_platform

    started_at = datetime.now(UTC)
    sizes = sorted(set(args.sizes))
    progress = bench_progress(console)
    report: dict[str, Any] = {
        "benchmark": "rag",
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "versions": package_versions(*PACKAGES),
        "arguments": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "sizes": [],
    }
    with progress, TreeSampler() as sampler:
        stage = Stage(progress)
        ensure_platform(load_settings(), on_step=stage.say)
        base = load_settings()
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
            categories: dict[str, int] = {}
            for question in asked[: args.queries]:
                categories[question.category] = categories.get(question.category, 0) + 1
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
    report["load_average_at_end"] = [round(x, 2) for x in load_average()]
    report["phases"] = bench.phases
    report["targets"] = targets(report)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"rag-{started_at:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_report(report)
    console.print(f"JSON: {out}", style="dim", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
