"""Benchmark: the ingestion path, HTTP API -> Kafka -> stream consumer -> bronze Delta table.

One run measures, against the same broker and lake:

1. ceiling: a raw confluent-kafka producer (acks=all, idempotent, the API publisher's lz4/linger
   settings) sending the same payloads to a topic of its own; events/s until the last is acknowledged,
   then its acknowledgement latency at each ``--rate`` (the floor under the API's latency).
2. batch POSTs: a few keep-alive clients POST lists of ``--batch-size`` transactions as fast as the
   API answers; events/s accepted by the API (202) and end to end, from the first POST until the
   bronze commit that holds the last accepted event (the consumer runs all along).
3. single POSTs: the same with one event per request and more concurrent clients.
4. fixed rate: single-event POSTs on an open-loop schedule (``--rate`` req/s for ``--duration`` s),
   latency measured from each request's scheduled send time, so a stalled server is charged for the
   requests queued behind it (no coordinated omission).

Every step also gives bronze freshness: per event, from its event time (the fixed-rate client stamps
the scheduled send time into ``event_time``; the closed-loop clients' events count from when their
request was sent) to the timestamp of the Delta commit that made its row queryable, found row by row
through the Kafka offsets each commit records.

The API (``mdslab serve``) and the consumer (``mdslab stream``) run as subprocesses with their own
topics, consumer group, buckets and API key, so a run never mixes with other data; the embedded
services are started if needed and left running. Topics and buckets of the run are deleted at the
end unless ``--keep``. The HTTP load comes from a small asyncio HTTP/1.1 keep-alive client in this
process: ~10 us of CPU per request where httpx.AsyncClient takes ~800 us (measured here against a
stub server), which matters when the load generator shares two cores with what it measures.

Run ``python bench/ingest.py --help`` for the options. Results: tables on the console and JSON in
bench/results/. Benchmarks are not tests: nothing here fails on a slow figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _bronze_watch import BRONZE, BronzeWatch
from _ingest_events import Events
from _ingest_report import TARGETS, console, print_report, targets
from _ingest_services import Service, cleanup, free_port, isolated, start, wait_until_ready
from _ingest_steps import Stack, step_closed, step_rate, warm_up
from _measure import GIB, bench_progress, load_average, machine, package_versions
from _process_watch import ProcessWatch, listener_pid
from _raw_producer import ceiling_producer, raw_rate, raw_throughput

from mdslab import eventbus
from mdslab.settings import Settings, load_settings
from mdslab.workloads.ingestion.events import Topics

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = ("confluent-kafka", "fastapi", "uvicorn", "uvloop", "httptools", "deltalake", "pyarrow", "pydantic")


# --- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/ingest.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events",
        type=int,
        default=300_000,
        help="Events of the batch-POST step; the raw producer sends the same ones (default 300000).",
    )
    parser.add_argument("--batch-size", type=int, default=500, help="Events per batch POST (default 500).")
    parser.add_argument("--batch-clients", type=int, default=4, help="Concurrent batch clients (default 4).")
    parser.add_argument(
        "--single-events", type=int, default=10_000, help="Events of the single-POST step (default 10000)."
    )
    parser.add_argument("--single-clients", type=int, default=32, help="Concurrent single clients (default 32).")
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[500.0],
        metavar="R",
        help="Requests/s of the fixed-rate step; several values run it once each, in this order (default 500).",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="Seconds of each fixed-rate run (default 20).")
    parser.add_argument(
        "--max-connections",
        type=int,
        default=64,
        help="Most connections the fixed-rate client opens; beyond, requests wait (default 64).",
    )
    parser.add_argument("--seed", type=int, default=42, help="Simulation seed (default 42).")
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="Most seconds to wait for bronze to catch up per step (180)."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the run's topics and buckets (default: delete).")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=f"Where the JSON goes ({RESULTS_DIR}).")
    args = parser.parse_args(argv)
    if (
        args.events < 1_000
        or args.batch_size < 1
        or args.single_events < 1
        or min(args.rate) <= 0
        or args.duration <= 0
    ):
        parser.error("--events must be >= 1000, and --batch-size, --single-events, --rate, --duration positive")
    if min(args.batch_clients, args.single_clients, args.max_connections) < 1:
        parser.error("client and connection counts must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mdslab.workloads.bootstrap import ensure_platform, ensure_resources

    started_at = datetime.now(UTC)
    tag = f"bench-ingest-{started_at:%Y%m%dt%H%M%S}"
    rate_counts = [round(rate * args.duration) for rate in args.rate]
    rate_count = sum(rate_counts)
    report: dict[str, Any] = {
        "benchmark": "ingest",
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "versions": package_versions(*PACKAGES),
        "arguments": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "targets_set": TARGETS,
        "method": {
            "ceiling": "raw confluent-kafka producer, EventPublisher's settings, same payloads/keys/headers, "
            "timed from the first produce to the last acknowledgement (connection set up before)",
            "api_202": "first request sent -> last 202 received, asyncio HTTP/1.1 keep-alive client in this process",
            "end_to_end": "first request sent -> commitInfo.timestamp of the bronze commit holding the last accepted "
            "event",
            "latency": "open loop; from each request's scheduled send time to its complete response",
            "freshness": "event time (fixed rate: event_time = scheduled send time; closed loop: request sent) -> "
            "commitInfo.timestamp of the commit that wrote the row, mapped through the Kafka offsets recorded in "
            "each commit",
            "cpu": "user+system seconds per process from /proc; others = machine-wide busy CPU minus those",
            "memory": "RSS and PSS of the API and consumer processes, sampled every 0.5 s",
        },
        "steps": {},
    }
    progress = bench_progress(console)
    logs = Path(tempfile.mkdtemp(prefix="mdslab-bench-ingest-"))
    services: list[Service] = []
    settings: Settings | None = None
    run_topics: list[str] = []
    failed = False
    with progress, ProcessWatch() as watch:
        task = progress.add_task("starting services", total=None)

        def stage(text: str, total: float | None) -> Callable[[int], None]:
            progress.reset(task, description=text, total=total, completed=0)
            return lambda n: progress.advance(task, n)

        try:
            base = load_settings()
            ensure_platform(base, on_step=lambda text: progress.update(task, description=text))
            base = load_settings()
            settings = isolated(base, tag)
            ensure_resources(settings)
            topics = Topics(settings.kafka.topic_prefix)
            ceiling_topic = f"{settings.kafka.topic_prefix}ceiling"
            run_topics = [*topics.events, topics.dead_letters, ceiling_topic]
            eventbus.ensure_topics(
                eventbus.admin_client(settings.kafka),
                [eventbus.TopicSpec(ceiling_topic, settings.kafka.default_partitions)],
            )
            report["settings"] = {
                "tag": tag,
                "partitions": settings.kafka.default_partitions,
                "stream": settings.stream.model_dump(mode="json"),
                "api": settings.api.model_dump(mode="json", exclude={"api_key"}),
            }
            kafka_port = settings.kafka.first_host_port[1]
            watch.add("client", os.getpid())
            watch.add("kafka", listener_pid(kafka_port))
            watch.add("s3", listener_pid(settings.s3.host_port[1]))

            stage(f"simulating {args.events + args.single_events + rate_count:,} transactions", None)
            events = Events.simulate(130 + args.events + args.single_events + rate_count, args.seed)
            warm = events.take(130)
            batch_events = events.take(args.events)
            single_events = events.take(args.single_events)
            rate_events = [events.take(count) for count in rate_counts]

            producer = ceiling_producer(settings)
            advance = stage("ceiling: raw producer, flat out", len(batch_events.payloads))
            with watch.phase("raw producer"):
                report["steps"]["ceiling"] = raw_throughput(producer, ceiling_topic, batch_events, advance)
            report["steps"]["raw_rates"] = []
            for rate in args.rate:
                raw_count = round(rate * min(args.duration, 5.0))
                advance = stage(f"raw producer at {rate:.0f} messages/s", raw_count)
                with watch.phase(f"raw at {rate:.0f}/s"):
                    raw_events = Events(batch_events.payloads[:raw_count], batch_events.keys[:raw_count])
                    report["steps"]["raw_rates"].append(raw_rate(producer, ceiling_topic, raw_events, rate, advance))
            del producer

            stage("starting the API and the consumer", None)
            env = os.environ | settings.environment() | {"MDSLAB_STREAM__METRICS_PORT": "0"}
            host = settings.api.host
            port = free_port(host)
            api = start("api", ["serve", "--host", host, "--port", str(port)], env, logs)
            services.append(api)
            consumer = start("consumer", ["stream"], env, logs)
            services.append(consumer)
            watch.add("api", api.process.pid, memory=True)
            watch.add("consumer", consumer.process.pid, memory=True)
            wait_until_ready(api, f"http://{host}:{port}")
            stack = Stack(settings, host, port, api, consumer, BronzeWatch(settings), args.timeout)
            stage("warm-up: through the whole path, waiting for the consumer's partitions", None)
            report["warm_up"] = warm_up(stack, warm)

            advance = stage(f"batch POSTs ({args.batch_size}/request)", len(batch_events.payloads))
            with watch.phase("batch POSTs"):
                report["steps"]["batch"], _ = step_closed(
                    stack, batch_events, args.batch_size, args.batch_clients, advance
                )
            advance = stage("single POSTs", len(single_events.payloads))
            with watch.phase("single POSTs"):
                report["steps"]["single"], _ = step_closed(stack, single_events, 1, args.single_clients, advance)
            report["steps"]["rates"] = []
            for rate, some in zip(args.rate, rate_events, strict=True):
                advance = stage(f"fixed rate: {rate:.0f} req/s for {args.duration:.0f} s", len(some.payloads))
                with watch.phase(f"POSTs at {rate:.0f}/s"):
                    figures = step_rate(stack, some, rate, args.max_connections, advance)
                report["steps"]["rates"].append(figures)

            stage("checking bronze", None)
            bronze_ids = stack.watch.lake.read_table(BRONZE, columns=["event_id"]).column("event_id").to_pylist()
            distinct = set(bronze_ids)
            accepted = stack.expected_rows
            report["bronze_check"] = {
                "bronze_rows": len(bronze_ids),
                "distinct_event_ids": len(distinct),
                "accepted": accepted,
                "missing": max(0, accepted - len(distinct)),
                "unexpected": max(0, len(distinct) - accepted),
                "exactly_once": len(bronze_ids) == len(distinct) == accepted,
            }
        except BaseException:
            failed = True
            raise
        finally:
            progress.update(task, description="stopping the API and the consumer")
            for service in reversed(services):
                code = service.stop()
                report.setdefault("exit_codes", {})[service.name] = code
            if failed:
                for service in services:
                    console.print(f"--- {service.name} log ({service.log}):\n{service.tail()}", highlight=False)
            else:
                shutil.rmtree(logs, ignore_errors=True)
            if settings is not None and not args.keep:
                progress.update(task, description="deleting the run's topics and buckets")
                report["cleanup_problems"] = cleanup(settings, run_topics, tag)
    report["load_average_at_end"] = [round(x, 2) for x in load_average()]
    report["processes"] = {
        "phases": [{"name": phase.name, **phase.as_dict()} for phase in watch.phases],
        "peak_rss_gib": {role: round(value / GIB, 3) for role, value in watch.overall.peak_rss.items()},
        "peak_pss_gib": {role: round(value / GIB, 3) for role, value in watch.overall.peak_pss.items()},
    }
    report["targets"] = targets(report)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"ingest-{started_at:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_report(report)
    console.print(f"JSON: {out}", style="dim", highlight=False)
    if report.get("cleanup_problems"):
        console.print(f"cleanup: {'; '.join(report['cleanup_problems'])}", style="yellow", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
