"""End to end in bench/rag.py: the same questions answered by the RAG chain in this process (the
baseline) and through ``POST /v1/rag/query`` on a real uvicorn server, one request at a time.

Both paths build their chain the same way (``build_chain(settings)``: MiniLM on one thread, the
configured extractive answer step, the bench schema), so the difference is what the API adds: HTTP,
validation, JSON, the thread-pool hop of a sync route, metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from mdslab.llm.chain import build_chain
from mdslab.llm.questions import Question
from mdslab.settings import Settings

Advance = Callable[[int], None]


def _figures(client_ms: list[float], server: list[dict[str, float]], contained: list[bool]) -> dict[str, Any]:
    return {
        "client_ms": client_ms,
        "retrieve_ms": [s["retrieve"] for s in server],
        "answer_ms": [s["answer"] for s in server],
        "server_total_ms": [s["total"] for s in server],
        "contains_expected_share": round(sum(contained) / len(contained), 4) if contained else None,
    }


def in_process(
    settings: Settings, questions: Sequence[Question], warm_up: Sequence[str], k: int, advance: Advance
) -> dict[str, Any]:
    """``build_chain(settings).ask(question)`` timed around the call."""
    chain = build_chain(settings)
    try:
        for text in warm_up:
            chain.ask(text, k=k)
        client_ms, server, contained = [], [], []
        for question in questions:
            started = time.perf_counter()
            answer = chain.ask(question.text, k=k)
            client_ms.append((time.perf_counter() - started) * 1000)
            server.append({"retrieve": answer.retrieve_ms, "answer": answer.answer_ms, "total": answer.total_ms})
            contained.append(question.contained_in(answer.answer))
            advance(1)
    finally:
        chain.store.close()
    return _figures(client_ms, server, contained)


def over_http(
    settings: Settings, questions: Sequence[Question], warm_up: Sequence[str], k: int, advance: Advance
) -> dict[str, Any]:
    """Sequential ``POST /v1/rag/query`` through httpx (keep-alive) to ``create_app(settings)`` served by
    uvicorn in a thread of this process; latency from before the request is sent to the parsed reply."""
    from mdslab.api.app import create_app
    from mdslab.api.server import background_server

    headers = {"X-API-Key": settings.api.api_key.get_secret_value()}
    with (
        background_server(create_app(settings)) as url,
        httpx.Client(base_url=url, headers=headers, timeout=60.0) as client,
    ):
        for text in warm_up:
            client.post("/v1/rag/query", json={"question": text, "k": k}).raise_for_status()
        client_ms, server, contained = [], [], []
        for question in questions:
            started = time.perf_counter()
            reply = client.post("/v1/rag/query", json={"question": question.text, "k": k})
            reply.raise_for_status()
            body = reply.json()
            client_ms.append((time.perf_counter() - started) * 1000)
            server.append(body["timings_ms"])
            contained.append(question.contained_in(body["answer"]))
            advance(1)
    return _figures(client_ms, server, contained)
