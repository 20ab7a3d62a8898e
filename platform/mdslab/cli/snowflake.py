"""`mdslab run snowflake`: the lab as a Snowflake project, checked against the lake on DuckDB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mdslab.cli.context import console, one_line_errors, print_table, settings


@one_line_errors
def run_snowflake(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the .sql files (default: the folder `snowflake` in the lab's state directory).",
        ),
    ] = None,
    database: Annotated[str, typer.Option(help="Snowflake database the project creates.")] = "MDSLAB",
    warehouse: Annotated[str, typer.Option(help="Warehouse that refreshes the dynamic tables.")] = "MDSLAB_WH",
    target_lag: Annotated[
        str,
        typer.Option(help="How stale silver and gold may get: `N minutes` (or seconds, hours, days) or DOWNSTREAM."),
    ] = "15 minutes",
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="Run every step's Snowflake query back on DuckDB over the lake and compare with the lab's rows "
            "(needs a built lake: `mdslab demo`).",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """The Snowflake deep dive: the lab's tables (with their docs and tags) and SQL steps (as dynamic tables)
    generated as Snowflake SQL, then checked. Walkthrough: docs/deep-dives/snowflake.md."""
    from mdslab.workloads.lake import lakehouse
    from mdslab.workloads.snowflake.deep_dive import run_snowflake as run
    from mdslab.workloads.snowflake.project import ProjectSettings

    current = settings()
    project = ProjectSettings(database=database, warehouse=warehouse, target_lag=target_lag)
    folder = out or current.state_dir / "snowflake"
    with console.status("generating") as status:
        if check:
            from mdslab.cli.services import ensure_services

            status.update("starting services")
            ensure_services(current, on_step=status.update, quiet=True)
        report = run(lakehouse(settings()) if check else None, folder, project, on_progress=status.update)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    console.print(f"{report.statements} statements in {len(report.files)} files under {folder}:", highlight=False)
    for path in report.files:
        console.print(f"  {path.name}", highlight=False)
    if not report.checks:
        console.print("not checked (--no-check)")
        return
    table = Table("table", "lab's rows", "Snowflake query's rows", "same rows", title="each step, both ways on DuckDB")
    for item in report.checks:
        table.add_row(item.table, f"{item.expected_rows:,}", f"{item.actual_rows:,}", "yes" if item.equal else "NO")
    print_table(table)
    read = ", ".join(f"{name}@v{version}" for name, version in sorted(report.versions.items()))
    console.print(f"checked on {read} in {report.seconds:.1f} s", highlight=False)
