"""Commands of the streaming path: serve the ingestion API, consume Kafka into bronze."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer

from mdslab.cli.context import console, one_line_errors, settings


@one_line_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: MDSLAB_API__HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: MDSLAB_API__PORT, 8000).")] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request (costs throughput).")] = False,
) -> None:
    """Serve the API: ingestion (POST /v1/transactions, /v1/claims), fraud scores, RAG (POST /v1/rag/query),
    the OpenAI-compatible LLM gateway (POST /v1/chat/completions), /docs, /healthz, /readyz, /metrics.

    Events are validated against the data contracts and answered 202 only once Kafka has stored them.
    Clients send the API key in the X-API-Key header (the gateway also takes `Authorization: Bearer`);
    `mdslab up` writes it to the secrets file. Gateway requests are logged one JSON line each.
    """
    import logging

    from mdslab.api.app import create_app
    from mdslab.api.server import API_PORT_FIX
    from mdslab.api.server import serve as run
    from mdslab.services.ports import require_free_port
    from mdslab.workloads.lineage.ingest_runs import api_ingest_run

    current = settings()
    bind_host, bind_port = host or current.api.host, port or current.api.port
    require_free_port(bind_host, bind_port, what="the API", fix=API_PORT_FIX)
    if not current.api.api_key.get_secret_value():
        console.print("No API key is set (MDSLAB_API__API_KEY): every ingest request will get 403.", style="yellow")
    console.print(
        f"Ingestion API on http://{bind_host}:{bind_port} (docs: /docs, metrics: /metrics); Kafka "
        f"{current.kafka.bootstrap_servers}; API key: MDSLAB_API__API_KEY in {current.secrets_file}. Ctrl-C stops.",
        highlight=False,
    )
    logging.getLogger("mdslab.gateway").setLevel(logging.INFO)  # the gateway's request log is always on
    with api_ingest_run(current):
        run(create_app(current), bind_host, bind_port, access_log=access_log)


@one_line_errors
def stream(
    until_caught_up: Annotated[
        bool, typer.Option("--until-caught-up", help="Stop once bronze holds what the topics held at start.")
    ] = False,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics here (default MDSLAB_STREAM__METRICS_PORT; 0: off).")
    ] = None,
) -> None:
    """Consume the event topics into bronze Delta tables, exactly once, with dead letters.

    Offsets are stored in the same Delta commit as the rows, so a restart (even after kill -9) resumes
    where the table ends: no duplicate, no gap. Messages that fail their contract go to the dead-letter
    topic and bronze.dead_letters. SIGTERM or Ctrl-C writes the batch in hand, then stops.
    """
    from prometheus_client import CollectorRegistry, start_http_server

    from mdslab.services.ports import port_taken, require_free_port
    from mdslab.telemetry import register_process_metrics
    from mdslab.workloads.ingestion.consumer import StreamConsumer, StreamMetrics
    from mdslab.workloads.lake import lakehouse

    current = settings()
    registry = CollectorRegistry()
    register_process_metrics(registry)
    port = current.stream.metrics_port if metrics_port is None else metrics_port
    if port:
        fix = "pass --metrics-port (0: no metrics) or set MDSLAB_STREAM__METRICS_PORT"
        require_free_port(current.api.host, port, what="the consumer's metrics", fix=fix)
        try:
            start_http_server(port, addr=current.api.host, registry=registry)
        except OSError:  # taken between the check and the bind
            raise port_taken(current.api.host, port, what="the consumer's metrics", fix=fix) from None
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    consumer = StreamConsumer(current, lakehouse(current), metrics=StreamMetrics(registry))
    where = f"; metrics on http://{current.api.host}:{port}/metrics" if port else ""
    console.print(f"consuming {', '.join(consumer.topics.events)} into bronze{where}", highlight=False)
    with console.status("waiting for partitions") as status:
        report = consumer.run(
            stop=stop,
            until_caught_up=until_caught_up,
            on_batch=lambda r: status.update(
                f"{r.batches:,} batches: "
                + ", ".join(f"{table} +{rows:,}" for table, rows in r.bronze_rows.items())
                + f", dead letters {r.dead_letters:,}"
            ),
        )
    rows = ", ".join(f"{table} {count:,}" for table, count in report.bronze_rows.items()) or "no rows"
    console.print(
        f"wrote {rows}; {report.dead_letters:,} dead letters; {report.skipped_already_written:,} already in bronze "
        f"(skipped); {report.batches:,} commits in {report.seconds:.1f}s",
        highlight=False,
    )
