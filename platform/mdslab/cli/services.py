"""Commands for the platform's services: config, up, down, status."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mdslab.cli.context import console, one_line_errors, settings
from mdslab.services import embedded, secrets
from mdslab.services.embedded import ServiceReport
from mdslab.settings import load_settings


@one_line_errors
def config(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Print the effective settings (secrets masked) and the variable that sets each one."""
    current = settings()
    if as_json:
        console.print_json(json.dumps(current.masked()))
        return
    table = Table(title=f"mdslab settings (profile: {current.profile})", title_justify="left")
    table.add_column("environment variable", style="cyan")
    table.add_column("value")
    for name, value in current.env_items():
        table.add_row(name, value)
    console.print(table)
    console.print(f"Secrets file: {current.secrets_file}", style="dim")


def _print_reports(reports: list[ServiceReport]) -> None:
    table = Table(title_justify="left")
    for column in ("service", "endpoint", "process", "pid", "uptime", "health"):
        table.add_column(column)
    for report in reports:
        mark = "[green]ok[/]" if report.healthy else "[red]down[/]"
        uptime = f"{report.uptime_s}s" if report.uptime_s else ""
        table.add_row(
            report.service,
            report.endpoint,
            report.state,
            str(report.pid or ""),
            uptime,
            f"{mark} {report.detail}",
        )
    console.print(table)


@one_line_errors
def up() -> None:
    """Start the embedded services (S3, Kafka, PostgreSQL) on 127.0.0.1 and create buckets, topics, database.

    Safe to run again: running services are left as they are.
    """
    from mdslab.compute.java import find_java_home
    from mdslab.workloads.bootstrap import ensure_resources

    current = settings()
    find_java_home(current.compute.java_home)  # fail now, not in the middle of the first pipeline
    if secrets.ensure_secrets(current):
        current = load_settings()
    with console.status("starting services") as progress:
        reports = embedded.up(current, on_step=lambda msg: progress.update(msg))
        progress.update("creating topics")
        created = ensure_resources(current)
    _print_reports(reports)
    for line in created:
        console.print(f"  {line}", style="dim")
    console.print(
        f"State, logs and data: {current.state_dir}   Credentials: {current.secrets_file}   "
        "Stop: mdslab down",
        style="dim",
    )


@one_line_errors
def down() -> None:
    """Stop the embedded services this state dir started (data is kept)."""
    current = settings()
    stopped = embedded.down(current)
    console.print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@one_line_errors
def status(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Health of every service endpoint (and the processes, for the embedded profile)."""
    reports = embedded.status(settings())
    if as_json:
        console.print_json(json.dumps([report.__dict__ for report in reports]))
    else:
        _print_reports(reports)
    if not all(report.healthy for report in reports):
        console.print("Some services are down: `mdslab up` starts the embedded ones.", style="yellow")
        raise typer.Exit(1)
