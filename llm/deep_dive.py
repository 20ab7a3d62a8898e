"""``mdslab run llm``: the AI/LLM deep dive end to end, on whatever the lake holds (or a fresh simulation).

Curated tables (built by the batch pipeline if needed) and documents -> chunks -> MiniLM embeddings ->
pgvector (incremental, versioned) -> evaluation logged to MLflow -> one question through
``POST /v1/rag/query`` and one through the OpenAI-compatible gateway with LangChain's OpenAI client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mdslab.llm.chain import build_chain
from mdslab.llm.evaluation import EvalReport
from mdslab.llm.gateway import LOCAL_MODEL
from mdslab.llm.indexer import IndexReport
from mdslab.llm.operations import evaluate_index, index_lake
from mdslab.settings import Settings
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.pipeline.step_runtime import SparkProvider
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import simulate

# gold_claims_monthly too: the gate publishes silver.claims (which the corpus reads) with the gold built from it
RAG_INPUT_STEPS = ["reference", "silver_transactions", "silver_claims", "gold_daily_spend", "gold_claims_monthly"]
EXAMPLE_QUESTION = "Which claims were referred to the special investigations unit because receipts looked altered?"


@dataclass(frozen=True)
class LlmDeepDiveReport:
    indexed: IndexReport
    evaluation: EvalReport
    api_answer: dict[str, Any]
    gateway_answer: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.indexed.as_dict(),
            "evaluation": self.evaluation.as_dict(),
            "rag_query": self.api_answer,
            "gateway_answer": self.gateway_answer,
            "seconds": round(self.seconds, 2),
        }


def ensure_curated_tables(
    settings: Settings, *, rows: int, seed: int, spark: SparkProvider | None, on_progress: Callable[[str], None]
) -> None:
    """Simulate and land data when the lake has no claims yet; bring the steps the corpus reads up to date."""
    lake = lakehouse(settings)
    if not lake.exists("bronze.claims"):
        on_progress(f"no claims in the lake yet: simulating {rows:,} transactions and their claims")
        planned = next_run(settings.postgres, transactions=rows, seed=seed, reuse_same=True)
        drop_batch(settings, lake, simulate(planned.config))
    provider = spark or SparkProvider(settings)
    try:
        run_pipeline(
            settings,
            spark=provider,
            steps=RAG_INPUT_STEPS,
            on_step=lambda name, index, total: on_progress(f"pipeline step {index + 1}/{total}: {name}"),
        )
    finally:
        if spark is None:
            provider.close()


ServeApi = Callable[[Settings], AbstractContextManager[str]]  # the API app served for a block: its base URL


def ask_through_the_api(settings: Settings, question: str, serve_api: ServeApi) -> tuple[dict[str, Any], str]:
    """The same question through ``POST /v1/rag/query`` and through the gateway with ``ChatOpenAI``
    (the API app is the roof's: ``serve_api`` serves it, as ``mdslab run llm`` and the tests do)."""
    from langchain_openai import ChatOpenAI

    key = settings.api.api_key.get_secret_value()
    with serve_api(settings) as url:
        reply = httpx.post(f"{url}/v1/rag/query", json={"question": question}, headers={"X-API-Key": key}, timeout=60)
        reply.raise_for_status()
        chat = ChatOpenAI(base_url=f"{url}/v1", api_key=key, model=LOCAL_MODEL, max_retries=0, timeout=60)  # type: ignore[arg-type]
        gateway_answer = str(chat.invoke(question).content)
    return reply.json(), gateway_answer


def run_llm(
    settings: Settings,
    *,
    serve_api: ServeApi,
    docs: Sequence[Path] = (),
    rows: int = 50_000,
    seed: int = 42,
    spark: SparkProvider | None = None,
    on_progress: Callable[[str], None] = lambda _msg: None,
) -> LlmDeepDiveReport:
    started = time.perf_counter()
    ensure_curated_tables(settings, rows=rows, seed=seed, spark=spark, on_progress=on_progress)
    lake = lakehouse(settings)

    def embedded(done: int, total: int) -> None:
        on_progress(f"embedding chunks: {done:,}/{total:,}")

    on_progress("indexing the curated tables" + (f" and {len(docs)} document folders" if docs else ""))
    indexed = index_lake(settings, lake, docs=docs, on_progress=embedded)
    chain = build_chain(settings)
    try:
        on_progress("evaluating retrieval and answers; logging the run to MLflow")
        evaluation = evaluate_index(settings, lake, chain, on_progress=lambda d, t: on_progress(f"evaluating: {d}/{t}"))
    finally:
        chain.store.close()
    on_progress("asking through POST /v1/rag/query and the OpenAI-compatible gateway")
    api_answer, gateway_answer = ask_through_the_api(settings, EXAMPLE_QUESTION, serve_api)
    return LlmDeepDiveReport(indexed, evaluation, api_answer, gateway_answer, time.perf_counter() - started)
