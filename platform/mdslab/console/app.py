"""The console's web app: server-rendered pages over the library calls of the CLI.

Pages: ``/`` (services, tables, runs, quarantine, the SQL and ask boxes), ``/sql?q=`` and ``/ask?q=`` (the
boxes' answers: a page of their own, or only the answer block when the console's script asks with the
``X-Console-Fragment`` header), ``/tables/{name}`` (the catalog's page of a table) and ``/lineage``
(the lineage graph, ``?focus=`` for one dataset's neighbourhood). A wrong input is a page that names the
problem with a 4xx status (an unknown table a 404, a refused query a 400, a store down a 503), never a
500, and the main page renders with any service down.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Header, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mdslab import __version__
from mdslab.console import pages
from mdslab.console.cache import Refreshing
from mdslab.console.health import check_all, probe_client
from mdslab.console.overview import Overview, read_lake_view
from mdslab.llm.chain import LazyChain
from mdslab.settings import Settings
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.lineage.catalog import CatalogTable, catalog
from mdslab.workloads.lineage.recorded import lab_names

HERE = Path(__file__).parent
MAX_QUERY_CHARS = 20_000  # as POST /v1/sql
MAX_QUESTION_CHARS = 2_000  # as POST /v1/rag/query
Fragment = Annotated[bool, Header(alias="X-Console-Fragment")]
HEADINGS = {400: "Refused", 404: "Not found", 503: "A service does not answer"}


def create_console_app(settings: Settings) -> FastAPI:
    """The console for ``settings``' lab (a lake, its PostgreSQL, the addresses of its services)."""
    lake = lakehouse(settings)
    names = lab_names(lake.registry, settings)
    chain = LazyChain(settings)  # the model loads on the first question, not at start
    client = probe_client(settings)
    lake_view = Refreshing(
        lambda: read_lake_view(settings, lake, names, client), max_age_s=settings.console.refresh_s, name="lake-view"
    )

    @functools.cache
    def entries() -> list[CatalogTable]:  # the catalog analyses the pipeline's SQL: once per process
        return catalog(lake.registry, settings.state_dir / "cache")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        lake_view.start()  # read while the person opens the page
        try:
            yield
        finally:
            await run_in_threadpool(chain.close)
            client.close()

    app = FastAPI(title="mdslab console", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    pages.add_filters(templates.env)
    templates.env.globals |= {
        "version": __version__,
        "quote": functools.partial(quote, safe=""),
        "lake_tables": frozenset(spec.name for spec in lake.registry),  # lineage nodes with a table page
        "sql_max_rows": settings.console.sql_max_rows,
        "refresh_s": settings.console.refresh_s,
    }

    def render(request: Request, template: str, code: int = status.HTTP_200_OK, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, template, context, status_code=code)

    def problem(request: Request, code: int, message: str) -> HTMLResponse:
        heading = HEADINGS.get(code, "Something went wrong")
        return render(request, "problem.html", code, message=message, heading=heading)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        message = exc.detail if exc.status_code != 404 or exc.detail != "Not Found" else f"no page {request.url.path}"
        return problem(request, exc.status_code, str(message))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> HTMLResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ["query"], "msg": "invalid"}
        where = ".".join(str(part) for part in first["loc"][1:]) or "request"
        return problem(request, status.HTTP_400_BAD_REQUEST, f"{where}: {first['msg']}")

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        view = Overview(check_all(settings, client), lake_view.get())
        return render(request, "index.html", view=view)

    @app.get("/sql", response_class=HTMLResponse)
    def sql(
        request: Request,
        q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)] = "",
        fragment: Fragment = False,
    ) -> HTMLResponse:
        answer = pages.run_sql(settings, lake, q) if q.strip() else None
        code = status.HTTP_200_OK if answer is None else answer.status
        return render(request, "sql_result.html" if fragment else "sql.html", code, query=q, answer=answer)

    @app.get("/ask", response_class=HTMLResponse)
    def ask(
        request: Request,
        q: Annotated[str, Query(max_length=MAX_QUESTION_CHARS)] = "",
        fragment: Fragment = False,
    ) -> HTMLResponse:
        answer = pages.ask(chain, q) if q.strip() else None
        code = status.HTTP_200_OK if answer is None else answer.status
        return render(request, "ask_result.html" if fragment else "ask.html", code, question=q, answer=answer)

    @app.get("/tables/{name}", response_class=HTMLResponse)
    def table(request: Request, name: str) -> HTMLResponse:
        page = pages.table_page(settings, lake, names, entries(), name)
        return render(request, "table.html", page=page)

    @app.get("/lineage", response_class=HTMLResponse)
    def lineage(request: Request, focus: Annotated[str | None, Query(max_length=500)] = None) -> HTMLResponse:
        page = pages.lineage_page(settings, names, focus)
        return render(request, "lineage.html", page=page)

    return app
