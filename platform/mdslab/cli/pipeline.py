"""Commands that move data: simulate, pipeline run, demo."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mdslab.cli.context import console, one_line_errors, settings
from mdslab.cli.lake import table_rows
from mdslab.cli.services import ensure_services

pipeline_app = typer.Typer(
    help="Run the batch pipeline (bronze -> silver -> gold) on Spark via RayDP.", no_args_is_help=True
)


def _steps_table(results: list) -> Table:  # type: ignore[type-arg]
    table = Table("step", "status", "seconds", "rows in", "rows out", "input versions", title_justify="left")
    for result in results:
        rows_out = ", ".join(f"{name.split('.')[-1]}={rows:,}" for name, rows in result.rows_out.items())
        inputs = ", ".join(f"{name.split(':')[-1]}@{version}" for name, version in result.inputs.items())
        status = "[green]built[/]" if result.status == "built" else "[dim]up to date[/]"
        table.add_row(result.step, status, f"{result.seconds:.1f}", f"{result.rows_in:,}", rows_out, inputs)
    return table


@pipeline_app.command("run")
@one_line_errors
def run(
    step: Annotated[
        list[str] | None,
        typer.Option(
            "--step",
            "-s",
            help="Step or layer to run (repeatable): reference, silver_transactions, "
            "silver_claims, gold_daily_spend, gold_fraud_features, gold_claims_monthly, bronze, silver, gold.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even when the inputs did not change.")] = False,
) -> None:
    """Run the pipeline. Steps whose inputs did not change since their last build are skipped."""
    from mdslab.workloads.pipeline.runner import run_pipeline

    current = settings()
    with console.status("starting") as status:
        report = run_pipeline(
            current,
            steps=step,
            force=force,
            on_step=lambda name, index, total: status.update(f"step {index + 1}/{total}: {name}"),
        )
    console.print(_steps_table(report.results))
    spark = f"Spark session start {report.spark_start_s:.1f}s, " if report.spark_start_s else "Spark not needed, "
    console.print(f"{spark}lake -> Spark {report.lake_to_spark_s:.1f}s, total {report.seconds:.1f}s", style="dim")


@pipeline_app.command("steps")
def steps() -> None:
    """List the steps with their inputs and outputs."""
    from mdslab.workloads.pipeline.steps import STEPS

    table = Table("step", "layer", "inputs", "outputs", "what it does", title_justify="left")
    for item in STEPS:
        table.add_row(
            item.name,
            item.layer,
            ", ".join(item.inputs) or "PostgreSQL reference.*",
            ", ".join(item.outputs),
            item.description,
        )
    console.print(table)


@one_line_errors
def simulate(
    rows: Annotated[int, typer.Option("--rows", "-n", min=100, help="Transactions to generate.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed and rows, same data.")] = 42,
    invalid_share: Annotated[float, typer.Option(min=0.0, max=0.5, help="Share of events made invalid.")] = 0.02,
) -> None:
    """Generate transactions, claims and reference data and land them.

    Reference data goes to PostgreSQL, events and fraud labels to bronze. Landing the same batch twice
    is recognised and skipped.
    """
    from mdslab.workloads.batch_drop import drop_batch
    from mdslab.workloads.pipeline.runner import lakehouse
    from mdslab.workloads.simulator import SimulationConfig
    from mdslab.workloads.simulator import simulate as generate

    current = settings()
    with console.status(f"simulating {rows:,} transactions") as status:
        data = generate(SimulationConfig(transactions=rows, seed=seed, invalid_share=invalid_share))
        status.update("landing")
        report = drop_batch(current, lakehouse(current), data)
    for landed in report.landed:
        what = "already landed, skipped" if landed.skipped else f"{landed.rows:,} rows -> version {landed.version}"
        console.print(f"{landed.table}: {what}")
    changed = ", ".join(f"{name} {count:,}" for name, count in report.reference_changed.items())
    console.print(f"PostgreSQL reference rows inserted or changed: {changed}")
    console.print(f"batch {report.batch_id}: {report.planted_defects:,} planted defects", style="dim")


@one_line_errors
def demo(
    rows: Annotated[int, typer.Option("--rows", "-n", min=1000, help="Transactions to generate.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON only.")] = False,
) -> None:
    """The main job: start services, simulate, land in bronze, build silver and gold, summarise.

    Silver and gold are built with Spark on Ray (RayDP). Re-running is cheap: landed batches and
    steps whose inputs did not change are skipped.
    """
    from mdslab.workloads.demo import run_demo

    current = settings()
    with console.status("starting services", spinner="dots") as status:
        ensure_services(current, on_step=status.update, quiet=as_json)
        current = settings()
        report = run_demo(current, rows=rows, seed=seed, on_progress=status.update)
    summary = report.as_dict()
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    console.print(_steps_table(report.pipeline.results))
    console.print(table_rows(report.tables))
    for name, reasons in report.quarantine_reasons.items():
        detail = ", ".join(f"{code} {count:,}" for code, count in reasons.items())
        console.print(f"{name}: {sum(reasons.values()):,} rows ({detail or 'none'})")
    seconds = summary["seconds"]
    console.print(
        f"planted defects {report.drop.planted_defects:,}; seconds: simulate+land {seconds['simulate_and_land']}, "
        f"Spark start {seconds['spark_session_start']}, pipeline {seconds['pipeline']}, total {seconds['total']}",
        style="dim",
    )
