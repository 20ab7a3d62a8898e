"""``POST /v1/rag/query``: a question in, a grounded answer with citations and timings out."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from prometheus_client import CollectorRegistry, Histogram
from pydantic import BaseModel, Field, StringConstraints

from mdslab.api_keys import TokenBucket, fingerprint, presented_key
from mdslab.errors import ServiceUnavailableError
from mdslab.llm.answer import Citation
from mdslab.llm.chain import LazyChain, RagAnswer
from mdslab.llm.store import IndexMissingError, RetrievalFilter

MAX_QUESTION_CHARS = 2000
Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS)]
SourceKind = Literal["claim", "customer", "merchant", "table", "document"]


class RagMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram(
            "mdslab_rag_stage_duration_seconds",
            "Time per RAG stage (retrieve, answer) and in all (total).",
            ["stage", "answerer"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )

    def observe(self, answer: RagAnswer) -> None:
        for stage, ms in (("retrieve", answer.retrieve_ms), ("answer", answer.answer_ms), ("total", answer.total_ms)):
            self.latency.labels(stage, answer.answerer).observe(ms / 1000)


class RagQuery(BaseModel):
    question: Question = Field(description=f"What to ask, 1 to {MAX_QUESTION_CHARS} characters.")
    k: int | None = Field(default=None, ge=1, le=50, description="Chunks to retrieve (default MDSLAB_RAG__TOP_K).")
    kinds: list[SourceKind] | None = Field(default=None, description="Only these kinds of sources.")
    table: str | None = Field(
        default=None, max_length=120, description="Only chunks from this table, e.g. silver.claims."
    )
    file: str | None = Field(default=None, max_length=500, description="Only documents whose path starts with this.")
    date_from: date | None = Field(default=None, description="Only rows dated on or after (claims: incident date).")
    date_to: date | None = Field(default=None, description="Only rows dated on or before.")

    def where(self) -> RetrievalFilter:
        return RetrievalFilter(tuple(self.kinds or ()), self.table, self.file, self.date_from, self.date_to)


class Timings(BaseModel):
    retrieve: float
    answer: float
    total: float


class RagResponse(BaseModel):
    question: str
    answer: str
    citations: list[Citation]
    answerer: str
    index_version: int
    timings_ms: Timings


def get_chain(request: Request) -> LazyChain:
    chain: LazyChain = request.app.state.rag_chain
    return chain


def get_metrics(request: Request) -> RagMetrics:
    metrics: RagMetrics = request.app.state.rag_metrics
    return metrics


async def within_rate_limit(request: Request) -> None:
    """Each key's budget of RAG queries (a question costs an embedding and a vector search; a client in
    a loop would starve the others): 429 with Retry-After when it is spent."""
    limiter: TokenBucket = request.app.state.rag_limiter
    wait = limiter.take(fingerprint(presented_key(request.headers, bearer=False)))
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit of this API key reached ({limiter.per_minute}/min, burst {limiter.burst}); "
            f"retry in {wait:.1f} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )


ChainDep = Annotated[LazyChain, Depends(get_chain)]
RagMetricsDep = Annotated[RagMetrics, Depends(get_metrics)]


def ask(chain: LazyChain, question: str, *, k: int | None = None, where: RetrievalFilter | None = None) -> RagAnswer:
    """The chain's answer, with the index's and the database's failures as 503s that name the fix."""
    try:
        return chain.get().ask(question, k=k, where=where)
    except IndexMissingError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "60"}) from None
    except ServiceUnavailableError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "5"}) from None


def rag_router() -> APIRouter:
    router = APIRouter(prefix="/v1/rag", tags=["rag"])

    @router.post(
        "/query",
        response_model=RagResponse,
        summary="Answer a question from the curated lake and the indexed documents, with citations",
        responses={
            401: {"description": "No X-API-Key header."},
            403: {"description": "The X-API-Key header does not hold a valid key."},
            413: {"description": "Body over MDSLAB_API__MAX_QUERY_BODY_BYTES."},
            422: {"description": "Empty or oversized question, or an invalid filter: the field and the reason."},
            429: {"description": "This key's rate limit; Retry-After says when to try again."},
            503: {"description": "The index is empty (run `mdslab rag index`) or PostgreSQL is unreachable."},
        },
        dependencies=[Depends(within_rate_limit)],
    )
    def query(body: RagQuery, chain: ChainDep, metrics: RagMetricsDep) -> dict[str, Any]:
        answer = ask(chain, body.question, k=body.k, where=body.where())
        metrics.observe(answer)
        return answer.as_dict()

    return router
