"""Benchmark: what lineage costs and how fast it answers, on a lab of its own (new buckets and database,
deleted at the end): the share of a pipeline run spent reporting lineage (each "on" run's lineage calls
replayed alone; wall time with lineage off and on, ABBA order), the store's ingest rate, and
`lineage --upstream` latency. What each figure means: bench/README.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import console, drop_lab, finish, header, lab, load_average, parser, percentiles, progress, table
from _incremental import feed

from mdslab.settings import LineageTransport, Settings, load_settings
from mdslab.workloads.bootstrap import ensure_platform
from mdslab.workloads.pipeline.runner import PipelineReport, run_pipeline
from mdslab.workloads.pipeline.step_runtime import SparkProvider

PACKAGES = ("openlineage-python", "sqlglot", "psycopg", "pyspark", "duckdb")


def parse_args(argv: list[str] | None) -> Any:
    found = parser("lineage.py", __doc__, seed=31)
    found.add_argument("--rows", type=int, default=20_000, help="Transactions in the first batch (default 20000).")
    found.add_argument("--batch-rows", type=int, default=2_000, help="Transactions per incremental batch (2000).")
    found.add_argument("--repeat", type=int, default=3, help="Runs with lineage off and on, each (default 3).")
    found.add_argument("--events", type=int, default=2_000, help="Events re-sent to measure ingest (2000).")
    found.add_argument("--queries", type=int, default=3, help="Upstream walks per silver/gold column (3).")
    found.add_argument("--keep-lake", action="store_true", help="Keep the benchmark's buckets and database.")
    args = found.parse_args(argv)
    if args.rows < 1_000 or args.batch_rows < 1_000 or min(args.repeat, args.events, args.queries) < 1:
        found.error("--rows >= 1000, --batch-rows >= 1000, --repeat, --events and --queries >= 1")
    return args


def _with_transport(settings: Settings, transport: LineageTransport) -> Settings:
    return settings.model_copy(update={"lineage": settings.lineage.model_copy(update={"transport": transport})})


def _pipeline_runs(lab: Settings, spark: SparkProvider, args: Any, advance: Callable[[str], None]) -> dict[str, Any]:
    """ABBA-ordered off/on runs: full rebuilds, then incremental runs over new batches; each "on" run's
    lineage replayed alone."""
    seconds: dict[str, dict[str, list[float]]] = {kind: {"off": [], "on": []} for kind in ("full", "incremental")}
    replayed: dict[str, list[float]] = {"full": [], "incremental": []}
    inline: dict[str, list[float]] = {"full": [], "incremental": []}
    modes = {"off": _with_transport(lab, LineageTransport.OFF), "on": _with_transport(lab, LineageTransport.STORE)}
    order = [("off", "on") if pair % 2 == 0 else ("on", "off") for pair in range(args.repeat)]
    batch = 0
    for kind in ("full", "incremental"):
        for pair in order:
            for state in pair:
                if kind == "incremental":
                    batch += 1
                    feed(lab, args.batch_rows, args.seed + batch)
                started = time.perf_counter()
                report = run_pipeline(modes[state], spark=spark, force=kind == "full")
                took = time.perf_counter() - started
                seconds[kind][state].append(took)
                if state == "on":
                    alone = _lineage_alone(modes["on"], report)
                    inline[kind].append(alone[0] / took)
                    replayed[kind].append(alone[1] / took)
                advance(f"{kind} run, lineage {state}")
    result: dict[str, Any] = {}
    for kind, states in seconds.items():
        off, on = statistics.median(states["off"]), statistics.median(states["on"])
        result[kind] = {
            "off_s": [round(x, 3) for x in states["off"]],
            "on_s": [round(x, 3) for x in states["on"]],
            "median_off_s": round(off, 3),
            "median_on_s": round(on, 3),
            "wall_time_overhead": round(on / off - 1, 4),
            "replayed_share": [round(x, 4) for x in replayed[kind]],
            "replayed_overhead": round(statistics.median(replayed[kind]), 4),
            "inline_share": [round(x, 4) for x in inline[kind]],
            "inline_overhead": round(statistics.median(inline[kind]), 4),
        }
    return result


def _lineage_alone(settings: Settings, report: PipelineReport) -> tuple[float, float]:
    """Seconds the lineage calls of one pipeline run take on their own: the same steps, results and gate
    reported again (new run ids) into the store. (inline, total): inline is what the run's own thread
    spends (building events, handing them to the delivery thread); total adds waiting at the end until
    every event is delivered, i.e. the cost if delivery overlapped nothing."""
    from mdslab.workloads.lake import lakehouse
    from mdslab.workloads.lineage.pipeline_runs import PipelineLineage
    from mdslab.workloads.pipeline.steps import STEPS

    steps = {step.name: step for step in STEPS}
    lake = lakehouse(settings)
    started = time.perf_counter()
    lineage = PipelineLineage.of(settings, lake)
    for result in report.results:
        if result.mode is not None:
            lineage.step_started(steps[result.step], result.inputs)
            lineage.step_finished(steps[result.step], result)
    if report.gate is not None:
        lineage.gate(report.gate)
    inline = time.perf_counter() - started
    lineage.finished()
    return inline, time.perf_counter() - started


def _resend(events: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` copies of real events, each run under a new run id (so the store keeps every one)."""
    out = []
    for i in range(count):
        event = json.loads(json.dumps(events[i % len(events)]))
        event["run"]["runId"] = str(uuid.uuid4())
        out.append(event)
    return out


