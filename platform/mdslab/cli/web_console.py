"""`mdslab console`: the lab console, one web page over the whole lab, on this machine only."""

from __future__ import annotations

from typing import Annotated

import typer

from mdslab.cli.context import console, one_line_errors, settings

LOOPBACK = "127.0.0.1"


@one_line_errors
def lab_console(
    host: Annotated[
        str, typer.Option(help="Loopback address to bind (127.0.0.1 or ::1): the console has no login.")
    ] = LOOPBACK,
    port: Annotated[int | None, typer.Option(help="Port (default: MDSLAB_CONSOLE__PORT, 8501).")] = None,
) -> None:
    """Serve the lab console in the foreground (Ctrl-C stops): every service and UI with its health and a
    link, the tables per layer (version, rows, freshness, quality gate), the last pipeline and stream runs
    with the consumer's lag, recent quarantine reasons, a read-only SQL box, an ask box over the RAG index
    with citations, a catalog page per table and the lineage graph. Open it after `make demo`."""
    from mdslab.api.server import serve
    from mdslab.console.app import create_console_app
    from mdslab.services.ports import require_free_port, require_loopback

    current = settings()
    bind = port or current.console.port
    require_loopback(
        host,
        what="the lab console",
        why="has no login and runs SQL and questions over every table, so it listens on this machine only",
        fix=f"from another machine, tunnel to it (ssh -L {bind}:127.0.0.1:{bind} THIS_HOST)",
    )
    fix = "pass --port or set MDSLAB_CONSOLE__PORT"
    require_free_port(host, bind, what="the lab console", fix=fix)
    app = create_console_app(current)
    console.print(
        f"Lab console on http://{host}:{bind} (services: {current.profile} profile; lake buckets "
        f"{current.lake.raw_bucket}, {current.lake.curated_bucket}). Ctrl-C stops.",
        highlight=False,
        soft_wrap=True,
    )
    serve(app, host, bind, what="the lab console", fix=fix)
