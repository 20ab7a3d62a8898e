"""The LLM gateway: an OpenAI-compatible ``/v1/chat/completions`` in front of the lab's answer backends.

Model ``mdslab-rag`` is answered locally by the RAG chain (offline, grounded, cited); any other model
goes to the upstream OpenAI-compatible endpoint when one is configured (``MDSLAB_RAG__LLM_BASE_URL``).
Every request is authenticated by API key (``Authorization: Bearer`` as OpenAI clients send it, or
``X-API-Key``), rate-limited per key (token bucket), logged as one JSON line and counted in Prometheus.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mdslab.llm.chain import LazyChain
from mdslab.llm.routes import MAX_QUESTION_CHARS, ask
from mdslab.settings import ApiSettings, RagSettings

LOCAL_MODEL = "mdslab-rag"
log = logging.getLogger("mdslab.gateway")


class GatewayError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "code"}}``."""

    def __init__(self, status_code: int, message: str, code: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code, self.message, self.code, self.headers = status_code, message, code, headers or {}

    def response(self) -> JSONResponse:
        kind = "invalid_request_error" if self.status_code < 500 else "api_error"
        body = {"error": {"message": self.message, "type": kind, "param": None, "code": self.code}}
        return JSONResponse(body, status_code=self.status_code, headers=self.headers)


class TokenBucket:
    """Per-key request budget: ``burst`` at once, refilled at ``per_minute``; thread-safe."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock: Callable[[], float] = clock
        self._tokens: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 when the request may go ahead, else the seconds until it could."""
        with self._lock:
            now = self.clock()
            tokens, last = self._tokens.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._tokens[key] = (tokens - 1.0, now)
                return 0.0
            self._tokens[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "mdslab_gateway_requests",
            "Chat completion requests by backend, model and outcome.",
            ["backend", "model", "status"],
            registry=registry,
        )


class Gateway:
    """What the routes need: the accepted keys, the limiter, the backends and the metrics."""

    def __init__(self, api: ApiSettings, rag: RagSettings, chain: LazyChain, metrics: GatewayMetrics) -> None:
        extra = [k.strip() for k in rag.gateway_keys.get_secret_value().split(",") if k.strip()]
        self.keys = {k for k in (api.api_key.get_secret_value(), *extra) if k}
        self.limiter = TokenBucket(rag.gateway_rate_per_minute, rag.gateway_burst)
        self.rag = rag
        self.chain = chain
        self.metrics = metrics

    def key_id(self, request: Request) -> str:
        """The caller's key, checked; returned as a short fingerprint (keys never reach logs)."""
        auth = request.headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
        if not key:
            raise GatewayError(
                401, "missing API key: send `Authorization: Bearer <key>` (see `mdslab config`)", "missing_api_key"
            )
        if key not in self.keys:
            raise GatewayError(401, "the API key is not valid for this gateway", "invalid_api_key")
        return hashlib.sha256(key.encode()).hexdigest()[:8]


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


class ContentPart(BaseModel):
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The OpenAI chat-completions request; fields the local backend does not use are accepted and ignored."""

    model: str = Field(min_length=1, description=f"`{LOCAL_MODEL}` (local RAG) or a model of the upstream endpoint.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    user: str | None = None

    model_config = {"extra": "allow"}


def _completion(request_id: str, model: str, content: str, prompt: str) -> dict[str, Any]:
    prompt_tokens, completion_tokens = len(prompt.split()), len(content.split())  # words, as an approximation
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _stream(request_id: str, model: str, content: str) -> Iterator[str]:
    base = {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    for delta, finish in (({"role": "assistant", "content": content}, None), ({}, "stop")):
        yield f"data: {json.dumps(base | {'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}]})}\n\n"
    yield "data: [DONE]\n\n"


def _local_answer(gateway: Gateway, body: ChatRequest) -> str:
    question = next((m.text() for m in reversed(body.messages) if m.role == "user"), "").strip()
    if not question:
        raise GatewayError(
            422, "messages: the local RAG model answers the last user message, and there is none", "invalid_messages"
        )
    if len(question) > MAX_QUESTION_CHARS:
        raise GatewayError(
            422,
            f"messages: the last user message has {len(question)} characters, over {MAX_QUESTION_CHARS}",
            "question_too_long",
        )
    answer = ask(gateway.chain, question)
    sources = "\n".join(f"[{c.number}] {c.source}" for c in answer.citations)
    return f"{answer.answer}\n\nSources:\n{sources}" if sources else answer.answer


async def _upstream(gateway: Gateway, raw: dict[str, Any]) -> JSONResponse | StreamingResponse:
    url = gateway.rag.llm_base_url.rstrip("/") + "/chat/completions"
    headers = (
        {"Authorization": f"Bearer {gateway.rag.llm_api_key.get_secret_value()}"}
        if gateway.rag.llm_api_key.get_secret_value()
        else {}
    )
    client = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=5.0))
    try:
        if raw.get("stream"):
            upstream = await client.send(client.build_request("POST", url, json=raw, headers=headers), stream=True)

            async def relay() -> Any:
                try:
                    async for chunk in upstream.aiter_raw():
                        yield chunk
                finally:
                    await upstream.aclose()
                    await client.aclose()

            return StreamingResponse(relay(), status_code=upstream.status_code, media_type="text/event-stream")
        reply = await client.post(url, json=raw, headers=headers)
        await client.aclose()
        try:
            return JSONResponse(reply.json(), status_code=reply.status_code)
        except ValueError:
            raise GatewayError(
                502, f"upstream {url} answered {reply.status_code} without JSON: {reply.text[:200]!r}", "upstream_error"
            ) from None
    except httpx.HTTPError as exc:
        await client.aclose()
        raise GatewayError(502, f"upstream {url} failed: {type(exc).__name__}: {exc}", "upstream_error") from None


def gateway_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["llm gateway"])

    @router.get("/models", summary="Models this gateway serves (OpenAI-compatible)")
    async def models(request: Request, gateway: GatewayDep) -> JSONResponse:
        try:
            gateway.key_id(request)
        except GatewayError as error:
            return error.response()
        data = [{"id": LOCAL_MODEL, "object": "model", "created": 0, "owned_by": "mdslab"}]
        if gateway.rag.llm_base_url:
            data.append({"id": gateway.rag.llm_model, "object": "model", "created": 0, "owned_by": "upstream"})
        return JSONResponse({"object": "list", "data": data})

    @router.post(
        "/chat/completions",
        summary="OpenAI-compatible chat completions: local RAG (`mdslab-rag`) or the upstream endpoint",
        responses={
            401: {"description": "Missing or invalid API key."},
            404: {"description": "Unknown model."},
            422: {"description": "Invalid request: the field and the reason."},
            429: {"description": "This key's rate limit; Retry-After says when to try again."},
            502: {"description": "The upstream endpoint failed."},
            503: {"description": "The RAG index is empty or PostgreSQL is unreachable."},
        },
    )
    async def chat_completions(request: Request, body: ChatRequest, gateway: GatewayDep) -> Any:
        started, request_id = time.perf_counter(), f"chatcmpl-{uuid.uuid4().hex[:24]}"
        backend = "local" if body.model == LOCAL_MODEL else "upstream"
        key_id, code, completion_chars = "-", 200, 0
        try:
            key_id = gateway.key_id(request)
            wait = gateway.limiter.take(key_id)
            if wait > 0:
                limit = f"{gateway.rag.gateway_rate_per_minute}/min, burst {gateway.rag.gateway_burst}"
                raise GatewayError(
                    429, f"rate limit of this API key reached ({limit}); retry in {wait:.1f} s", "rate_limit_exceeded",
                    headers={"Retry-After": str(math.ceil(wait))},
                )  # fmt: skip
            if backend == "upstream":
                if not gateway.rag.llm_base_url:
                    raise GatewayError(
                        404, f"model {body.model!r} is not served here: use {LOCAL_MODEL!r}, or set "
                        "MDSLAB_RAG__LLM_BASE_URL to forward other models to an OpenAI-compatible endpoint",
                        "model_not_found",
                    )  # fmt: skip
                response = await _upstream(gateway, body.model_dump(exclude_none=True))
                code = response.status_code
                return response
            try:
                content = await run_in_threadpool(_local_answer, gateway, body)
            except HTTPException as exc:
                raise GatewayError(
                    exc.status_code, str(exc.detail), "rag_unavailable", headers=dict(exc.headers or {})
                ) from None
            completion_chars = len(content)
            prompt = " ".join(m.text() for m in body.messages)
            if body.stream:
                return StreamingResponse(_stream(request_id, LOCAL_MODEL, content), media_type="text/event-stream")
            return JSONResponse(
                _completion(request_id, LOCAL_MODEL, content, prompt), headers={"x-request-id": request_id}
            )
        except GatewayError as error:
            code = error.status_code
            return error.response()
        finally:
            known = body.model in (LOCAL_MODEL, gateway.rag.llm_model)  # one label per client-chosen name would grow
            gateway.metrics.requests.labels(backend, body.model if known else "other", str(code)).inc()
            record = {
                "event": "chat_completion", "request_id": request_id, "key": key_id, "model": body.model,
                "backend": backend, "status": code, "stream": body.stream, "messages": len(body.messages),
                "completion_chars": completion_chars, "ms": round((time.perf_counter() - started) * 1000, 1),
            }  # fmt: skip
            log.info(json.dumps(record))

    return router
