"""What every ``/v1`` request passes before a route sees it: the API key, then the body size.

FastAPI reads and parses a route's JSON body before its dependencies run, so a key check in a
dependency came after an unauthenticated caller's body had been read and parsed, of any size. Here
the key is checked first (nothing of the body is read without one), a declared Content-Length over
the limit is refused at once, and a streamed body is counted and cut off at the limit.
"""

from __future__ import annotations

import json
import logging

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mdslab import api_keys
from mdslab.api_keys import ApiKeys
from mdslab.llm.gateway import GatewayError

# OpenAI-compatible routes: Bearer keys, the gateway's extra keys, errors in OpenAI's shape.
GATEWAY_PATHS = frozenset({"/v1/chat/completions", "/v1/models"})
# Routes that take batches of events: the larger body limit.
INGEST_PATHS = frozenset({"/v1/transactions", "/v1/claims"})
# OpenLineage's endpoint (Marquez's path): producers send the key as a Bearer token; an event with
# column lineage and SQL can be large, so the ingest limit applies.
LINEAGE_PATHS = frozenset({"/api/v1/lineage"})
GUARDED_PREFIXES = ("/v1/", "/api/v1/")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


GATEWAY_LOG = logging.getLogger("mdslab.gateway")


def _response(status_code: int, message: str, code: str, gateway: bool) -> JSONResponse:
    """A refusal in the shape the route's clients read: OpenAI's error object on the gateway."""
    if gateway:
        return GatewayError(status_code, message, code).response()
    return JSONResponse({"detail": message}, status_code=status_code)


class RequestGuard:
    """ASGI middleware: key, then body size, for every ``/v1`` and ``/api/v1`` route."""

    def __init__(self, app: ASGIApp, *, keys: ApiKeys, ingest_body_bytes: int, query_body_bytes: int) -> None:
        self.app = app
        self.keys = keys
        self.ingest_body_bytes = ingest_body_bytes
        self.query_body_bytes = query_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(GUARDED_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        gateway = path in GATEWAY_PATHS
        refused = api_keys.refusal(self.keys, headers, gateway=gateway, bearer=path in LINEAGE_PATHS)
        refusal = None if refused is None else _response(refused.status_code, refused.message, refused.code, gateway)
        if refusal is None and scope["method"] in BODY_METHODS:
            limit = self.ingest_body_bytes if path in INGEST_PATHS | LINEAGE_PATHS else self.query_body_bytes
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                message = f"body of {declared} bytes exceeds the limit of {limit} bytes for {path}"
                refusal = _response(413, message, "request_too_large", gateway)
            else:
                receive = _counted(receive, limit, path)
        if refusal is not None:
            if gateway:  # the gateway's log has one line per request, refused ones included
                record = {"event": "refused", "path": path, "status": refusal.status_code, "key": "-"}
                GATEWAY_LOG.info(json.dumps(record))
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _counted(receive: Receive, limit: int, path: str) -> Receive:
    """``receive`` that stops a body (declared size or not) as soon as it passes ``limit`` bytes."""
    seen = 0

    async def counting() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                # FastAPI lets an HTTPException raised while reading the body through as the response
                raise HTTPException(
                    status.HTTP_413_CONTENT_TOO_LARGE, f"body exceeds the limit of {limit} bytes for {path}"
                )
        return message

    return counting
