"""The steps of bench/rag.py and the measuring around them: index build, synthetic top-up, end to end (the
chain in-process against ``POST /v1/rag/query``), retrieval per index size. ``Bench`` holds one run's state.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import psutil
from _harness import Stage, listener_pid, percentiles
from _measure import TreeSampler
from _rag_corpus import SCOPE, NoiseModel, Vectors, synthetic_check, synthetic_vectors
from _rag_store import (
    BENCH_SCHEMA,
    HNSW_INDEX,
    analyze,
    analyzed,
    drop_hnsw,
    drop_schema,
    identifier_plan,
    load_synthetic,
    plan,
    rebuild_hnsw,
    recall,
    search_exact_sql,
    search_hnsw,
    search_numpy,
    shortfall,
    sizes_on_disk,
    spread,
)

from mdslab.llm.chain import build_chain, open_store
from mdslab.llm.chunking import chunk_documents
from mdslab.llm.corpus import SourceDocument
from mdslab.llm.embeddings import MiniLmEmbeddings
from mdslab.llm.identifiers import find_identifiers
from mdslab.llm.indexer import index_documents
from mdslab.llm.questions import Question
from mdslab.llm.store import PgVectorStore
from mdslab.settings import Settings

K = 10  # chunks per retrieval search
WARM_UP = 5  # searches / questions before measuring


def postgres_cpu_s(pid: int | None) -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster, its live children (backends, parallel
    workers) and the children it already reaped. 0 when the server is not local or not visible."""
    if pid is None:
        return 0.0
    try:
        server = psutil.Process(pid)
        times = server.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in server.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.Error:
                continue
            total += child_times.user + child_times.system
    except psutil.Error:
        return 0.0
    return float(total)


class Truth:
    """The exact top k per question, and every question's cosine to every vector (for the shortfall)."""

    def __init__(self, ids: list[str], matrix: Vectors, queries: Vectors, found: list[list[str]]) -> None:
        self.found = found
        self.scores: Vectors = queries @ matrix.T
        self.row_of = {chunk_id: row for row, chunk_id in enumerate(ids)}

    def summary(self, latencies: list[float], found: list[list[str]]) -> dict[str, Any]:
        truth = self.found[: len(found)]
        return {
            "queries": len(latencies),
            "latency_ms": percentiles(latencies),
            "recall_at_k": recall(found, truth, K),
            "cosine_shortfall": round(shortfall(found, truth, self.scores, self.row_of), 5),
        }


