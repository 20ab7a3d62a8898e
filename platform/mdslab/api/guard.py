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

from mdslab.api_keys import API_KEY_HEADER, ApiKeys, presented_key

# OpenAI-compatible routes: Bearer keys, the gateway's extra keys, errors in OpenAI's shape.
GATEWAY_PATHS = frozenset({"/v1/chat/completions", "/v1/models"})
# Routes that take batches of events: the larger body limit.
INGEST_PATHS = frozenset({"/v1/transactions", "/v1/claims"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
KEY_HINT = "`mdslab config --get MDSLAB_API__API_KEY` prints it"


GATEWAY_LOG = logging.getLogger("mdslab.gateway")


def _gateway_error(status_code: int, message: str, code: str) -> JSONResponse:
    kind = "invalid_request_error" if status_code < 500 else "api_error"
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status_code
    )


class RequestGuard:
    """ASGI middleware: key, then body size, for every ``/v1`` route."""

    def __init__(self, app: ASGIApp, *, keys: ApiKeys, ingest_body_bytes: int, query_body_bytes: int) -> None:
        self.app = app
        self.keys = keys
        self.ingest_body_bytes = ingest_body_bytes
        self.query_body_bytes = query_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        gateway = path in GATEWAY_PATHS
        refusal = self._key_refusal(headers, gateway=gateway)
        if refusal is None and scope["method"] in BODY_METHODS:
            limit = self.ingest_body_bytes if path in INGEST_PATHS else self.query_body_bytes
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                message = f"body of {declared} bytes exceeds the limit of {limit} bytes for {path}"
                refusal = (
                    _gateway_error(413, message, "request_too_large")
                    if gateway
                    else JSONResponse({"detail": message}, status_code=413)
                )
            else:
                receive = _counted(receive, limit, path)
        if refusal is not None:
            if gateway:  # the gateway's log has one line per request, refused ones included
                record = {"event": "refused", "path": path, "status": refusal.status_code, "key": "-"}
                GATEWAY_LOG.info(json.dumps(record))
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _key_refusal(self, headers: Headers, *, gateway: bool) -> JSONResponse | None:
        key = presented_key(headers, bearer=gateway)
        if gateway:
            if not key:
                return _gateway_error(
                    401, "missing API key: send `Authorization: Bearer <key>` (see `mdslab config`)", "missing_api_key"
                )
            if not self.keys.accepts(key, gateway=True):
                return _gateway_error(401, "the API key is not valid for this gateway", "invalid_api_key")
            return None
        if not key:
            return JSONResponse(
                {"detail": f"missing {API_KEY_HEADER} header: send the API key ({KEY_HINT})"},
                status_code=status.HTTP_401_UNAUTHORIZED,
            )
        if not self.keys.accepts(key):
            return JSONResponse(
                {"detail": f"the {API_KEY_HEADER} header does not hold a valid API key"},
                status_code=status.HTTP_403_FORBIDDEN,
            )
        return None


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
