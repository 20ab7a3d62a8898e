"""`mdslab extract mongo`: the claims system's case files (MongoDB) into bronze, incrementally."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mdslab.cli.context import console, one_line_errors, settings

extract_app = typer.Typer(
    help="Extract source systems into bronze, incrementally and exactly once.", no_args_is_help=True
)


@extract_app.command("mongo")
@one_line_errors
def mongo(
    batch_documents: Annotated[
        int, typer.Option(min=1, max=100_000, help="Documents per read from the server (the cursor's batch size).")
    ] = 5_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """New and changed case files, and deletions (as tombstones), from MongoDB into bronze.claim_documents.

    Reads the documents whose (updated_at, _id) come after the newest one bronze holds, so a run after a
    crash reads again what was not committed, and nothing twice. The server: MDSLAB_MONGO__URL."""
    from mdslab.workloads.case_files.extract import extract_case_files
    from mdslab.workloads.lake import lakehouse

    current = settings()
    with console.status("extracting case files") as status:
        report = extract_case_files(current.mongo, lakehouse(current), batch_documents=batch_documents,
                                    on_progress=status.update)  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    console.print(report.line(), highlight=False)
