"""``POST /v1/transactions`` and ``POST /v1/claims``: validate against the contract, publish to Kafka,
answer 202 only once the broker has acknowledged every event of the request.

A request is all or nothing: when any event is invalid nothing is published and the 422 names each
bad event (by index), field and reason, so the client can fix or drop exactly those and resend.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Security, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from mdslab.api_keys import API_KEY_HEADER, refusal
from mdslab.eventbus import BrokerUnavailableError, EventPublisher
from mdslab.settings import ApiSettings
from mdslab.workloads.contracts import Contract
from mdslab.workloads.ingestion.events import EVENT_TYPES, EventType, Topics

_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="The ingest API key.")


class IngestAccepted(BaseModel):
    """What a 202 means: every listed event is stored by the broker and will reach bronze."""

    accepted: int = Field(description="Number of events acknowledged by the broker.")
    event_ids: list[str] = Field(description="Their event ids, in the order they were sent.")


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "mdslab_ingest_events",
            "Events received by the ingestion API, by event type and outcome "
            "(accepted: acknowledged by Kafka; rejected: failed validation; failed: broker unavailable).",
            ["event_type", "outcome"],
            registry=registry,
        )


# Dependencies are coroutines: plain functions would each go through the thread pool on every request.
async def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.api_settings
    return settings


async def get_publisher(request: Request) -> EventPublisher:
    publisher: EventPublisher = request.app.state.publisher
    return publisher


async def get_metrics(request: Request) -> IngestMetrics:
    metrics: IngestMetrics = request.app.state.ingest_metrics
    return metrics


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
PublisherDep = Annotated[EventPublisher, Depends(get_publisher)]
MetricsDep = Annotated[IngestMetrics, Depends(get_metrics)]


async def require_api_key(request: Request, key: Annotated[str | None, Security(_api_key_header)]) -> None:
    """The key check as the OpenAPI document shows it (/docs' Authorize button). The request guard
    (:mod:`mdslab.api.guard`) has already refused a missing or wrong key before any body was read; this
    repeats the check for an app assembled without it."""
    del key  # declared for the OpenAPI document; the check reads the headers itself
    refused = refusal(request.app.state.api_keys, request.headers, gateway=False)
    if refused is not None:
        raise HTTPException(refused.status_code, refused.message)


@cache
def _list_adapter(contract: type[Contract]) -> TypeAdapter[list[Contract]]:
    return TypeAdapter(list[contract])  # type: ignore[valid-type]


def _validation_errors(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[dict[str, Any]]:
    return [{"loc": [*prefix, *error["loc"]], "msg": error["msg"], "type": error["type"]} for error in exc.errors()]


def parse_events(event_type: EventType, body: bytes, max_events: int) -> tuple[list[dict[str, Any]], bool]:
    """The events of a body holding one event or a list of them; raises 422/413 with each problem."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        problem = {"loc": ["body"], "msg": f"body is not valid JSON: {exc}", "type": "json_invalid"}
        raise RequestValidationError([problem]) from None
    batch = isinstance(document, list)
    items: list[Any] = document if batch else [document]
    if not items:
        raise RequestValidationError([{"loc": ["body"], "msg": "the list holds no events", "type": "too_short"}])
    if len(items) > max_events:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(items)} events in one request; at most {max_events}: split the batch",
        )
    try:
        _list_adapter(event_type.contract).validate_python(items)
    except ValidationError as exc:
        errors = _validation_errors(exc, ("body",))
        if not batch:  # the index of a single event is noise
            errors = [{**error, "loc": ["body", *error["loc"][2:]]} for error in errors]
        raise RequestValidationError(errors) from None
    return items, batch


def kafka_messages(event_type: EventType, items: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """(key, value) per event: keyed by the entity that orders its events, the value the event's JSON."""
    return [(str(item[event_type.key_field]).encode(), orjson.dumps(item)) for item in items]


def _route(event_type: EventType, topic: str) -> Any:
    async def ingest(
        request: Request, settings: SettingsDep, publisher: PublisherDep, metrics: MetricsDep
    ) -> IngestAccepted:
        body = await request.body()  # size capped by the request guard
        try:
            items, _ = parse_events(event_type, body, settings.max_batch_events)
        except (RequestValidationError, HTTPException):
            metrics.events.labels(event_type.name, "rejected").inc()
            raise
        messages = kafka_messages(event_type, items)
        try:
            await publisher.publish(topic, messages, event_type.headers)
        except BrokerUnavailableError as exc:
            metrics.events.labels(event_type.name, "failed").inc(len(items))
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"{exc}; nothing from this request may be assumed stored: retry it",
                headers={"Retry-After": str(settings.retry_after_s)},
            ) from None
        metrics.events.labels(event_type.name, "accepted").inc(len(items))
        return IngestAccepted(accepted=len(items), event_ids=[str(item["event_id"]) for item in items])

    ingest.__name__ = f"ingest_{event_type.name}"
    return ingest


def _request_body_schema(event_type: EventType, max_events: int) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{event_type.contract.__name__}"}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [ref, {"type": "array", "items": ref, "minItems": 1, "maxItems": max_events}]}
            }
        },
    }


def ingest_router(settings: ApiSettings, topics: Topics) -> APIRouter:
    """The ingest routes, one per event type; their request schemas come from the contracts."""
    router = APIRouter(prefix="/v1", tags=["ingest"], dependencies=[Depends(require_api_key)])
    problems: dict[int | str, dict[str, Any]] = {
        401: {"description": "No API key sent."},
        403: {"description": "Wrong API key."},
        413: {"description": "Body or batch too large."},
        422: {"description": "Invalid events: each bad field with the reason; nothing was accepted."},
        503: {"description": "The broker did not acknowledge; retry after Retry-After seconds."},
    }
    for event_type in EVENT_TYPES:
        router.add_api_route(
            f"/{event_type.name}",
            _route(event_type, topics.of(event_type)),
            methods=["POST"],
            status_code=status.HTTP_202_ACCEPTED,
            response_model=IngestAccepted,
            summary=f"Ingest {event_type.name} (one event or a list of up to {settings.max_batch_events})",
            description=f"{event_type.contract.__doc__} Contract `{event_type.contract.CONTRACT_NAME}` "
            f"v{event_type.contract.CONTRACT_VERSION}; published to Kafka topic `{topics.of(event_type)}`, keyed by "
            f"`{event_type.key_field}`. 202 only after the broker acknowledged every event.",
            responses=problems,
            openapi_extra={"requestBody": _request_body_schema(event_type, settings.max_batch_events)},
        )
    return router


def contract_schemas() -> dict[str, Any]:
    """The contracts' JSON Schemas, for the OpenAPI components the request bodies refer to."""
    schemas: dict[str, Any] = {}
    for event_type in EVENT_TYPES:
        schema = event_type.contract.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[event_type.contract.__name__] = schema
    return schemas
