"""Commands over the lake's tables: tables, optimize."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.progress import track
from rich.table import Table

from mdslab.cli.context import console, one_line_errors, print_table, settings
from mdslab.errors import MdslabError
from mdslab.lakehouse import TableInfo

DELTA_DEFAULT_RETAIN_HOURS = 168


def size_text(num: int) -> str:
    value = float(num)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


# What goes first when a table's name would not fit the terminal otherwise.
TABLE_ROWS_OPTIONAL = ("committed (UTC)", "files", "size", "last operation", "published")


def table_rows(infos: list[TableInfo]) -> Table:
    table = Table(title_justify="left")
    for column, justify in (
        ("table", "left"),
        ("version", "right"),
        ("published", "right"),
        ("rows", "right"),
        ("files", "right"),
        ("size", "right"),
        ("last operation", "left"),
        ("committed (UTC)", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for info in infos:
        table.add_row(
            info.name,
            "-" if info.version is None else str(info.version),
            "-" if info.published is None else str(info.published),
            f"{info.rows:,}",
            str(info.files),
            size_text(info.size_bytes),
            info.last_operation or "(not built)",
            f"{info.last_commit:%Y-%m-%d %H:%M:%S}" if info.last_commit else "",
        )
    return table


@one_line_errors
def tables(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List every registered table with its latest version, the version readers see (silver and gold:
    the one the quality gate published), row count and last operation."""
    from mdslab.workloads.lake import lakehouse

    lake = lakehouse(settings())
    infos = [lake.info(spec.name) for spec in lake.registry]
    if as_json:
        console.print_json(json.dumps([{**info.__dict__, "layer": str(info.layer)} for info in infos], default=str))
        return
    print_table(table_rows(infos), drop_first=TABLE_ROWS_OPTIONAL)


@one_line_errors
def optimize(
    retain_hours: Annotated[
        int,
        typer.Option(min=0, help="Keep files needed for time travel this many hours back (Delta's default: 7 days)."),
    ] = DELTA_DEFAULT_RETAIN_HOURS,
    table: Annotated[list[str] | None, typer.Option("--table", "-t", help="Only these tables (repeatable).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Allow --retain-hours below Delta's default of 168 (7 days).")
    ] = False,
) -> None:
    """Compact small files and vacuum unreferenced ones, table by table."""
    from mdslab.workloads.lake import lakehouse
    from mdslab.workloads.maintenance import optimize_tables

    if retain_hours < DELTA_DEFAULT_RETAIN_HOURS and not force:
        raise MdslabError(
            f"--retain-hours {retain_hours} would delete files that time travel to versions older than "
            f"{retain_hours} h, and a reader running now, still need (Delta keeps {DELTA_DEFAULT_RETAIN_HOURS} h): "
            "add --force to do it anyway"
        )
    current = settings()
    lake = lakehouse(current)
    names = table or [spec.name for spec in lake.registry]
    for name in names:
        lake.spec(name)  # an unknown name is refused before any table is touched
    out = Table("table", "version", "files before", "files after", "vacuumed", title_justify="left")
    done = optimize_tables(current, lake, names, retain_hours=retain_hours)
    for result in track(done, total=len(names), description="optimizing", console=console, transient=True):
        name = result.name
        if result.version is None:
            out.add_row(name, "-", "", "", "not built")
            continue
        out.add_row(
            name,
            str(result.version),
            str(result.files_before),
            str(result.files_after),
            str(result.files_vacuumed),
        )
    print_table(out)
