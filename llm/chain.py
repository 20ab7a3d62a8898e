"""The RAG chain (LangChain runnables): question -> retriever -> answer step, with timings per stage.

One object serves the API route, ``mdslab ask``, the evaluation and the gateway's local backend, so
they answer the same question the same way.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableLambda

from mdslab.llm.answer import Answer, Answerer, Citation, make_answerer
from mdslab.llm.embeddings import MiniLmEmbeddings
from mdslab.llm.retriever import LakeRetriever
from mdslab.llm.store import IndexMissingError, PgVectorStore, RetrievalFilter
from mdslab.settings import Settings


@dataclass(frozen=True)
class RagAnswer:
    question: str
    answer: str
    citations: list[Citation]
    retrieved: list[Document]
    answerer: str
    index_version: int
    retrieve_ms: float
    answer_ms: float

    @property
    def total_ms(self) -> float:
        return self.retrieve_ms + self.answer_ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "citations": [c.as_dict() for c in self.citations],
            "answerer": self.answerer,
            "index_version": self.index_version,
            "timings_ms": {
                "retrieve": round(self.retrieve_ms, 2),
                "answer": round(self.answer_ms, 2),
                "total": round(self.total_ms, 2),
            },
        }


class RagChain:
    """Retrieval and answer as a LangChain runnable; build once, call from many threads."""

    def __init__(self, store: PgVectorStore, embeddings: MiniLmEmbeddings, answerer: Answerer, *, top_k: int) -> None:
        self.store = store
        self.embeddings = embeddings
        self.answerer = answerer
        self.top_k = top_k
        self.runnable: Runnable[dict[str, Any], dict[str, Any]] = RunnableLambda(self._retrieve) | RunnableLambda(
            self._answer
        )

    def _retrieve(self, inputs: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        retriever = LakeRetriever(store=self.store, embeddings=self.embeddings, k=inputs["k"], where=inputs["where"])
        documents = retriever.invoke(inputs["question"])
        return {**inputs, "documents": documents, "retrieve_ms": (time.perf_counter() - started) * 1000}

    def _answer(self, inputs: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        answer: Answer = self.answerer.answer(inputs["question"], inputs["documents"])
        return {**inputs, "answer": answer, "answer_ms": (time.perf_counter() - started) * 1000}

    def ask(self, question: str, *, k: int | None = None, where: RetrievalFilter | None = None) -> RagAnswer:
        version = self.store.version()
        if version is None or version.chunks == 0:
            raise IndexMissingError(
                "the RAG index is empty: build it with `mdslab rag index` (add --docs PATH for files)"
            )
        out = self.runnable.invoke({"question": question, "k": k or self.top_k, "where": where})
        answer: Answer = out["answer"]
        return RagAnswer(
            question=question,
            answer=answer.text,
            citations=answer.citations,
            retrieved=out["documents"],
            answerer=answer.answerer,
            index_version=version.version,
            retrieve_ms=out["retrieve_ms"],
            answer_ms=out["answer_ms"],
        )


def open_store(settings: Settings) -> PgVectorStore:
    rag = settings.rag
    return PgVectorStore(
        settings.postgres,
        schema=rag.schema_name,
        ef_search=rag.ef_search,
        m=rag.hnsw_m,
        ef_construction=rag.hnsw_ef_construction,
    )


def build_chain(settings: Settings, *, embeddings: MiniLmEmbeddings | None = None) -> RagChain:
    """The chain the settings describe: the platform's pgvector index, MiniLM, the configured answer step."""
    embeddings = embeddings or MiniLmEmbeddings()
    return RagChain(open_store(settings), embeddings, make_answerer(settings.rag, embeddings), top_k=settings.rag.top_k)


class LazyChain:
    """One chain per process, built on first use (loading the model takes a moment; a server that
    never answers a RAG question never pays for it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._chain: RagChain | None = None
        self._lock = threading.Lock()

    def get(self) -> RagChain:
        with self._lock:
            if self._chain is None:
                self._chain = build_chain(self.settings)
            return self._chain

    def close(self) -> None:
        with self._lock:
            if self._chain is not None:
                self._chain.store.close()
                self._chain = None
