"""Commands that move data: simulate, pipeline run, demo."""

from __future__ import annotations

import json
import signal
import threading
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mdslab.cli.context import console, one_line_errors, print_table, settings
from mdslab.cli.lake import TABLE_ROWS_OPTIONAL, table_rows
from mdslab.cli.services import ensure_services
from mdslab.errors import MdslabError
from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings

if TYPE_CHECKING:
    from mdslab.compute.spark import SparkRuntime
    from mdslab.workloads.pipeline.runner import PipelineReport
    from mdslab.workloads.simulator import SimulatedData

pipeline_app = typer.Typer(
    help="Run the batch pipeline (bronze -> silver -> gold) on Spark via RayDP.", no_args_is_help=True
)


# What goes first when a step's name would not fit the terminal otherwise.
STEPS_OPTIONAL = ("input versions", "rows in", "seconds")


def _steps_table(results: list) -> Table:  # type: ignore[type-arg]
    table = Table("step", "status", "seconds", "rows in", "rows out", "input versions", title_justify="left")
    for result in results:
        rows_out = ", ".join(f"{name.split('.')[-1]}={rows:,}" for name, rows in result.rows_out.items())
        inputs = ", ".join(f"{name.split(':')[-1]}@{version}" for name, version in result.inputs.items())
        status = f"[green]built[/] ({result.mode})" if result.status == "built" else "[dim]up to date[/]"
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
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            "--force",
            help="Rebuild the selected steps from all of their inputs, instead of adding what changed.",
        ),
    ] = False,
    max_quarantine_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="The gate's limit on the share of events silver rejects.")
    ] = 0.05,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep running: build what arrived every --interval seconds (Ctrl-C stops).")
    ] = False,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between two runs with --watch.")] = 30.0,
) -> None:
    """Run the pipeline, then the quality gate on the gold it built: readers (scoring, the RAG index,
    `mdslab tables`' published column) see the new silver and gold only when every check passed.

    Steps are incremental: they process only the bronze (silver) or silver (gold) rows added since
    their last build, and skip when nothing changed; --full-refresh rebuilds from everything. Full
    builds run on Spark via RayDP, increments on DuckDB in this process (see docs/design-notes.md).
    Exits 1 when the gate fails (without --watch, which reports it and goes on).
    """
    from mdslab.workloads.pipeline.runner import run_pipeline
    from mdslab.workloads.pipeline.step_runtime import SparkProvider

    current = settings()
    if watch:
        _watch(current, step, full_refresh, max_quarantine_share, interval)
        return
    provider = SparkProvider(current, on_start=say_live_uis)
    try:
        with console.status("starting") as status:
            report = run_pipeline(
                current,
                steps=step,
                force=full_refresh,
                spark=provider,
                max_quarantine_share=max_quarantine_share,
                on_step=lambda name, index, total: status.update(f"step {min(index + 1, total)}/{total}: {name}"),
            )
    finally:
        provider.close()
    print_table(_steps_table(report.results), drop_first=STEPS_OPTIONAL)
    spark = f"Spark session start {report.spark_start_s:.1f}s, " if report.spark_start_s else "Spark not needed, "
    console.print(f"{spark}lake -> Spark {report.lake_to_spark_s:.1f}s, total {report.seconds:.1f}s", style="dim")
    _say_gate(report)


def _watch(current: Settings, steps: list[str] | None, full_refresh: bool, share: float, interval: float) -> None:
    """One Spark session for the whole watch (started only when a full build needs it)."""
    from mdslab.workloads.pipeline.runner import run_pipeline
    from mdslab.workloads.pipeline.step_runtime import SparkProvider

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    provider = SparkProvider(current, on_start=say_live_uis)
    console.print(f"building what arrives every {interval:g}s; Ctrl-C stops", style="dim")
    try:
        force = full_refresh
        while not stop.is_set():
            try:
                report = run_pipeline(current, steps=steps, force=force, spark=provider, max_quarantine_share=share)
                console.print(_watch_line(report), highlight=False, soft_wrap=True)  # one line per run, for logs
            except MdslabError as exc:
                console.print(f"{datetime.now():%H:%M:%S} error: {exc}", style="red", highlight=False)
            force = False
            stop.wait(interval)
    finally:
        provider.close()


