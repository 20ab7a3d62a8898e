"""`mdslab bi register`: the lab's tables in Trino, for the BI tool of the Compose profile `bi` (Superset)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import typer

from mdslab.cli.context import console, one_line_errors, settings
from mdslab.errors import ConfigurationError
from mdslab.lakehouse.trino import TRINO_URL

bi_app = typer.Typer(
    help="The lab's tables in a BI stack (Compose profile `bi`: Trino + Superset).", no_args_is_help=True
)


@bi_app.command("register")
@one_line_errors
def register(
    trino: Annotated[str, typer.Option(help="Trino's HTTP address (the Compose profile `bi` publishes it here).")] = (
        TRINO_URL
    ),
    print_sql: Annotated[
        bool, typer.Option("--print", help="Print the registration SQL for every table, and register nothing.")
    ] = False,
) -> None:
    """Register every table of the lab's registry in Trino's Delta Lake catalog (as `lake.<layer>.<table>`,
    e.g. `lake.gold.daily_spend`), reading it where the lab writes it: nothing is copied. Tables not built
    yet are skipped and named; run it again after `mdslab demo` or a new step. Idempotent."""
    from mdslab.lakehouse.trino import READ_CATALOG, TrinoClient, register_tables, registration_sql
    from mdslab.workloads.lake import lakehouse

    current = settings()
    lake = lakehouse(current)
    if print_sql:
        for statement in registration_sql(lake.registry, current.lake):
            typer.echo(f"{statement};")
        return
    parts = urlsplit(trino)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"--trino {trino!r} is not an http(s) address: pass e.g. {TRINO_URL}")
    done = register_tables(TrinoClient(trino), lake)
    console.print(
        f"Trino at {trino}: {len(done.registered)} tables registered, {len(done.already)} already there; "
        f"query them as {READ_CATALOG}.<layer>.<table>.",
        highlight=False,
        soft_wrap=True,
    )
    if done.not_built:
        console.print(f"not built yet (run `mdslab demo`, then this again): {', '.join(done.not_built)}", style="dim")