def _ingest_rates(lab: Settings, count: int) -> dict[str, Any]:
    import httpx
    from pydantic import SecretStr

    from mdslab.api.app import create_app
    from mdslab.api.server import background_server
    from mdslab.workloads.lineage.delivery import StoreTransport
    from mdslab.workloads.lineage.store import read_events

    events = read_events(lab.postgres)
    transport = StoreTransport(lab.postgres)
    batch = _resend(events, count)
    started = time.perf_counter()
    for event in batch:
        transport.emit(event)
    store_s = time.perf_counter() - started
    transport.close()

    keyed = lab.model_copy(update={"api": lab.api.model_copy(update={"api_key": SecretStr("bench")})})
    batch = _resend(events, count)
    with background_server(create_app(keyed)) as url, httpx.Client(base_url=url, timeout=10) as client:
        started = time.perf_counter()
        for event in batch:
            client.post("/api/v1/lineage", json=event, headers={"Authorization": "Bearer bench"}).raise_for_status()
        http_s = time.perf_counter() - started
    return {
        "events": count,
        "store_transport_per_s": round(count / store_s, 1),
        "http_post_per_s": round(count / http_s, 1),
    }


def _answer_latency(lab: Settings, queries: int) -> dict[str, Any]:
    from mdslab.workloads.lake import build_registry
    from mdslab.workloads.lineage.recorded import lab_names, load_lineage
    from mdslab.workloads.lineage.traversal import Direction, resolve, trace

    registry = build_registry()
    names = lab_names(registry, lab)
    built = load_lineage(lab.postgres, names).columns  # what the runs recorded (not fraud_scores: no model here)
    columns = [
        f"{s.name}.{c}"
        for s in registry
        if s.layer.value in ("silver", "gold") and s.name in built
        for c in s.schema.names
    ]
    walks = []
    for _ in range(queries):
        for column in columns:
            started = time.perf_counter()
            graph = load_lineage(lab.postgres, names)
            trace(graph, resolve(graph, column), Direction.UPSTREAM)
            walks.append(time.perf_counter() - started)
    env = {
        "MDSLAB_LAKE__RAW_BUCKET": lab.lake.raw_bucket,
        "MDSLAB_LAKE__CURATED_BUCKET": lab.lake.curated_bucket,
        "MDSLAB_POSTGRES__DATABASE": lab.postgres.database,
    }
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "mdslab"), "lineage", "gold.fraud_features.amount_to_avg_30d", "--json"],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
    )
    return {
        "columns": len(columns),
        "walks": len(walks),
        "library_ms": percentiles(walks, scale=1000),
        "cli_command_s": round(time.perf_counter() - started, 3),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    report = header("lineage", PACKAGES, argv)
    report["load_average_at_start"] = load_average()
    with progress() as stage:
        base = ensure_platform(load_settings(), on_step=stage.say).settings
        stage("starting Spark on Ray")
        done = stage.say
        bench_lab = lab(base, f"bench-lin-{uuid.uuid4().hex[:8]}")
        spark = SparkProvider(base)
        try:
            spark.get()
            done("Spark on Ray started")
            feed(bench_lab, args.rows, args.seed)
            run_pipeline(bench_lab, spark=spark)  # the first build: warms the lineage cache and Spark
            done(f"{args.rows:,} transactions landed and built once")
            report["pipeline"] = _pipeline_runs(bench_lab, spark, args, done)
            report["ingest"] = _ingest_rates(bench_lab, args.events)
            done("store ingest measured")
            report["answer"] = _answer_latency(bench_lab, args.queries)
            done("upstream answers measured")
        finally:
            spark.close()
            for problem in [] if args.keep_lake else drop_lab(bench_lab):
                console.print(f"could not clean up: {problem}", highlight=False)
    return finish(report, args.results_dir, print_report)


def print_report(report: dict[str, Any]) -> None:
    rows = [
        [
            kind,
            *(f"{figures[key]:.2f}" for key in ("median_off_s", "median_on_s")),
            f"{figures['wall_time_overhead']:+.1%}",
            *(f"{figures[key]:.1%}" for key in ("inline_overhead", "replayed_overhead")),
        ]
        for kind, figures in report["pipeline"].items()
    ]
    columns = ("pipeline run", "lineage off (median s)", "lineage on (median s)", "wall-time difference")
    table(None, (*columns, "in the run's thread", "incl. delivery"), rows)
    ingest = report["ingest"]
    console.print(
        f"store ingest ({ingest['events']:,} events): {ingest['store_transport_per_s']:,.0f}/s through the "
        f"emitter's store transport, {ingest['http_post_per_s']:,.0f}/s through POST /api/v1/lineage"
    )
    answer = report["answer"]
    ms = answer["library_ms"]
    console.print(
        f"lineage --upstream over {answer['columns']} columns x {answer['walks'] // answer['columns']}: "
        f"p50 {ms['p50']:.1f} ms, p95 {ms['p95']:.1f} ms, max {ms['max']:.1f} ms (graph loaded each time); "
        f"the CLI command end to end {answer['cli_command_s']:.2f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
