"""Commands for the platform's services: config, up, down, status."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from mdslab.cli.context import console, one_line_errors, print_table, settings
from mdslab.compute.web_uis import compute_web_uis
from mdslab.errors import MdslabError, did_you_mean
from mdslab.services import embedded
from mdslab.services.embedded import ServiceReport
from mdslab.settings import Settings


@one_line_errors
def config(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    get: Annotated[
        str | None,
        typer.Option(
            "--get",
            metavar="VARIABLE",
            help="Print one setting's value, secrets included, for scripts: "
            "`KEY=$(mdslab config --get MDSLAB_API__API_KEY)`.",
        ),
    ] = None,
) -> None:
    """Print the effective settings (secrets masked) and the variable that sets each one."""
    current = settings()
    if get is not None:
        typer.echo(setting_value(current, get))
        return
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
    uis = Table("compute UI", "where", "when", title_justify="left")
    for ui in compute_web_uis(current.compute):
        uis.add_row(ui.name, ui.url or "-", ui.why)
    print_table(uis)


def setting_value(current: Settings, variable: str) -> str:
    """The value of ``MDSLAB_...`` (unmasked); a one-line error naming close matches when unknown."""
    values = dict(_flatten_revealed(current))
    name = variable.strip().upper()
    if name not in values:
        raise MdslabError(f"no setting {variable}; {did_you_mean(name, values, '`mdslab config` lists them')}")
    return values[name]


def _flatten_revealed(current: Settings) -> list[tuple[str, str]]:
    names = [name for name, _masked in current.env_items()]
    revealed = current.environment()
    return [(name, revealed.get(name, "")) for name in names]


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
    print_table(table, drop_first=("uptime", "pid", "process"))


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
    """Health of every service endpoint (and the processes, for the embedded profile), then the key
    figures: the API and the consumer (lag per topic), tables per layer, stale gold, each step's last run."""
    current = settings()
    reports = embedded.status(current)
    healthy = all(report.healthy for report in reports)
    figures = None
    if healthy:
        from mdslab.console.figures import status_figures
        from mdslab.workloads.lake import lakehouse

        figures = status_figures(current, lakehouse(current))
    if as_json:
        typer.echo(json.dumps({"services": [r.__dict__ for r in reports], "figures": figures}, indent=2, default=str))
    else:
        _print_reports(reports)
        if figures is not None:
            _print_figures(figures)
    if not healthy:
        console.print("Some services are down: `mdslab up` starts the embedded ones.", style="yellow")
        raise typer.Exit(1)


def _print_figures(figures: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    api, consumer = figures["api"], figures["consumer"]
    api_line = f"API {api['url']}: " + (f"up, {api['requests']:,} requests served" if api["up"] else "not running")
    lag = ", ".join(f"{topic} {value:,.0f}" for topic, value in consumer["lag_by_topic"].items()) or "none reported"
    console.print(api_line, highlight=False)
    console.print(f"consumer: {'up, lag ' + lag if consumer['up'] else 'not running'}", highlight=False)
    layers = ", ".join(f"{name} {v['tables']} tables / {v['rows']:,} rows" for name, v in figures["layers"].items())
    console.print(f"lake: {layers or 'empty'}", highlight=False)
    for name, reasons in figures["stale_gold"].items():
        console.print(f"[yellow]stale[/] {name}: {'; '.join(reasons)}", highlight=False)
    now = datetime.now(UTC)
    for name, arrived in figures["newest_visible"].items():
        age = int((now - arrived).total_seconds())
        console.print(
            f"freshness: the newest event readers see in {name} arrived {age // 60} min {age % 60} s ago "
            f"(published v{figures['published'].get(name)})",
            highlight=False,
        )
    gate = figures["gate"]
    if gate is not None:
        ago = int((now - gate["finished_at"]).total_seconds())
        verdict = (
            "[green]passed[/] (what it audited is published)"
            if gate["passed"]
            else f"[red]FAILED[/], readers keep the previous versions: {gate['reason']}"
        )
        console.print(f"quality gate, {ago // 60} min ago: {verdict}", highlight=False)
    for line in figures["rag"]["stale"]:
        console.print(f"[yellow]stale[/] RAG index: {line}", highlight=False)
    if figures["last_runs"]:
        table = Table("step", "last run", "ago", "seconds", title_justify="left")
        for run in figures["last_runs"]:
            colour = "red" if run["status"] == "failed" else "green"
            ago = int((now - run["finished_at"]).total_seconds())
            table.add_row(run["step"], f"[{colour}]{run['status']}[/]", f"{ago // 60} min", f"{run['seconds']}")
        print_table(table)
    for error in figures["errors"]:
        console.print(f"could not read {error}", style="yellow", highlight=False)
