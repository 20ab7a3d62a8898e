"""Entry point of the ``mdslab`` command."""

from __future__ import annotations

import typer

from mdslab import __version__
from mdslab.cli import (
    bi,
    contracts,
    extract,
    governance,
    ingest,
    lake,
    llm,
    ml,
    notebook,
    observability,
    orchestration,
    pipeline,
    services,
    snowflake,
    spark,
    sql,
    web_console,
)
from mdslab.cli.context import one_line_errors, settings
from mdslab.cli.process_exit import run_then_exit

app = typer.Typer(
    name="mdslab",
    help="A single-host Modern Data Stack lab: Kafka, Delta Lake on S3, Spark on Ray, MLflow, RAG.\n\n"
    "Start with `mdslab up`, then `mdslab demo`. Settings come from MDSLAB_* variables (`mdslab config`).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
app.command()(services.config)
app.command()(services.up)
app.command()(services.down)
app.command()(services.status)
app.command()(pipeline.demo)
app.command()(pipeline.simulate)
app.command()(ingest.serve)
app.command()(ingest.stream)
app.add_typer(pipeline.pipeline_app, name="pipeline")
app.add_typer(extract.extract_app, name="extract")
app.command()(lake.tables)
app.command()(lake.optimize)
app.command()(sql.sql)
app.command()(notebook.notebook)
app.command("console")(web_console.lab_console)
app.add_typer(spark.spark_app, name="spark")
app.add_typer(contracts.contracts_app, name="contracts")
app.add_typer(governance.catalog_app, name="catalog")
app.add_typer(governance.lineage_app, name="lineage")
app.command()(ml.train)
app.command()(ml.score)
app.add_typer(ml.mlflow_app, name="mlflow")
app.add_typer(llm.rag_app, name="rag")
app.command()(llm.ask)
ml.run_app.command("llm")(llm.run_llm)
ml.run_app.command("snowflake")(snowflake.run_snowflake)
app.add_typer(ml.run_app, name="run")
app.add_typer(orchestration.airflow_app, name="airflow")
app.add_typer(orchestration.flow_app, name="flow")
app.command()(observability.prometheus)
app.add_typer(bi.bi_app, name="bi")


@app.callback(invoke_without_command=True)
@one_line_errors
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    # logging, and the libraries told to keep quiet, before a command imports them (some read their
    # log level once, when imported)
    settings()


def main() -> None:
    """The ``mdslab`` program: the app, then an exit that skips native teardown (see ``process_exit``)."""
    run_then_exit(app)