def say_live_uis(runtime: SparkRuntime) -> None:
    """Where to watch the Spark session a command just started, while it lives; Spark's History Server
    shows it afterwards."""
    live = runtime.live_uis
    uis = ", ".join(f"{name} {url}" for name, url in live.items())
    if "Ray dashboard" in live:
        uis += " (it asks for Ray's token: `ray get-auth-token`)"
    if uis:
        console.print(f"{uis} (while this runs; afterwards `mdslab spark history`)", style="dim", highlight=False)


def _watch_line(report: PipelineReport) -> str:
    """One line per watch run: what was built how, what readers now see, how long events waited."""
    built = [f"{r.step} ({r.mode}, +{r.rows_in:,})" for r in report.results if r.status == "built"]
    now = f"{datetime.now():%H:%M:%S}"
    if not built:
        return f"{now} nothing new ({report.seconds:.1f}s)"
    line = f"{now} built {', '.join(built)} in {report.seconds:.1f}s; {report.gate_line()}"
    if report.waits:
        p50, p95 = (float(q) for q in np.percentile(report.waits, [50, 95]))
        line += f"; events waited p50 {p50:.1f}s, p95 {p95:.1f}s from arrival to visible"
    return line


def _say_gate(report: PipelineReport) -> None:
    """The gate's verdict in one line; a failed gate exits 1 (the builds stay inspectable)."""
    if report.gate is not None and not report.gate.passed:
        console.print(f"error: {report.gate_line()}", style="red", highlight=False)
        raise typer.Exit(1)
    console.print(report.gate_line(), style="dim", highlight=False)


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
    print_table(table)


@pipeline_app.command("check")
@one_line_errors
def check(
    max_quarantine_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Largest share of events silver may quarantine.")
    ] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print every check as JSON.")] = False,
    publish: Annotated[bool, typer.Option(help="Publish the audited builds when every check passed.")] = True,
) -> None:
    """The data-quality gate on the latest gold builds: present, built from the current inputs, unique
    keys, reconciled with silver, share of rejected events within bounds (duplicates apart). When all
    passed it publishes them, with the silver they were built from, to readers. Exits 1 naming every
    failed check, and then publishes nothing."""
    from mdslab.workloads.pipeline.runner import audit_lake
    from mdslab.workloads.quality import enforce

    report = audit_lake(
        settings(),
        run_id="pipeline-check",
        what="mdslab pipeline check",
        max_quarantine_share=max_quarantine_share,
        publish=publish,
    )
    if as_json:
        typer.echo(json.dumps([vars(c) for c in report.checks], indent=2))
    else:
        table = Table("table", "check", "result", "detail", title_justify="left")
        for item in report.checks:
            table.add_row(item.table, item.name, "[green]ok[/]" if item.passed else "[red]FAILED[/]", item.detail)
        print_table(table)
    enforce(report)
    if not as_json:
        what = "; published " + ", ".join(f"{n} v{v}" for n, v in sorted(report.audited.items())) if publish else ""
        console.print(report.reason() + what, highlight=False)


class SimulateTarget(StrEnum):
    API = "api"
    KAFKA = "kafka"
    LAKE = "lake"


