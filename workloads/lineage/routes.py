"""``POST /api/v1/lineage``: the lab's lineage store takes OpenLineage run events from any producer.

The path is Marquez's, so whatever can send to Marquez (openlineage-python's HttpTransport, a Spark job
with the openlineage-spark listener, dbt-ol, Airflow's provider) can send here with the lab's API key
(``X-API-Key``, or ``Authorization: Bearer <key>`` as OpenLineage's clients send it). An event is
checked against the core of OpenLineage's RunEvent (what the store relies on; facets are kept as sent)
and a malformed one is refused with a 422 naming each field and why.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, Body, Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mdslab.api_keys import API_KEY_HEADER, refusal
from mdslab.database import DatabaseUnavailableError
from mdslab.workloads.lineage.store import EventStore

LINEAGE_PATH = "/api/v1/lineage"


class EventType(StrEnum):
    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ABORT = "ABORT"
    FAIL = "FAIL"
    OTHER = "OTHER"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # facets and later spec additions are kept as sent


class RunRecord(_Open):
    runId: UUID  # noqa: N815 - OpenLineage's field names
    facets: dict[str, Any] = Field(default_factory=dict)


class Named(_Open):
    """A job or a dataset: OpenLineage identifies both by namespace and name."""

    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    facets: dict[str, Any] = Field(default_factory=dict)


class RunEvent(_Open):
    """The core of an OpenLineage RunEvent (spec 2-0-2): what the store keys and queries on."""

    eventTime: datetime  # noqa: N815
    producer: str = Field(min_length=1)
    schemaURL: str = Field(min_length=1)  # noqa: N815
    eventType: EventType | None = None  # noqa: N815
    run: RunRecord
    job: Named
    inputs: list[Named] = Field(default_factory=list)
    outputs: list[Named] = Field(default_factory=list)


class Stored(BaseModel):
    stored: bool = Field(description="False when the store already held this exact event (a re-delivery).")


_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="The API key.")
_bearer = HTTPBearer(auto_error=False, description="The API key as a Bearer token (OpenLineage's clients).")


async def require_lineage_key(
    request: Request,
    key: Annotated[str | None, Security(_key_header)],
    token: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """The key check as /docs shows it (either scheme); the request guard has already applied it."""
    del key, token  # declared for the OpenAPI document; the check reads the headers itself
    refused = refusal(request.app.state.api_keys, request.headers, gateway=False, bearer=True)
    if refused is not None:
        raise HTTPException(refused.status_code, refused.message)


def lineage_router(store: EventStore) -> APIRouter:
    router = APIRouter(tags=["lineage"], dependencies=[Depends(require_lineage_key)])

    @router.post(
        LINEAGE_PATH,
        status_code=status.HTTP_201_CREATED,
        summary="Receive an OpenLineage run event (Marquez's endpoint)",
        responses={
            422: {"description": "Not an OpenLineage run event: each bad field and why."},
            503: {"description": "The lineage store (PostgreSQL) does not answer: the event was not stored."},
        },
    )
    async def receive(request: Request, event: Annotated[RunEvent, Body()]) -> Stored:
        document = await request.json()  # kept as sent (facets included), with its time in one form
        document["eventTime"] = event.eventTime.isoformat()
        try:
            added = await run_in_threadpool(store.add, [document])
        except DatabaseUnavailableError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{exc}; the event was not stored") from None
        except psycopg.DataError as exc:  # e.g. a NUL character, which PostgreSQL's JSON cannot hold
            reason = " ".join(str(exc).split())
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"the event cannot be stored: {reason}"
            ) from None
        return Stored(stored=added == 1)

    return router
