"""The LLM gateway: an OpenAI-compatible ``/v1/chat/completions`` in front of the lab's answer backends.

Model ``mdslab-rag`` is answered locally by the RAG chain (offline, grounded, cited); any other model
goes to the upstream OpenAI-compatible endpoint when one is configured (``MDSLAB_RAG__LLM_BASE_URL``).
Every request is authenticated by API key (``Authorization: Bearer`` as OpenAI clients send it, or
``X-API-Key``), rate-limited per key (token bucket), logged as one JSON line and counted in Prometheus.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from mdslab.api_keys import ApiKeys, TokenBucket, fingerprint, presented_key, refusal
from mdslab.llm.chain import LazyChain
from mdslab.llm.routes import MAX_QUESTION_CHARS, ask
from mdslab.settings import RagSettings

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

    def __init__(self, keys: ApiKeys, rag: RagSettings, chain: LazyChain, metrics: GatewayMetrics) -> None:
        self.keys = keys
        self.limiter = TokenBucket(rag.gateway_rate_per_minute, rag.gateway_burst)
        self.rag = rag
        self.chain = chain
        self.metrics = metrics

    def key_id(self, request: Request) -> str:
        """The caller's key, checked (the request guard did so before the body was read; this is for an
        app assembled without it), as a short fingerprint: keys never reach logs."""
        refused = refusal(self.keys, request.headers, gateway=True)
        if refused is not None:
            raise GatewayError(refused.status_code, refused.message, refused.code)
        key = presented_key(request.headers, bearer=True)
        return fingerprint(key)

    def served_models(self) -> list[str]:
        """The local RAG model, and the upstream's one model when an endpoint is configured: nothing else
        is forwarded (a client cannot spend the upstream key on any model it names)."""
        return [LOCAL_MODEL, *([self.rag.llm_model] if self.rag.llm_base_url else [])]


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


# Caps on what one request may ask of the gateway (and, through it, of the upstream's key).
MAX_MESSAGES = 64
MAX_PROMPT_CHARS = 32_000
MAX_COMPLETION_TOKENS = 4096
MAX_STREAM_SECONDS = 300.0


class ChatRequest(BaseModel):
    """The OpenAI chat-completions request. Fields beyond these are dropped, not forwarded upstream."""

    model: str = Field(min_length=1, max_length=200, description=f"`{LOCAL_MODEL}` (local RAG) or the upstream model.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_COMPLETION_TOKENS)
    stop: str | list[str] | None = Field(default=None, max_length=4)
    user: str | None = Field(default=None, max_length=200)

    model_config = {"extra": "ignore"}

    @model_validator(mode="after")
    def _prompt_within_limit(self) -> ChatRequest:
        chars = sum(len(message.text()) for message in self.messages)
        if chars > MAX_PROMPT_CHARS:
            raise ValueError(f"the messages hold {chars:,} characters, over the gateway's {MAX_PROMPT_CHARS:,}")
        return self


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
                deadline = time.monotonic() + MAX_STREAM_SECONDS
                try:
                    async for chunk in upstream.aiter_raw():
                        yield chunk
                        if time.monotonic() > deadline:  # a stream may not hold a connection for ever
                            log.warning("upstream stream cut after %.0f s", MAX_STREAM_SECONDS)
                            break
                finally:
                    await upstream.aclose()
                    await client.aclose()

            return StreamingResponse(relay(), status_code=upstream.status_code, media_type="text/event-stream")
        reply = await client.post(url, json=raw, headers=headers)
        await client.aclose()
        try:
            return JSONResponse(reply.json(), status_code=reply.status_code)
        except ValueError:
            # the upstream's address and its body stay out of the answer (the log has the status)
            log.warning("upstream answered %d without JSON", reply.status_code)
            raise GatewayError(
                502, f"the upstream endpoint answered {reply.status_code} without JSON", "upstream_error"
            ) from None
    except httpx.HTTPError as exc:
        await client.aclose()
        log.warning("upstream request failed: %s", type(exc).__name__)
        raise GatewayError(502, f"the upstream endpoint failed ({type(exc).__name__})", "upstream_error") from None


def _within_rate_limit(gateway: Gateway, key_id: str) -> None:
    """Take one request from this key's budget, or refuse with 429 and when to retry."""
    wait = gateway.limiter.take(key_id)
    if wait > 0:
        limit = f"{gateway.rag.gateway_rate_per_minute}/min, burst {gateway.rag.gateway_burst}"
        raise GatewayError(
            429, f"rate limit of this API key reached ({limit}); retry in {wait:.1f} s", "rate_limit_exceeded",
            headers={"Retry-After": str(math.ceil(wait))},
        )  # fmt: skip


def _served_here(gateway: Gateway, model: str) -> None:
    """Refuse with 404, naming the served models (and how to forward one), a model this gateway lacks."""
    served = gateway.served_models()
    if model not in served:
        upstream_hint = (
            ""
            if gateway.rag.llm_base_url
            else "; MDSLAB_RAG__LLM_BASE_URL and MDSLAB_RAG__LLM_MODEL "
            "forward one model to an OpenAI-compatible endpoint"
        )
        raise GatewayError(
            404,
            f"model {model[:60]!r} is not served here: models {', '.join(served)}{upstream_hint}",
            "model_not_found",
        )


def gateway_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["llm gateway"])

    @router.get("/models", summary="Models this gateway serves (OpenAI-compatible)")
    async def models(request: Request, gateway: GatewayDep) -> JSONResponse:
        try:
            gateway.key_id(request)
        except GatewayError as error:
            return error.response()
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "mdslab" if model == LOCAL_MODEL else "upstream"}
            for model in gateway.served_models()
        ]
        return JSONResponse({"object": "list", "data": data})

    @router.post(
        "/chat/completions",
        summary="OpenAI-compatible chat completions: local RAG (`mdslab-rag`) or the upstream endpoint",
        responses={
            401: {"description": "Missing or invalid API key."},
            404: {"description": "A model this gateway does not serve (GET /v1/models lists them)."},
            413: {"description": "Body over MDSLAB_API__MAX_QUERY_BODY_BYTES."},
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
            _within_rate_limit(gateway, key_id)
            if backend == "upstream":
                _served_here(gateway, body.model)
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
