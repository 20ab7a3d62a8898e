"""Benchmark: the ingestion path, HTTP API -> Kafka -> stream consumer -> bronze Delta table, on this host:
a raw producer's ceiling, batch and single POSTs (events/s accepted and end to end into bronze), API latency
at fixed request rates, bronze freshness, CPU and memory per process. Each run has its own topics, consumer
group, buckets and API key (deleted at the end unless --keep). What each figure means: bench/README.md.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from _harness import GIB, Stage, arguments, console, finish, header, listener_pid, parser, progress
from _ingest_report import TARGETS, print_report, targets
from _ingest_stack import Events, Service, ceiling_producer, cleanup, isolated, raw_rate, raw_throughput
from _ingest_steps import BRONZE, Stack, step_closed, step_rate, warm_up
from _measure import ProcessWatch

from mdslab import eventbus
from mdslab.settings import Settings, load_settings
from mdslab.workloads.bootstrap import ensure_platform, ensure_resources

PACKAGES = ("confluent-kafka", "fastapi", "uvicorn", "uvloop", "httptools", "deltalake", "pyarrow", "pydantic")
METHOD = {
    "ceiling": "raw confluent-kafka producer, EventPublisher's settings, same payloads/keys/headers, "
    "timed from the first produce to the last acknowledgement (connection set up before)",
    "api_202": "first request sent -> last 202 received, asyncio HTTP/1.1 keep-alive client in this process",
    "end_to_end": "first request sent -> commitInfo.timestamp of the bronze commit holding the last accepted event",
    "latency": "open loop; from each request's scheduled send time to its complete response",
    "freshness": "event time (fixed rate: event_time = scheduled send time; closed loop: request sent) -> "
    "commitInfo.timestamp of the commit that wrote the row, mapped through the Kafka offsets recorded in each commit",
    "cpu": "user+system seconds per process from /proc; others = machine-wide busy CPU minus those",
    "memory": "RSS and PSS of the API and consumer processes, sampled every 0.5 s",
}


def parse_args(argv: list[str] | None) -> Any:
    found = parser("ingest.py", __doc__)
    found.add_argument("--events", type=int, default=300_000, help="Events of the batch-POST step; the raw "
                       "producer sends the same ones (default 300000).")  # fmt: skip
    found.add_argument("--batch-size", type=int, default=500, help="Events per batch POST (default 500).")
    found.add_argument("--batch-clients", type=int, default=4, help="Concurrent batch clients (default 4).")
    found.add_argument("--single-events", type=int, default=10_000, help="Events of the single-POST step (10000).")
    found.add_argument("--single-clients", type=int, default=32, help="Concurrent single clients (default 32).")
    found.add_argument("--rate", type=float, nargs="+", default=[500.0], metavar="R", help="Requests/s of the "
                       "fixed-rate step; several values run it once each, in this order (default 500).")  # fmt: skip
    found.add_argument("--duration", type=float, default=20.0, help="Seconds of each fixed-rate run (default 20).")
    found.add_argument("--max-connections", type=int, default=64, help="Most connections the fixed-rate client "
                       "opens; beyond, requests wait (default 64).")  # fmt: skip
    found.add_argument("--timeout", type=float, default=180.0, help="Most seconds to wait for bronze to catch "
                       "up per step (180).")  # fmt: skip
    found.add_argument("--keep", action="store_true", help="Keep the run's topics and buckets (default: delete).")
    args = found.parse_args(argv)
    if args.events < 1_000 or min(args.batch_size, args.single_events, *args.rate, args.duration) <= 0:
        found.error("--events must be >= 1000, and --batch-size, --single-events, --rate, --duration positive")
    if min(args.batch_clients, args.single_clients, args.max_connections) < 1:
        found.error("client and connection counts must be >= 1")
    return args


def ceiling_topic(settings: Settings) -> str:
    return f"{settings.kafka.topic_prefix}ceiling"


def measure(
    args: Any, report: dict[str, Any], settings: Settings, stack: Stack, watch: ProcessWatch, stage: Stage
) -> None:
    """The raw producer's steps, then the API and the consumer started and every step through them."""
    steps, topic = report["steps"], ceiling_topic(settings)
    spec = eventbus.TopicSpec(topic, settings.kafka.default_partitions)
    eventbus.ensure_topics(eventbus.admin_client(settings.kafka), [spec])
    watch.add("client", os.getpid())
    watch.add("kafka", listener_pid(settings.kafka.first_host_port[1]))
    watch.add("s3", listener_pid(settings.s3.host_port[1]))

    rate_counts = [round(rate * args.duration) for rate in args.rate]
    stage(f"simulating {args.events + args.single_events + sum(rate_counts):,} transactions")
    events = Events.simulate(130 + args.events + args.single_events + sum(rate_counts), args.seed)
    warm, batch_events, single_events = events.take(130), events.take(args.events), events.take(args.single_events)
    rate_events = [events.take(count) for count in rate_counts]

    producer = ceiling_producer(settings)
    advance = stage("ceiling: raw producer, flat out", len(batch_events.payloads))
    with watch.phase("raw producer"):
        steps["ceiling"] = raw_throughput(producer, topic, batch_events, advance)
    steps["raw_rates"] = []
    for rate in args.rate:
        count = round(rate * min(args.duration, 5.0))
        advance = stage(f"raw producer at {rate:.0f} messages/s", count)
        with watch.phase(f"raw at {rate:.0f}/s"):
            some = Events(batch_events.payloads[:count], batch_events.keys[:count])
            steps["raw_rates"].append(raw_rate(producer, topic, some, rate, advance))
    del producer

    stage("starting the API and the consumer")
    env = os.environ | settings.environment() | {"MDSLAB_STREAM__METRICS_PORT": "0"}
    for name, command in (
        ("api", ["serve", "--host", stack.host, "--port", str(stack.port)]),
        ("consumer", ["stream"]),
    ):
        stack.services.append(Service.start(name, command, env, stack.logs))
        watch.add(name, stack.services[-1].process.pid, memory=True)
    stack.services[0].wait_ready(f"http://{stack.host}:{stack.port}")
    stage("warm-up: through the whole path, waiting for the consumer's partitions")
    report["warm_up"] = warm_up(stack, warm)

    advance = stage(f"batch POSTs ({args.batch_size}/request)", len(batch_events.payloads))
    with watch.phase("batch POSTs"):
        steps["batch"], _ = step_closed(stack, batch_events, args.batch_size, args.batch_clients, advance)
    advance = stage("single POSTs", len(single_events.payloads))
    with watch.phase("single POSTs"):
        steps["single"], _ = step_closed(stack, single_events, 1, args.single_clients, advance)
    steps["rates"] = []
    for rate, some in zip(args.rate, rate_events, strict=True):
        advance = stage(f"fixed rate: {rate:.0f} req/s for {args.duration:.0f} s", len(some.payloads))
        with watch.phase(f"POSTs at {rate:.0f}/s"):
            steps["rates"].append(step_rate(stack, some, rate, args.max_connections, advance))

    stage("checking bronze")
    ids = stack.watch.lake.read_table(BRONZE, columns=["event_id"]).column("event_id").to_pylist()
    distinct, accepted = len(set(ids)), stack.expected_rows
    report["bronze_check"] = {
        "bronze_rows": len(ids),
        "distinct_event_ids": distinct,
        "accepted": accepted,
        "missing": max(0, accepted - distinct),
        "unexpected": max(0, distinct - accepted),
        "exactly_once": len(ids) == distinct == accepted,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = header("ingest", PACKAGES, argv) | {"arguments": arguments(args), "targets_set": TARGETS}
    report |= {"method": METHOD, "steps": {}}
    tag = f"bench-ingest-{datetime.fromisoformat(report['started_at']):%Y%m%dt%H%M%S}"
    logs = Path(tempfile.mkdtemp(prefix="mdslab-bench-ingest-"))
    services: list[Service] = []
    settings: Settings | None = None
    failed = False
    with progress() as stage, ProcessWatch() as watch:
        try:
            base = ensure_platform(load_settings(), on_step=stage.say).settings
            settings = isolated(base, tag)
            ensure_resources(settings)
            report["settings"] = {
                "tag": tag,
                "partitions": settings.kafka.default_partitions,
                "stream": settings.stream.model_dump(mode="json"),
                "api": settings.api.model_dump(mode="json", exclude={"api_key"}),
            }
            measure(args, report, settings, Stack(settings, services, args.timeout, logs), watch, stage)
        except BaseException:
            failed = True
            raise
        finally:
            stage("stopping the API and the consumer")
            report["exit_codes"] = {service.name: service.stop() for service in reversed(services)}
            for service in services if failed else []:
                console.print(f"--- {service.name} log ({service.log}):\n{service.tail()}", highlight=False)
            if not failed:
                shutil.rmtree(logs, ignore_errors=True)
            if settings is not None and not args.keep:
                stage("deleting the run's topics and buckets")
                report["cleanup_problems"] = cleanup(settings, ceiling_topic(settings))
    report["processes"] = {
        "phases": [{"name": phase.name, **phase.as_dict()} for phase in watch.phases],
        "peak_rss_gib": {role: round(value / GIB, 3) for role, value in watch.overall.peak_rss.items()},
        "peak_pss_gib": {role: round(value / GIB, 3) for role, value in watch.overall.peak_pss.items()},
    }
    report["targets"] = targets(report)
    finish(report, args.results_dir, print_report)
    if report.get("cleanup_problems"):
        console.print(f"cleanup: {'; '.join(report['cleanup_problems'])}", style="yellow", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
