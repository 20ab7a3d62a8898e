"""Commands about data contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mdslab.cli.context import console, one_line_errors
from mdslab.errors import MdslabError

contracts_app = typer.Typer(help="Data contracts: versions and JSON Schemas.", no_args_is_help=True)


@contracts_app.command("list")
def list_contracts() -> None:
    """Every contract with its version and kind."""
    from mdslab.workloads.contracts import CONTRACTS

    for name, model in CONTRACTS.items():
        console.print(f"{name:12} v{model.CONTRACT_VERSION:8} {model.CONTRACT_KIND:10} {model.__doc__ or ''}".rstrip())


@contracts_app.command("export")
@one_line_errors
def export(
    directory: Annotated[
        Path, typer.Argument(help="Folder to write the *.schema.json files into (created if missing).", file_okay=False)
    ],
) -> None:
    """Write one JSON Schema file per contract (what producers code against)."""
    from mdslab.workloads.contracts import export_json_schemas

    try:
        written = export_json_schemas(directory)
    except OSError as exc:
        raise MdslabError(f"cannot write the schemas into {directory}: {exc.strerror or exc}") from None
    for path in written:
        console.print(str(path))
