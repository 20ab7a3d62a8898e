"""The FastAPI app: health and readiness probes, Prometheus metrics, and the routes of each workload.

It is the roof of the house (like the CLI): it composes routers from the packages below and hands
them their clients through ``app.state``; the routes reach them through typed dependencies.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mdslab import __version__
from mdslab.api.guard import RequestGuard
from mdslab.api.problems import invalid_events_body
from mdslab.api.sql_routes import sql_router
from mdslab.api_keys import ApiKeys, TokenBucket
from mdslab.eventbus import EventPublisher
from mdslab.llm.chain import LazyChain
from mdslab.llm.gateway import Gateway, GatewayMetrics, gateway_router
from mdslab.llm.routes import RagMetrics, rag_router
from mdslab.ml.serving import ChampionCache, ModelMetrics, models_router
from mdslab.settings import Settings
from mdslab.telemetry import register_process_metrics
from mdslab.workloads.ingestion.events import Topics
from mdslab.workloads.ingestion.routes import IngestMetrics, contract_schemas, ingest_router, require_api_key
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.lake_metrics import LakeCollector
from mdslab.workloads.lineage.catalog_routes import catalog_router
from mdslab.workloads.lineage.routes import lineage_router
from mdslab.workloads.lineage.store import EventStore

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "mdslab_api_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "mdslab_api_request_duration_seconds",
            "Time from request to response, by route and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class MeasureRequests:
    """Request count and latency per route template, as plain ASGI (Starlette's ``BaseHTTPMiddleware``
    cost about half a millisecond of CPU per request, measured with bench/ingest.py)."""

    def __init__(self, app: ASGIApp, http: HttpMetrics) -> None:
        self.app = app
        self.http = http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")  # the router sets it in the scope
            self.http.latency.labels(path, scope["method"]).observe(time.perf_counter() - started)
            self.http.requests.labels(path, scope["method"], str(status)).inc()


def create_app(settings: Settings, *, publisher: EventPublisher | None = None) -> FastAPI:
    """The API for ``settings``; pass a ``publisher`` to share one, else the app opens its own."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = publisher is None
        app.state.publisher = publisher or EventPublisher(
            settings.kafka, delivery_timeout_s=settings.api.delivery_timeout_s, client_id="mdslab-api"
        )
        try:
            yield
        finally:
            await run_in_threadpool(app.state.rag_chain.close)
            await run_in_threadpool(app.state.lineage_store.close)
            if owned:
                await run_in_threadpool(app.state.publisher.close)

    # Swagger UI and ReDoc from a locked package, not a CDN: /docs works on a machine without internet
    app = FastAPIOffline(
        title="mdslab API",
        version=__version__,
        description="Ingest financial transactions and insurance claims (validated by the data contracts, "
        "acknowledged by Kafka before 202), score transactions with the champion fraud model, ask questions of "
        "the curated lake with cited answers (RAG), an OpenAI-compatible LLM gateway, receive OpenLineage events "
        "(Marquez's endpoint), read-only SQL over the lake's tables, plus health, readiness and Prometheus metrics.",
        lifespan=lifespan,
    )
    registry = CollectorRegistry()
    http = HttpMetrics(registry)
    lake = lakehouse(settings)
    registry.register(LakeCollector(lake, settings.postgres))
    register_process_metrics(registry)
    app.state.api_settings = settings.api
    app.state.ingest_metrics = IngestMetrics(registry)
    if publisher is not None:
        app.state.publisher = publisher

    app.state.api_keys = ApiKeys(settings.api, settings.rag)
    app.add_middleware(
        RequestGuard,
        keys=app.state.api_keys,
        ingest_body_bytes=settings.api.max_body_bytes,
        query_body_bytes=settings.api.max_query_body_bytes,
    )
    app.add_middleware(MeasureRequests, http=http)  # outermost: refusals are measured too

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content=jsonable_encoder(invalid_events_body(exc.errors())))

    app.include_router(_operations_router(settings, registry))
    app.include_router(ingest_router(settings.api, Topics(settings.kafka.topic_prefix)))
    app.state.fraud_champion = ChampionCache(settings, "fraud")
    app.state.model_metrics = ModelMetrics(registry)
    app.include_router(models_router(), dependencies=[Depends(require_api_key)])
    app.state.rag_chain = LazyChain(settings)
    app.state.rag_metrics = RagMetrics(registry)
    app.state.rag_limiter = TokenBucket(settings.rag.query_rate_per_minute, settings.rag.query_burst)
    app.include_router(rag_router(), dependencies=[Depends(require_api_key)])
    app.state.gateway = Gateway(app.state.api_keys, settings.rag, app.state.rag_chain, GatewayMetrics(registry))
    app.include_router(gateway_router())
    app.state.lineage_store = EventStore(settings.postgres, application_name="mdslab-api-lineage")
    app.include_router(lineage_router(app.state.lineage_store))
    app.include_router(catalog_router(lake, settings), dependencies=[Depends(require_api_key)])
    app.include_router(sql_router(lake, settings.api), dependencies=[Depends(require_api_key)])

    _document_contracts(app)
    return app


def _operations_router(settings: Settings, registry: CollectorRegistry) -> APIRouter:
    """Liveness, readiness (the Kafka broker answers) and the Prometheus metrics of ``registry``."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process serves requests")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: the Kafka broker answers",
        responses={503: {"description": "The broker does not answer."}},
    )
    async def readyz(request: Request) -> JSONResponse:
        publisher = request.app.state.publisher
        reachable = await run_in_threadpool(publisher.broker_reachable)
        if reachable:
            return JSONResponse({"status": "ready", "kafka": "ok"})
        problem = publisher.fatal_error
        detail = f"producer failed, being replaced: {problem}" if problem else "no answer"
        return JSONResponse(
            {"status": "not ready", "kafka": f"{detail} ({settings.kafka.bootstrap_servers})"}, status_code=503
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        # in the thread pool: the lake collector's snapshot (every 30 s) reads Delta logs for ~1 s
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router


def _document_contracts(app: FastAPI) -> None:
    """/docs and /openapi.json also carry the data contracts' JSON Schemas (the events' bodies)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(contract_schemas())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