@one_line_errors
def simulate(
    target: Annotated[
        SimulateTarget,
        typer.Option(
            help="api: POST to the ingestion API (`mdslab serve`); kafka: produce straight to the topics; "
            "lake: land a file drop in bronze."
        ),
    ] = SimulateTarget.API,
    rows: Annotated[int, typer.Option("--rows", "-n", min=1000, help="Transactions to generate.")] = 50_000,
    rate: Annotated[float, typer.Option(min=0.0, help="Events per second (0: as fast as possible).")] = 0.0,
    duration: Annotated[
        float | None, typer.Option(min=1.0, help="Seconds to send for; with --rate, sets --rows to rate x duration.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed and rows, same data.")] = 42,
    invalid_share: Annotated[float, typer.Option(min=0.0, max=0.5, help="Share of events made invalid.")] = 0.02,
    api_url: Annotated[str | None, typer.Option(help="Ingestion API (default http://MDSLAB_API__HOST:PORT).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per request / produce call.")] = 500,
    replay: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Send recorded run N again, exactly (the same event ids: silver removes the copies); "
            "--rows, --seed and --invalid-share are then those of run N.",
        ),
    ] = None,
) -> None:
    """Generate transactions, claims and reference data, and send them the way a source system would.

    Every run continues this lab's simulated world: the same customers, merchants and policies (the
    first run creates them; later runs change no reference row), the next time window and new event
    ids, so running it twice gives twice the data. --replay N re-sends a recorded run on purpose.
    Reference data goes to PostgreSQL and the fraud-label export to bronze in every mode. Events go to
    the ingestion API (default), straight to Kafka (bad ones then end in the dead letters), or into a
    bronze file drop (landing the same batch twice is recognised and skipped). `mdslab stream` moves
    what reached Kafka into bronze.
    """
    from mdslab.workloads.lake import lakehouse
    from mdslab.workloads.simulation_runs import next_run
    from mdslab.workloads.simulation_runs import replay as recorded
    from mdslab.workloads.simulator import simulate as generate

    current = settings()
    if duration is not None:
        if not rate:
            raise typer.BadParameter("--duration needs --rate (events per second)")
        rows = max(1000, int(rate * duration))
    if replay is not None:
        planned = recorded(current.postgres, replay)
    else:
        planned = next_run(current.postgres, transactions=rows, seed=seed, invalid_share=invalid_share)
    console.print(f"simulating {planned.describe}", highlight=False)
    with console.status(f"simulating {planned.config.transactions:,} transactions"):
        data = generate(planned.config)
    lake = lakehouse(current)
    if target is SimulateTarget.LAKE:
        _land(current, lake, data)
        return
    _send(current, lake, data, target, rate or None, api_url, batch_size)


def _land(current: Settings, lake: Lakehouse, data: SimulatedData) -> None:
    from mdslab.workloads.file_drop_feed import drop_batch

    with console.status("landing"):
        report = drop_batch(current, lake, data)
    for landed in report.landed:
        what = "already landed, skipped" if landed.skipped else f"{landed.rows:,} rows -> version {landed.version}"
        console.print(f"{landed.table}: {what}")
    changed = ", ".join(f"{name} {count:,}" for name, count in report.reference_changed.items())
    console.print(f"PostgreSQL reference rows inserted or changed: {changed}")
    console.print(f"batch {report.batch_id}: {report.planted_defects:,} planted defects", style="dim")


def _send(
    current: Settings,
    lake: Lakehouse,
    data: SimulatedData,
    target: SimulateTarget,
    rate: float | None,
    api_url: str | None,
    batch_size: int,
) -> None:
    from mdslab.eventbus import EventPublisher
    from mdslab.workloads.ingestion.events import Topics
    from mdslab.workloads.ingestion.sender import ApiTarget, KafkaTarget, SendReport, Target
    from mdslab.workloads.ingestion.stream_feed import feed_simulation

    sender: Target
    if target is SimulateTarget.API:
        url = api_url or f"http://{current.api.host}:{current.api.port}"
        sender = ApiTarget(url, current.api.api_key.get_secret_value())
        where = f"ingestion API {url}"
    else:
        sender = KafkaTarget(
            EventPublisher(current.kafka, client_id="mdslab-simulator"), Topics(current.kafka.topic_prefix)
        )
        where = f"Kafka {current.kafka.bootstrap_servers}"
    total = data.transactions.num_rows + data.claims.num_rows
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task(f"sending to {where}", total=total, counts="")

        def update(report: SendReport) -> None:
            progress.update(
                task,
                completed=report.total("sent"),
                counts=f"accepted {report.total('accepted'):,}, rejected {report.total('rejected'):,}",
            )

        try:
            fed = feed_simulation(current, lake, data, sender, rate=rate, batch_size=batch_size, on_progress=update)
        finally:
            sender.close()
    sent = fed.sent
    assert sent is not None
    console.print(
        f"sent {sent.total('sent'):,} events in {sent.seconds:.1f}s "
        f"({sent.total('sent') / max(sent.seconds, 1e-9):,.0f}/s): "
        f"accepted {sent.total('accepted'):,}, rejected {sent.total('rejected'):,}, failed {sent.total('failed'):,}; "
        f"planted defects {fed.planted_defects:,}",
        highlight=False,
    )
    for reason in sent.example_rejections:
        console.print(f"  rejected: {reason}", style="dim", highlight=False)
    labels = "already landed" if fed.labels.skipped else f"{fed.labels.rows:,} rows"
    console.print(
        f"fraud labels -> bronze.fraud_labels: {labels}. Next: `mdslab stream --until-caught-up`.", style="dim"
    )


