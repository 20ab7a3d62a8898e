"""`mdslab spark history`: Spark's History Server over the event logs of the lab's Spark applications."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from mdslab.cli.context import console, one_line_errors, settings
from mdslab.cli.foreground import run_in_foreground
from mdslab.services.ports import require_free_port

spark_app = typer.Typer(help="Spark's own UIs for the lab's Spark applications.", no_args_is_help=True)


@spark_app.command("history")
@one_line_errors
def history(
    port: Annotated[
        int | None, typer.Option(help="The server's port (default: MDSLAB_COMPUTE__SPARK_HISTORY_PORT, 18080).")
    ] = None,
) -> None:
    """Run Spark's History Server in the foreground (Ctrl-C stops) on 127.0.0.1: jobs, stages, SQL plans
    and executors of every Spark application the lab ran (each pipeline full build, training, `mdslab sql
    --engine spark`), from the event logs they wrote; its REST API is under /api/v1/applications."""
    from mdslab.compute.java import find_java_home
    from mdslab.compute.spark_history import event_log_dir, history_server_command, history_server_environment
    from mdslab.compute.web_uis import LOOPBACK

    current = settings()
    chosen = port or current.compute.spark_history_port
    require_free_port(LOOPBACK, chosen, what="Spark's History Server", fix="pass --port")
    command = history_server_command(find_java_home(current.compute.java_home), current, port=chosen)
    logs = event_log_dir(current)
    runs = sum(1 for entry in logs.iterdir() if not entry.name.startswith("."))
    console.print(
        f"Spark History Server on http://{LOOPBACK}:{chosen} ({runs} application logs in {logs}; "
        "a new one shows up within seconds). Ctrl-C stops.",
        highlight=False,
        soft_wrap=True,
    )
    run_in_foreground(command, env=history_server_environment(dict(os.environ)))
