"""Commands about data contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mdslab.cli.context import console

contracts_app = typer.Typer(help="Data contracts: versions and JSON Schemas.", no_args_is_help=True)


@contracts_app.command("list")
def list_contracts() -> None:
    """Every contract with its version and kind."""
    from mdslab.workloads.contracts import CONTRACTS

    for name, model in CONTRACTS.items():
        console.print(f"{name:12} v{model.CONTRACT_VERSION:8} {model.CONTRACT_KIND:10} {model.__doc__ or ''}".rstrip())


@contracts_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="Where to write the *.schema.json files.")],
) -> None:
    """Write one JSON Schema file per contract (what producers code against)."""
    from mdslab.workloads.contracts import export_json_schemas

    for path in export_json_schemas(directory):
        console.print(str(path))