@one_line_errors
def demo(
    rows: Annotated[int, typer.Option("--rows", "-n", min=1000, help="Transactions to generate.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON only.")] = False,
) -> None:
    """The main job: services up, simulate, events through the ingestion API and Kafka into bronze,
    silver and gold on Spark, summary.

    The demo serves its own API on a free port for the duration. Silver and gold are built with Spark
    on Ray (RayDP). Re-running is cheap: a simulation already fed is not sent again and steps whose
    inputs did not change are skipped.
    """
    from mdslab.api.app import create_app
    from mdslab.api.server import background_server
    from mdslab.workloads.demo import run_demo
    from mdslab.workloads.ingestion.sender import ApiTarget
    from mdslab.workloads.lineage.ingest_runs import api_ingest_run

    current = settings()
    with console.status("starting services", spinner="dots") as status:
        ensure_services(current, on_step=status.update, quiet=as_json)
        current = settings()
        with api_ingest_run(current), background_server(create_app(current), current.api.host) as url:
            target = ApiTarget(url, current.api.api_key.get_secret_value())
            try:
                report = run_demo(current, rows=rows, seed=seed, target=target, on_progress=status.update)
            finally:
                target.close()
    summary = report.as_dict()
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    print_table(_steps_table(report.pipeline.results), drop_first=STEPS_OPTIONAL)
    print_table(table_rows(report.tables), drop_first=TABLE_ROWS_OPTIONAL)
    for name, reasons in report.quarantine_reasons.items():
        detail = ", ".join(f"{code} {count:,}" for code, count in reasons.items())
        console.print(f"{name}: {sum(reasons.values()):,} reasons ({detail or 'none'}; a row can have several)")
    seconds, sent = summary["seconds"], summary["sent"]
    if sent["skipped"]:
        console.print("events: this simulation was sent before; not sent again", style="dim")
    else:
        console.print(
            f"events: {sent['sent']:,} sent to the API, {sent['accepted']:,} accepted, {sent['rejected']:,} rejected "
            f"(422); {report.stream.dead_letters:,} dead letters; planted defects {report.feed.planted_defects:,}",
            highlight=False,
        )
    if report.case_files is not None:
        console.print(f"case files: {report.case_files.line()}", highlight=False)
    spark_line = f"Spark start {seconds['spark_session_start']}"
    if report.spark_warm_up_s is not None:
        spark_line += f" and warm-up {seconds['spark_warm_up']} (meanwhile), waited for {seconds['waited_for_spark']}"
    console.print(
        f"seconds: simulate {seconds['simulate']}, send {seconds['send']}, Kafka -> bronze "
        f"{seconds['stream_to_bronze']}, {spark_line}, pipeline {seconds['pipeline_after_spark']} after Spark, "
        f"total {seconds['total']}",
        style="dim",
        highlight=False,
    )
    console.print(
        'next: `mdslab console` (the whole lab on one page), `mdslab sql "SELECT ... FROM gold.daily_spend"`, '
        "`mdslab notebook`, `mdslab spark history`",
        highlight=False,
    )
