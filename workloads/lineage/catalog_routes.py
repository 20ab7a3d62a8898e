"""The read side of governance in the API: ``/v1/catalog`` (search, one table) and ``/v1/lineage`` (a
table's or column's lineage, the run history), the same library calls as ``mdslab catalog`` and
``mdslab lineage``. An unknown table, column or job is a 404 naming it (with close names); a bad
parameter a 422; the lineage store down a 503."""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from mdslab.database import DatabaseUnavailableError
from mdslab.lakehouse import Lakehouse, Layer
from mdslab.lakehouse.registry import UnknownTableError
from mdslab.settings import Settings
from mdslab.workloads.lineage.catalog import CatalogTable, catalog, find_table, search, table_state
from mdslab.workloads.lineage.history import UnknownJobError, run_history
from mdslab.workloads.lineage.recorded import lab_names, load_lineage
from mdslab.workloads.lineage.render import as_dict, as_dot, as_mermaid
from mdslab.workloads.lineage.traversal import Direction, UnknownNodeError, resolve, trace


class LineageFormat(StrEnum):
    JSON = "json"
    MERMAID = "mermaid"
    DOT = "dot"


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such table, column or job (close names suggested)."}
}
_STORE_DOWN: dict[int | str, dict[str, Any]] = {503: {"description": "The lineage store (PostgreSQL) does not answer."}}


def catalog_router(lake: Lakehouse, settings: Settings) -> APIRouter:
    router = APIRouter(tags=["governance"])
    names = lab_names(lake.registry, settings)
    pg, cache_dir = settings.postgres, settings.state_dir / "cache"

    @functools.cache
    def entries() -> list[CatalogTable]:  # on first use: analysing the SQL costs ~0.4 s without the cache
        return catalog(lake.registry, cache_dir)

    async def answer(func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await run_in_threadpool(func, *args, **kwargs)
        except (UnknownNodeError, UnknownTableError, UnknownJobError) as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except DatabaseUnavailableError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None

    @router.get("/v1/catalog", summary="Search the catalog: tables and columns by text, tag, layer")
    async def catalog_search(
        q: Annotated[str, Query(max_length=200, description="Words in names, descriptions, owners, tags.")] = "",
        tag: Annotated[str | None, Query(max_length=100, description="pii matches pii.email.")] = None,
        layer: Layer | None = None,
    ) -> list[dict[str, Any]]:
        found = search(entries(), q, tag=tag, layer=None if layer is None else str(layer))
        return [match.as_dict() for match in found]

    @router.get(
        "/v1/catalog/{table}",
        summary="One table: schema, classification, owner, contract, version, size, freshness, last writer, "
        "last checks, neighbours",
        responses={**_NOT_FOUND, **_STORE_DOWN},
    )
    async def catalog_table(table: str) -> dict[str, Any]:
        def details() -> dict[str, Any]:
            entry = find_table(entries(), table)
            return {**entry.as_dict(), **table_state(lake, load_lineage(pg, names), entry.name).as_dict()}

        return await answer(details)  # type: ignore[no-any-return]

    @router.get(
        "/v1/lineage",
        summary="Lineage of a table or column, upstream or downstream",
        responses={**_NOT_FOUND, **_STORE_DOWN, 200: {"content": {"text/plain": {}}}},
    )
    async def lineage(
        node: Annotated[str, Query(min_length=1, max_length=300, description="TABLE or TABLE.COLUMN")],
        direction: Direction = Direction.UPSTREAM,
        depth: Annotated[int | None, Query(ge=1, le=100, description="At most this many steps.")] = None,
        indirect: Annotated[
            bool, Query(description="Also the columns that only filter, join, group or order the rows.")
        ] = False,
        format: LineageFormat = LineageFormat.JSON,
    ) -> Any:
        def walk() -> Any:
            graph = load_lineage(pg, names)
            return trace(graph, resolve(graph, node), direction, depth, indirect=indirect)

        found = await answer(walk)
        if format is LineageFormat.JSON:
            return as_dict(found)
        return PlainTextResponse(as_mermaid(found) if format is LineageFormat.MERMAID else as_dot(found))

    @router.get("/v1/lineage/runs", summary="Run history, newest first", responses={**_NOT_FOUND, **_STORE_DOWN})
    async def runs(
        job: Annotated[str | None, Query(max_length=300, description="This job and its sub-jobs.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> list[dict[str, Any]]:
        found = await answer(run_history, pg, names, job=job, limit=limit)
        return [run.as_dict() for run in found]

    return router
