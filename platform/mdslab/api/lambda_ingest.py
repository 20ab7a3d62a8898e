"""The ingest routes as an AWS Lambda behind API Gateway (``infra/sam``): ``POST /v1/transactions`` and
``POST /v1/claims`` with the same key check, contracts, validation (:func:`parse_events`), producer
settings, topics, statuses and bodies as the API, so a client cannot tell them apart.

Only the ingest path is imported here (not the API app with its ML and RAG routes): a Lambda pays for
every import at each cold start. The producer is made once per execution environment and reused by the
invocations that follow; each invocation answers 202 only after the broker acknowledged every event, as
the API does (:meth:`EventPublisher.publish_blocking`: a Lambda handler has no event loop).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError

from mdslab.api.problems import invalid_events_body
from mdslab.api_keys import ApiKeys, refusal
from mdslab.eventbus import BrokerUnavailableError, EventPublisher
from mdslab.settings import Settings, load_settings
from mdslab.workloads.ingestion.events import EVENT_TYPES, Topics
from mdslab.workloads.ingestion.routes import IngestAccepted, kafka_messages, parse_events

ROUTES = {f"/v1/{event_type.name}": event_type for event_type in EVENT_TYPES}


def _response(status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body),
    }


def _problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return _response(status, {"detail": detail}, headers)


def _method_and_path(event: Mapping[str, Any]) -> tuple[str, str]:
    """From a REST API (payload 1.0) or an HTTP API (payload 2.0) proxy event."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = event.get("httpMethod") or http.get("method") or ""
    path = event.get("path") or event.get("rawPath") or http.get("path") or ""
    stage = (event.get("requestContext") or {}).get("stage")
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):  # an HTTP API's named stage
        path = path[len(stage) + 1 :]
    return str(method).upper(), str(path).rstrip("/")


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body, validate=True)
    return str(body).encode()


class LambdaIngest:
    """One execution environment's handler: its settings, key check and producer, made once."""

    def __init__(self, settings: Settings, publisher: EventPublisher) -> None:
        self.settings = settings
        self.publisher = publisher
        self.keys = ApiKeys(settings.api, settings.rag)
        self.topics = Topics(settings.kafka.topic_prefix)

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        method, path = _method_and_path(event)
        event_type = ROUTES.get(path)
        if event_type is None:
            return _problem(404, f"no route {path or '(none)'}: POST {' or '.join(ROUTES)}")
        if method != "POST":
            return _problem(405, f"{method or '(no method)'} {path}: only POST is allowed", {"Allow": "POST"})
        headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
        refused = refusal(self.keys, headers, gateway=False)
        if refused is not None:
            return _problem(refused.status_code, refused.message)
        try:
            body = _body(event)
        except (binascii.Error, ValueError):
            return _problem(400, "the event's body is marked base64 but is not valid base64")
        if len(body) > self.settings.api.max_body_bytes:
            return _problem(
                413, f"body of {len(body):,} bytes; at most {self.settings.api.max_body_bytes:,}: split the batch"
            )
        try:
            items, _ = parse_events(event_type, body, self.settings.api.max_batch_events)
        except RequestValidationError as invalid:
            return _response(422, invalid_events_body(invalid.errors()))
        except HTTPException as refused_batch:
            return _problem(refused_batch.status_code, str(refused_batch.detail))
        try:
            self.publisher.publish_blocking(
                self.topics.of(event_type), kafka_messages(event_type, items), event_type.headers
            )
        except BrokerUnavailableError as unavailable:
            return _problem(
                503,
                f"{unavailable}; nothing from this request may be assumed stored: retry it",
                {"Retry-After": str(self.settings.api.retry_after_s)},
            )
        accepted = IngestAccepted(accepted=len(items), event_ids=[str(item["event_id"]) for item in items])
        return _response(202, accepted.model_dump())


_handler: LambdaIngest | None = None


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (``infra/sam/template.yaml``): settings from the function's environment
    (``MDSLAB_KAFKA__BOOTSTRAP_SERVERS``, ``MDSLAB_API__API_KEY``, ...), as every ``mdslab`` process."""
    del context
    global _handler
    if _handler is None:
        settings = load_settings()
        publisher = EventPublisher(
            settings.kafka, delivery_timeout_s=settings.api.delivery_timeout_s, client_id="mdslab-lambda"
        )
        _handler = LambdaIngest(settings, publisher)
    return _handler(event)
