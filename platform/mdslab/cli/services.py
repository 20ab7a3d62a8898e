"""Commands for the platform's services: config, up, down, status."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from mdslab.cli.context import console, one_line_errors, settings
from mdslab.services import embedded
from mdslab.services.embedded import ServiceReport
from mdslab.settings import Settings


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


def ensure_services(current: Settings, *, on_step: Callable[[str], None], quiet: bool = False) -> None:
    """Start the embedded services (or check the external ones) and create topics: what `up` does."""
    from mdslab.workloads.bootstrap import ensure_platform

    report = ensure_platform(current, on_step=on_step)
    if not quiet:
        _print_reports(report.services)
        for line in report.created:
            console.print(f"  {line}", style="dim")


@one_line_errors
def up() -> None:
    """Start the embedded services (S3, Kafka, PostgreSQL) on 127.0.0.1 and create buckets, topics, database.

    Safe to run again: running services are left as they are.
    """
    current = settings()
    with console.status("starting services") as progress:
        ensure_services(current, on_step=progress.update)
    current = settings()
    console.print(
        f"State, logs and data: {current.state_dir}   Credentials (incl. the ingest API key, "
        f"MDSLAB_API__API_KEY): {current.secrets_file}   Stop: mdslab down",
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
