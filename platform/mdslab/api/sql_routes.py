"""``POST /v1/sql``: the read-only SQL of ``mdslab sql`` over HTTP, as JSON rows or an Arrow IPC stream.

The limits are the server's (``MDSLAB_API__SQL_MAX_ROWS``, ``..._SQL_TIMEOUT_S``): a request may ask for
less, never more, since one query holds a worker thread and its rows in memory. A query the engine refuses
(syntax, unknown table or version, a write) is a 400 naming the problem, a query over its time a 408, the
object store down a 503.
"""

from __future__ import annotations

from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Header, HTTPException, Response, status
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mdslab.errors import ServiceUnavailableError
from mdslab.lakehouse import Lakehouse
from mdslab.lakehouse.sql import QueryResult, QueryTimeoutError, SqlError, run_duckdb
from mdslab.settings import ApiSettings

ARROW_STREAM = "application/vnd.apache.arrow.stream"


class SqlQuery(BaseModel):
    query: str = Field(
        min_length=1,
        max_length=20_000,
        description="One SELECT. Tables as `gold.daily_spend`; `gold.daily_spend@v3` reads version 3.",
        examples=["SELECT customer_region, sum(total_usd) AS usd FROM gold.daily_spend GROUP BY 1 ORDER BY 2 DESC"],
    )
    limit: int | None = Field(default=None, ge=1, description="At most this many rows (capped by the server's).")
    timeout_s: float | None = Field(default=None, gt=0, description="Cancel after this long (capped by the server's).")


class SqlColumn(BaseModel):
    name: str
    type: str


class SqlAnswer(BaseModel):
    columns: list[SqlColumn]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool = Field(description="More rows existed than the limit; `rows` holds the first `limit`.")
    tables: list[str] = Field(description="Each table read, with the version read: `gold.daily_spend@v4`.")
    seconds: float


_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The query was refused: syntax, unknown table or version, not a single SELECT."},
    408: {"description": "The query ran longer than its timeout and was cancelled."},
    503: {"description": "The object store does not answer."},
}


def sql_router(lake: Lakehouse, api: ApiSettings) -> APIRouter:
    router = APIRouter(tags=["sql"])

    @router.post(
        "/v1/sql",
        summary="Read-only SQL over the lake's tables (DuckDB over the Delta snapshots)",
        response_model=SqlAnswer,
        responses={**_REFUSALS, 200: {"content": {ARROW_STREAM: {}}, "description": "JSON, or Arrow IPC on request"}},
    )
    async def sql(body: SqlQuery, accept: Annotated[str, Header()] = "application/json") -> Any:
        """Send `Accept: application/vnd.apache.arrow.stream` for the rows as an Arrow IPC stream (the
        `X-Mdslab-Truncated` and `X-Mdslab-Tables` headers then carry what the JSON answer says)."""
        limit = min(body.limit or api.sql_max_rows, api.sql_max_rows)
        timeout_s = min(body.timeout_s or api.sql_timeout_s, api.sql_timeout_s)
        try:
            result = await run_in_threadpool(run_duckdb, lake, body.query, limit=limit, timeout_s=timeout_s)
        except QueryTimeoutError as exc:
            raise HTTPException(status.HTTP_408_REQUEST_TIMEOUT, str(exc)) from None
        except SqlError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        except ServiceUnavailableError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        if ARROW_STREAM in accept:
            return _arrow_response(result)
        return SqlAnswer(
            columns=[SqlColumn(name=field.name, type=str(field.type)) for field in result.rows.schema],
            rows=jsonable_encoder(result.rows.to_pylist()),
            row_count=result.rows.num_rows,
            truncated=result.truncated,
            tables=[ref.view for ref in result.tables],
            seconds=round(result.seconds, 4),
        )

    return router


def _arrow_response(result: QueryResult) -> Response:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, result.rows.schema) as writer:
        writer.write_table(result.rows)
    headers = {
        "X-Mdslab-Truncated": str(result.truncated).lower(),
        "X-Mdslab-Tables": ",".join(ref.view for ref in result.tables),
    }
    return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM, headers=headers)