class Bench:
    """One run's state: settings, stores, corpus, question vectors, and the measuring around each step."""

    def __init__(self, args: argparse.Namespace, settings: Settings, sampler: TreeSampler, stage: Stage) -> None:
        self.args, self.settings, self.rag = args, settings, settings.rag
        self.sampler, self.stage = sampler, stage
        self.store = open_store(settings)
        self.stores: dict[int, PgVectorStore] = {}
        self.phases: list[dict[str, Any]] = []
        self.rng = np.random.default_rng(args.seed)
        self.noise: NoiseModel | None = None
        self.texts: dict[str, str] = {}
        self.real_ids: list[str] = []
        self.real_matrix = np.zeros((0, 0), dtype=np.float32)
        self.postgres_pid = listener_pid(settings.postgres.port)

    @contextmanager
    def measure(self, name: str) -> Iterator[dict[str, Any]]:
        """A phase: wall time, CPU of this process, of PostgreSQL (its server process tree: the searches,
        index builds and writes happen there), of the rest of the machine, and peak PSS/RSS of this process."""
        figures: dict[str, Any] = {}
        pg_before = postgres_cpu_s(self.postgres_pid)
        with self.sampler.phase(name) as phase:
            yield figures
        pg = max(0.0, postgres_cpu_s(self.postgres_pid) - pg_before)
        others = max(0.0, phase.others_cpu_s - pg)
        figures.update(
            peak_pss_gib=round(phase.peak_pss / 2**30, 3),
            peak_rss_gib=round(phase.peak_rss / 2**30, 3),
            cores=round(phase.cpu_s / phase.seconds, 2) if phase.seconds else 0.0,
            postgres_cores=round(pg / phase.seconds, 2) if phase.seconds else 0.0,
            others_cores=round(others / phase.seconds, 2) if phase.seconds else 0.0,
        )
        self.phases.append(
            {"name": name, **phase.as_dict(), "others_cpu_seconds": round(phase.others_cpu_s, 2)}
            | {"postgres_cpu_seconds": round(pg, 2)}
            | {key: figures[key] for key in ("cores", "postgres_cores", "others_cores")}
        )

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
        if not self.args.keep:
            self.stage(f"dropping schema {BENCH_SCHEMA}")
            drop_schema(self.store)
        self.store.close()

    def index(self, documents: list[SourceDocument], embeddings: MiniLmEmbeddings, size: int) -> dict[str, Any]:
        """index_documents into the bench schema; new chunks only (a larger --real size adds to the last)."""
        chunks = chunk_documents(documents, max_chars=self.rag.chunk_chars, overlap=self.rag.chunk_overlap)
        self.texts.update((c.chunk_id, c.text) for c in chunks)
        self.stage(f"{size:,}: embedding and indexing {len(chunks):,} chunks (index_documents)", 1)

        def embedded(done: int, total: int) -> None:
            self.stage.progress.update(self.stage.task, completed=done, total=max(total, 1))

        with self.measure(f"index build {size}") as figures:
            built = index_documents(
                self.store,
                embeddings,
                documents,
                scopes=[SCOPE],
                max_chars=self.rag.chunk_chars,
                overlap=self.rag.chunk_overlap,
                on_progress=embedded,
            )
        build: dict[str, Any] = built.as_dict()
        return build | {
            "build_chunks_per_second": round(built.embedded / built.seconds, 1) if built.seconds else 0.0,
            "usage": figures,
        }

    def fill_synthetic(self, size: int, report: dict[str, Any]) -> dict[str, Any]:
        """Top the index up to ``size`` chunks with synthetic vectors, by COPY with the HNSW index dropped."""
        if self.noise is None:
            self.noise = NoiseModel.calibrate(self.real_matrix, self.rng)
            report["synthetic"] = {"noise": self.noise.as_dict()}
        count = size - self.store.count()
        self.stage(f"{size:,}: generating {count:,} synthetic vectors")
        vectors, parents = synthetic_vectors(self.real_matrix, count, self.noise, self.rng)
        if "check" not in report["synthetic"]:
            report["synthetic"]["check"] = synthetic_check(self.real_matrix, vectors, parents, self.rng)
        advance = self.stage(f"{size:,}: COPY of {count:,} synthetic chunks (HNSW index dropped)", count)
        drop_hnsw(self.store)
        originals = [(real_id, self.texts[real_id]) for real_id in self.real_ids]
        with self.measure(f"synthetic load {size}"):
            return load_synthetic(self.store, vectors, parents, originals, first=self.store.count(), advance=advance)

    def end_to_end(self, asked: list[Question], warm: list[str], vector: Vectors) -> dict[str, Any]:
        """The same questions through the chain in-process (baseline) and through POST /v1/rag/query, on the
        index index_documents built, once it has planner statistics; and before that, the chain in-process
        on the index exactly as index_documents left it (no ANALYZE yet: what the first minute or so after
        ``mdslab rag index`` looks like, until autovacuum analyzes the table)."""
        requests = asked[: self.args.requests]
        e2e: dict[str, Any] = {"chunks": self.store.count(), "requests": len(requests), "k": self.rag.top_k}
        e2e["answerer"] = self.rag.answerer.value
        keys = find_identifiers(requests[0].text)
        paths = (
            ("before_analyze", "RagChain.ask in-process, before ANALYZE", self.in_process),
            ("in_process", "RagChain.ask in-process", self.in_process),
            ("api", "POST /v1/rag/query", self.over_http),
        )
        for key, name, run in paths:
            if key == "in_process":
                e2e["analyze_seconds"] = round(analyze(self.store), 3)
            state: dict[str, Any] = {"analyzed_at_start": analyzed(self.store)}
            if keys:
                state["identifier_plan"] = identifier_plan(self.store, vector, keys[0], self.rag.top_k)
            advance = self.stage(f"end to end, {name}", len(requests))
            with self.measure(f"e2e {key}") as figures:
                answers = run(requests, warm, advance)
            e2e[key] = state | {
                "client_ms": percentiles([answer["client_ms"] for answer in answers]),
                **{f"{part}_ms": percentiles([answer[part] for answer in answers]) for part in ("retrieve", "answer")},
                "server_total_ms": percentiles([answer["total"] for answer in answers]),
                "contains_expected_share": round(sum(a["contained"] for a in answers) / len(answers), 4)
                if answers
                else None,
                "analyzed_at_end": analyzed(self.store),
                "usage": figures,
            }
        return e2e

    def in_process(
        self, questions: Sequence[Question], warm_up: Sequence[str], advance: Callable[[int], None]
    ) -> Answers:
        """``build_chain(settings).ask(question)`` timed around the call: the baseline of the API."""
        chain, k = build_chain(self.settings), self.rag.top_k
        try:
            for text in warm_up:
                chain.ask(text, k=k)

            def ask(question: Question) -> dict[str, Any]:
                answer = chain.ask(question.text, k=k)
                timings = {"retrieve": answer.retrieve_ms, "answer": answer.answer_ms, "total": answer.total_ms}
                return timings | {"text": answer.answer}

            return timed_answers(ask, questions, advance)
        finally:
            chain.store.close()

    def over_http(
        self, questions: Sequence[Question], warm_up: Sequence[str], advance: Callable[[int], None]
    ) -> Answers:
        """Sequential ``POST /v1/rag/query`` (httpx, keep-alive) to ``create_app(settings)`` served by uvicorn in a
        thread of this process; latency from before the request is sent to the parsed reply."""
        from mdslab.api.app import create_app
        from mdslab.api.server import background_server

        headers, k = {"X-API-Key": self.settings.api.api_key.get_secret_value()}, self.rag.top_k
        with (
            background_server(create_app(self.settings)) as url,
            httpx.Client(base_url=url, headers=headers, timeout=60.0) as client,
        ):
            for text in warm_up:
                client.post("/v1/rag/query", json={"question": text, "k": k}).raise_for_status()

            def ask(question: Question) -> dict[str, Any]:
                reply = client.post("/v1/rag/query", json={"question": question.text, "k": k})
                body: dict[str, Any] = reply.raise_for_status().json()
                return {**body["timings_ms"], "text": body["answer"]}

            return timed_answers(ask, questions, advance)

    def _store(self, ef: int) -> PgVectorStore:
        if ef not in self.stores:
            self.stores[ef] = PgVectorStore(self.settings.postgres, schema=BENCH_SCHEMA, ef_search=ef)
        return self.stores[ef]

    def retrieval(self, size: int, queries: Vectors, *, as_indexed: bool, keep_real: bool) -> dict[str, Any]:
        """Exact (numpy) first, for the truth; HNSW as indexed (if the rows came through index_documents);
        the bulk HNSW build; HNSW per ef_search; exact in PostgreSQL."""
        args = self.args
        entry: dict[str, Any] = {}
        self.stage(f"{size:,}: reading the index's vectors back for exact search")
        ids, matrix = self.store.all_vectors()
        if keep_real:
            self.real_ids, self.real_matrix = ids, matrix
        entry["real"] = sum(1 for chunk_id in ids if not chunk_id.startswith("synthetic:"))
        entry["synthetic"] = len(ids) - entry["real"]
        retrieval: dict[str, Any] = {}

        def hnsw(ef: int, what: str) -> dict[str, Any]:
            store = self._store(ef)
            advance = self.stage(f"{size:,}: HNSW search, {what}", len(queries))
            searched = plan(store, queries[0], K)
            latencies, found = search_hnsw(store, queries, K, WARM_UP, advance)
            return truth.summary(latencies, found) | {"ef_search": ef, "plan": searched}

        with self.measure(f"retrieval {size}") as figures:
            advance = self.stage(f"{size:,}: exact search in numpy", len(queries))
            latencies, exact = search_numpy(ids, matrix, queries, K, WARM_UP, advance)
            truth = Truth(ids, matrix, queries, exact)
            retrieval["exact_numpy"] = truth.summary(latencies, exact) | spread(truth.scores, K)
            if as_indexed:
                retrieval["hnsw_as_indexed"] = hnsw(self.rag.ef_search, "on the index as indexed")
            self.stage(f"{size:,}: building the HNSW index over {len(ids):,} rows")
            entry["hnsw_build"] = rebuild_hnsw(
                self.store, args.maintenance_work_mem, m=args.m, ef_construction=args.ef_construction
            )
            entry["disk"] = sizes_on_disk(self.store)
            retrieval["hnsw"] = [hnsw(ef, f"ef_search {ef}") for ef in sorted({*args.ef_search, self.rag.ef_search})]
            if args.exact_sql_queries:
                subset = queries[: args.exact_sql_queries]
                advance = self.stage(f"{size:,}: exact search in PostgreSQL", len(subset))
                exact_plan = plan(self.store, subset[0], K, exact=True)
                latencies, found = search_exact_sql(self.store, subset, K, min(2, len(subset)), advance)
                retrieval["exact_sql"] = truth.summary(latencies, found) | {"plan": exact_plan}
        entry["usage"] = figures
        entry["retrieval"] = retrieval
        entry["lowest_ef_for_recall"] = next(  # among searches the planner ran on the HNSW index
            (run["ef_search"] for run in retrieval["hnsw"] if run["recall_at_k"] >= 0.95 and HNSW_INDEX in run["plan"]),
            None,
        )
        return entry


Answers = list[dict[str, Any]]  # per question: client_ms, the server's retrieve/answer/total ms, contained


def timed_answers(
    ask: Callable[[Question], dict[str, Any]], questions: Sequence[Question], advance: Callable[[int], None]
) -> Answers:
    """Each question asked once, one after the other, timed around the call (``ask`` returns the server's
    timings and the answer's text, which is checked for the expected phrase outside the timing)."""
    answers = []
    for question in questions:
        started = time.perf_counter()
        answer = ask(question)
        answer["client_ms"] = (time.perf_counter() - started) * 1000
        answers.append(answer | {"contained": question.contained_in(answer.pop("text"))})
        advance(1)
    return answers
