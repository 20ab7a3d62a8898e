"""Benchmark: the pipeline's silver + gold build on Spark on Ray against the same SQL on DuckDB.

For each size, one simulated batch is landed in bronze (its own buckets and database, so sizes never
mix), the reference step snapshots PostgreSQL, and the bronze versions are pinned. Both engines then
build all five SQL steps (silver_transactions, silver_claims, gold_daily_spend, gold_fraud_features,
gold_claims_monthly) from those same versions and write their outputs to the lake (each engine to its
own curated bucket) through the same framework path, so each figure is lake -> engine -> lake. The
outputs are compared afterwards. Spark's session start is measured once and left out of every figure.

Run ``python bench/pipeline.py --help`` for the options. Results: a table on the console and JSON in
bench/results/. Benchmarks are not tests: nothing here fails on a slow figure.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from _compare import Near, TableComparison, compare_tables
from _duck_steps import BENCH_STEPS, DuckTimes, duckdb_steps, pinned, read_snapshot
from _measure import Phase, TreeSampler, bench_progress, load_average, machine, package_versions
from rich.console import Console
from rich.table import Table

from mdslab import database, objectstore
from mdslab.lakehouse import Lakehouse
from mdslab.settings import LakeSettings, Settings, load_settings
from mdslab.workloads.file_drop_feed import batch_id_for, drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.reference_step import REFERENCE_STEPS
from mdslab.workloads.pipeline.step_runtime import PipelineContext, SparkProvider, StepResult, run_step
from mdslab.workloads.pipeline.steps import PLANS, STEPS
from mdslab.workloads.simulator import SimulationConfig, simulate

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = ("pyspark", "raydp", "ray", "duckdb", "deltalake", "pyarrow")
SQL_STEPS = [step for step in STEPS if step.name in BENCH_STEPS]
BRONZE_EVENT_TABLES = ("bronze.transactions", "bronze.claims", "bronze.fraud_labels")
QUARANTINE_KEYS = ("payload", "source")  # quarantined rows have no key; a payload identifies them
console = Console()
if not console.is_terminal:
    console = Console(width=170)  # a log file or a pipe: do not squeeze the tables to 80 columns


# --- one size's lake -------------------------------------------------------------------------------


@dataclass
class SizeLake:
    """Where one size lives: bronze in its own raw bucket, each engine's outputs in its own bucket."""

    rows: int
    seed: int
    spark: Settings
    duckdb: Settings
    pinned: dict[str, int] = field(default_factory=dict)
    landed_now: bool = False

    @property
    def label(self) -> str:
        return human_rows(self.rows)

    def lake(self, engine: str) -> Lakehouse:
        return lakehouse(self.spark if engine == "spark" else self.duckdb)


def size_lake(base: Settings, rows: int, seed: int) -> SizeLake:
    tag = f"bench-n{rows}-s{seed}"
    raw = f"{tag}-raw"
    spark_lake = LakeSettings(raw_bucket=raw, curated_bucket=f"{tag}-spark")
    duck_lake = LakeSettings(raw_bucket=raw, curated_bucket=f"{tag}-duckdb")
    objectstore.ensure_buckets(
        objectstore.s3_client(base.s3), [raw, spark_lake.curated_bucket, duck_lake.curated_bucket]
    )
    pg = base.postgres.model_copy(update={"database": tag.replace("-", "_")})
    database.ensure_database(pg, pg.database)
    return SizeLake(
        rows,
        seed,
        base.model_copy(update={"lake": spark_lake, "postgres": pg}),
        base.model_copy(update={"lake": duck_lake, "postgres": pg}),
    )


def land(size: SizeLake) -> None:
    """Simulate and land the batch unless an earlier run landed it (same seed and size, same bytes),
    then snapshot the reference data and pin every bronze version both engines will read."""
    lake = size.lake("spark")
    config = SimulationConfig(transactions=size.rows, seed=size.seed)
    batch = f"landing:{batch_id_for(config)}"  # the app id landing commits with (workloads.bronze_landing)
    if any(lake.transaction_version(table, batch) is None for table in BRONZE_EVENT_TABLES):
        data = simulate(config)
        drop_batch(size.spark, lake, data)
        size.landed_now = True
        del data
        gc.collect()
    ctx = PipelineContext(size.spark, lake, SparkProvider(size.spark))
    for step in REFERENCE_STEPS:
        run_step(ctx, step)
    bronze = {table for step in SQL_STEPS for table in step.inputs if table.startswith("bronze.")}
    for table in sorted(bronze):
        version = lake.version(table)
        if version is None:
            raise RuntimeError(f"{table} is missing after landing in {size.spark.lake.raw_bucket}")
        size.pinned[table] = version


# --- running the engines ---------------------------------------------------------------------------


@dataclass
class StepFigures:
    step: str
    read_s: float
    compute_s: float
    write_s: float
    seconds: float
    rows_out: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "seconds": round(self.seconds, 3),
            "lake_to_engine_s": round(self.read_s, 3),
            "compute_s": round(self.compute_s, 3),
            "engine_to_lake_s": round(self.write_s, 3),
            "rows_out": self.rows_out,
        }


@dataclass
class EngineRun:
    engine: str
    rows: int
    phase: Phase
    steps: list[StepFigures]
    outputs: dict[str, int]  # table -> version written

    @property
    def seconds(self) -> float:
        return self.phase.seconds

    def total(self, attr: str) -> float:
        return sum(float(getattr(step, attr)) for step in self.steps)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows_per_s),
            "lake_to_engine_s": round(self.total("read_s"), 3),
            "compute_s": round(self.total("compute_s"), 3),
            "engine_to_lake_s": round(self.total("write_s"), 3),
            **{f"tree_{key}": value for key, value in self.phase.as_dict().items() if key != "seconds"},
            "steps": [step.as_dict() for step in self.steps],
            "output_versions": self.outputs,
        }


def _figures(result: StepResult, duck: DuckTimes | None) -> StepFigures:
    phases = result.phases
    read, compute = phases.get("read", 0.0), phases.get("compute", 0.0)
    if duck is not None:  # the DuckDB build reads and computes; it timed both itself
        read, compute = duck.read[result.step], compute - duck.read[result.step]
    return StepFigures(result.step, read, compute, phases.get("write", 0.0), result.seconds, result.rows_out)


def run_engine(
    engine: str,
    size: SizeLake,
    sampler: TreeSampler,
    spark: SparkProvider | None,
    on_step: Callable[[str], None],
    duckdb_threads: int | None,
) -> EngineRun:
    lake = size.lake(engine)
    settings = size.spark if engine == "spark" else size.duckdb
    duck = DuckTimes() if engine == "duckdb" else None
    steps = SQL_STEPS if duck is None else duckdb_steps(duck, threads=duckdb_threads)
    ctx = PipelineContext(settings, lake, spark or SparkProvider(settings))
    figures: list[StepFigures] = []
    outputs: dict[str, int] = {}
    gc.collect()
    with sampler.phase(f"{engine} {size.label}") as phase:
        for step in steps:
            on_step(step.name)
            result = run_step(ctx, pinned(step, size.pinned), force=True)
            figures.append(_figures(result, duck))
            outputs.update(result.outputs)
    return EngineRun(engine, size.rows, phase, figures, outputs)


# --- checking and reporting ------------------------------------------------------------------------


def compare(size: SizeLake, spark_run: EngineRun, duck_run: EngineRun) -> list[dict[str, Any]]:
    """Check the engines agree, three ways (see ``_compare``'s doc for the tolerances):

    * silver: each output of both engines, value by value (the same bronze went in);
    * gold from the same silver: DuckDB's gold SQL re-run on the silver versions Spark's gold was
      built from, against Spark's gold (isolates the gold logic from silver's rounding flips);
    * gold end to end: each engine's gold as written, built from its own silver.
    """
    spark_lake, duck_lake = size.lake("spark"), size.lake("duckdb")
    checks: list[dict[str, Any]] = []

    def read(lake: Lakehouse, table: str, version: int) -> pa.Table:
        # delta-rs's scan returns string_view, which Arrow cannot sort: back to the registered types
        schema = lake.spec(table).schema
        return read_snapshot(lake, table, version).select(schema.names).cast(schema)

    def add(kind: str, result: TableComparison) -> None:
        checks.append({"kind": kind, **result.as_dict()})

    for table, version in spark_run.outputs.items():
        keys = spark_lake.spec(table).key or QUARANTINE_KEYS
        spark_table = read(spark_lake, table, version)
        duck_table = read(duck_lake, table, duck_run.outputs[table])
        if table.startswith("gold."):
            add("gold end to end", compare_tables(table, spark_table, duck_table, keys, near=Near()))
        else:
            add("silver", compare_tables(table, spark_table, duck_table, keys))
    for factory in (PLANS[name] for name in BENCH_STEPS):
        plan = factory(DUCKDB)
        outputs = list(plan.outputs)
        if not outputs[0].startswith("gold."):
            continue
        versions = spark_lake.commit_metadata(outputs[0], version=spark_run.outputs[outputs[0]])["inputs"]
        inputs = {view: read_snapshot(spark_lake, table, int(versions[table])) for view, table in plan.inputs.items()}
        for table, data in run_duckdb(plan, inputs).items():
            schema = spark_lake.spec(table).schema
            add(
                "gold from the same silver",
                compare_tables(
                    table,
                    read(spark_lake, table, spark_run.outputs[table]),
                    data.select(schema.names).cast(schema),
                    spark_lake.spec(table).key,
                    near=Near(),
                ),
            )
    return checks


def vacuum_outputs(size: SizeLake, engines: list[str]) -> None:
    """Delete the files of earlier runs' output versions, so repeated runs do not fill the disk."""
    for engine in engines:
        lake = size.lake(engine)
        for step in SQL_STEPS:
            for table in step.outputs:
                if lake.exists(table):
                    lake.delta(table).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)


def human_rows(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return f"{rows:,}"


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "-"


def print_report(report: dict[str, Any], sizes: list[dict[str, Any]]) -> None:
    session = report.get("spark_session_start")
    compute = report["spark_settings"]
    console.print()
    console.print(
        "[bold]Pipeline benchmark[/]: silver + gold (5 SQL steps) from the same bronze snapshot, "
        "lake -> engine -> lake; rows = bronze transactions",
        highlight=False,
    )
    info = report["machine"]
    console.print(
        f"machine: {info['logical_cpus']} logical CPUs, {info['memory_gib']} GiB; load average "
        f"{info['load_average_at_start'][0]} at start, {report['load_average_at_end'][0]} at end | Spark: "
        f"{compute['spark_executors']} executor x {compute['spark_executor_cores']} cores, "
        f"{compute['spark_executor_memory']} executor / {compute['spark_driver_memory']} driver memory, "
        f"{compute['spark_shuffle_partitions']} shuffle partitions, object store "
        f"{compute['ray_object_store_mb']} MB | DuckDB threads: {report['duckdb_threads'] or 'all cores'}",
        style="dim",
        highlight=False,
    )
    if session:
        console.print(
            f"Spark session start (Ray + RayDP, once, excluded below): {session['seconds']:.1f} s, "
            f"peak PSS {session['peak_pss_gib']:.2f} GiB",
            highlight=False,
        )
    table = Table(title_justify="left")
    for column in (
        "rows",
        "engine",
        "seconds",
        "rows/s",
        "vs DuckDB",
        "lake->engine s",
        "compute s",
        "engine->lake s",
        "compute vs DuckDB",
        "CPU s (cores busy)",
        "peak PSS GiB",
    ):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for size in sizes:
        runs = size["runs"]
        duck = runs.get("duckdb")
        label = human_rows(size["rows"])
        for name, engine in (("DuckDB", "duckdb"), ("Spark on Ray", "spark")):
            run = runs.get(engine)
            if run is None:
                continue
            table.add_row(
                label,
                name,
                f"{run['seconds']:.1f}",
                f"{run['rows_per_s']:,}",
                _ratio(run["seconds"], duck["seconds"] if duck else None),
                f"{run['lake_to_engine_s']:.1f}",
                f"{run['compute_s']:.1f}",
                f"{run['engine_to_lake_s']:.1f}",
                _ratio(run["compute_s"], duck["compute_s"] if duck else None),
                f"{run['tree_cpu_seconds']:.0f} ({run['tree_cpu_seconds'] / run['seconds']:.1f})",
                f"{run['tree_peak_pss_gib']:.2f}",
            )
            label = ""
        table.add_section()
    console.print(table)
    for size in sizes:
        _print_steps(size)
    for size in sizes:
        _print_check(size)
    console.print(
        "How to read it: seconds = the engine's five steps end to end (lake read, compute, write and "
        "commit), without landing or session start; vs DuckDB = seconds / DuckDB's seconds at the same "
        "size in this run. Spark compute = from asking an output for its first Arrow batch until it "
        "arrives (the Spark job, including the executors' row -> Arrow conversion), no extra "
        "persist/count added; Spark engine->lake = pulling the rest through Ray's object store + the "
        "Delta write. DuckDB lake->engine = delta-rs scan to Arrow, compute = inside DuckDB. CPU s and "
        "peak PSS are summed over this process and everything it started (Ray, JVMs, workers), not "
        "the embedded S3/Kafka/PostgreSQL servers; peak RSS (shared pages counted once per process) "
        "is in the JSON. Sizes ran in this order in one Spark session, so the first size also pays the "
        "JVM's warm-up.",
        style="dim",
        highlight=False,
    )


def _print_steps(size: dict[str, Any]) -> None:
    runs = size["runs"]
    duck, spark = runs.get("duckdb"), runs.get("spark")
    table = Table(title=f"{human_rows(size['rows'])}: seconds per step (lake->engine / compute / engine->lake)")
    table.add_column("step")
    if duck:
        table.add_column("DuckDB", justify="right")
    if spark:
        table.add_column("Spark on Ray", justify="right")
    if duck and spark:
        table.add_column("vs DuckDB", justify="right")
    by_step: dict[str, dict[str, dict[str, Any]]] = {}
    for engine, run in (("duckdb", duck), ("spark", spark)):
        for step in run["steps"] if run else []:
            by_step.setdefault(step["step"], {})[engine] = step
    for name, figures in by_step.items():
        cells = [name]
        for engine in ("duckdb", "spark"):
            if engine in figures:
                step = figures[engine]
                cells.append(
                    f"{step['seconds']:.1f} = {step['lake_to_engine_s']:.1f} / {step['compute_s']:.1f} / "
                    f"{step['engine_to_lake_s']:.1f}"
                )
        if duck and spark:
            cells.append(_ratio(figures["spark"]["seconds"], figures["duckdb"]["seconds"]))
        table.add_row(*cells)
    console.print(table)


def _print_check(size: dict[str, Any]) -> None:
    checks = size.get("check")
    if not checks:
        return
    ok = all(check["agree"] for check in checks)
    verdict = "[green]agree[/]" if ok else "[red]DIFFER[/]"
    parts = []
    for kind in ("silver", "gold from the same silver", "gold end to end"):
        found = [check for check in checks if check["kind"] == kind]
        flips = sum(sum(check["rounding_flips"].values()) for check in found)
        near = sum(sum(check["near"].values()) for check in found)
        rows = ", ".join(f"{check['table'].split('.')[-1]} {check['rows'][0]:,}" for check in found)
        extra = f", {near:,} near (<= 0.0101 or 0.1%)" if near else ""
        parts.append(f"{kind}: {rows}; {flips:,} one-step rounding flips{extra}")
    console.print(
        f"{human_rows(size['rows'])} correctness: the engines {verdict}. Row counts equal and every value "
        f"equal after sorting on the key (floats to 1e-9 relative) except as counted: " + " | ".join(parts),
        highlight=False,
    )
    for check in checks:
        if not check["agree"]:
            console.print(
                f"  {check['kind']} {check['table']}: rows {check['rows']}, mismatched {check['mismatched_values']}",
                highlight=False,
            )
            for column, examples in check["examples"].items():
                console.print(f"    {column}: e.g. {examples}", highlight=False)


# --- main ------------------------------------------------------------------------------------------


def _median_run(runs: list[EngineRun]) -> EngineRun:
    ordered = sorted(runs, key=lambda run: run.seconds)
    return ordered[(len(ordered) - 1) // 2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/pipeline.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[1_000_000, 5_000_000],
        metavar="N",
        help="Bronze transaction counts to run, in this order (default: 1000000 5000000).",
    )
    parser.add_argument("--seed", type=int, default=42, help="Simulation seed (default 42).")
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=["duckdb", "spark"],
        default=["duckdb", "spark"],
        help="Engines to run (default both; ratios and the correctness check need both).",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Runs per engine and size; the median run is reported, all runs go to the JSON (default 1).",
    )
    parser.add_argument(
        "--duckdb-threads", type=int, default=None, help="DuckDB threads (default: DuckDB's own, all cores)."
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=f"Where the JSON goes ({RESULTS_DIR}).")
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="Instead: build a lake of the first --rows in full, then --batches batches incrementally, against a "
        "full rebuild and the batch built from scratch (see bench/_incremental.py).",
    )
    parser.add_argument("--batches", type=int, default=10, help="With --incremental: batches (default 10).")
    parser.add_argument("--batch-rows", type=int, default=50_000, help="With --incremental: rows per batch (50000).")
    parser.add_argument(
        "--keep-lakes",
        action="store_true",
        help="With --incremental: keep the benchmark's lakes (buckets and database) instead of deleting them.",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or any(rows < 1_000 for rows in args.rows):
        parser.error("--repeat must be >= 1 and every --rows >= 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from mdslab.workloads.bootstrap import ensure_platform

    settings = load_settings()
    started_at = datetime.now(UTC)
    if args.incremental:
        return incremental_main(args, settings, started_at)
    report: dict[str, Any] = {
        "benchmark": "pipeline",
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "versions": package_versions(*PACKAGES),
        "spark_settings": settings.compute.model_dump(mode="json"),
        "duckdb_threads": args.duckdb_threads,
        "method": {
            "rows": "bronze transaction events per size (claims and labels come with them)",
            "timed": "the five SQL steps per engine, from pinned bronze versions to committed Delta outputs",
            "spark_compute": "time to the first Arrow batch of each output (Spark job incl. row->Arrow)",
            "spark_to_lake": "the remaining Arrow partitions through Ray's object store + Delta write",
            "memory": "PSS and RSS summed over this process and its descendants, sampled every 0.5 s",
        },
    }
    progress = bench_progress(console)
    engines = [engine for engine in ("duckdb", "spark") if engine in args.engines]
    # services, then per size: landing, every step of every run, the comparison; and one per engine
    units = 1 + len(args.rows) * (2 + args.repeat * len(engines) * len(SQL_STEPS)) + len(engines)
    sizes: list[SizeLake] = []
    runs: dict[int, dict[str, list[EngineRun]]] = {rows: {} for rows in args.rows}
    checks: dict[int, list[dict[str, Any]]] = {}
    spark_provider: SparkProvider | None = None
    with progress, TreeSampler() as sampler:
        task = progress.add_task("starting services", total=units)

        def say(text: str) -> None:
            progress.update(task, description=text)

        def announce(text: str) -> None:
            say(text)
            progress.advance(task)

        ensure_platform(settings, on_step=say)
        settings = load_settings()
        progress.advance(task)
        for rows in args.rows:
            say(f"{human_rows(rows)}: simulating and landing bronze (skipped when landed earlier)")
            size = size_lake(settings, rows, args.seed)
            land(size)
            sizes.append(size)
            progress.advance(task)
        try:
            for engine in engines:
                if engine == "spark":
                    say("starting Spark on Ray (RayDP)")
                    spark_provider = SparkProvider(settings)
                    with sampler.phase("spark session start") as phase:
                        spark_provider.get()
                    report["spark_session_start"] = phase.as_dict()
                    report["spark_session_start"]["seconds"] = spark_provider.started_in_s or phase.seconds
                progress.advance(task)
                for size in sizes:
                    for attempt in range(args.repeat):
                        again = f" (run {attempt + 1}/{args.repeat})" if args.repeat > 1 else ""
                        prefix = f"{size.label}: {engine}"
                        run = run_engine(
                            engine,
                            size,
                            sampler,
                            spark_provider,
                            functools.partial(_announce_step, announce, f"{prefix} {{}}{again}"),
                            args.duckdb_threads,
                        )
                        runs[size.rows].setdefault(engine, []).append(run)
        finally:
            if spark_provider is not None:
                spark_provider.close()
        for size in sizes:
            say(f"{size.label}: comparing the engines' outputs")
            engine_runs = runs[size.rows]
            if "spark" in engine_runs and "duckdb" in engine_runs:
                checks[size.rows] = compare(size, engine_runs["spark"][-1], engine_runs["duckdb"][-1])
            vacuum_outputs(size, engines)
            progress.advance(task)
    report["load_average_at_end"] = [round(x, 2) for x in load_average()]
    report["sizes"] = [
        {
            "rows": size.rows,
            "seed": size.seed,
            "bronze_versions": size.pinned,
            "bronze_landed_in_this_run": size.landed_now,
            "buckets": {
                "bronze": size.spark.lake.raw_bucket,
                "spark": size.spark.lake.curated_bucket,
                "duckdb": size.duckdb.lake.curated_bucket,
            },
            "runs": {engine: _median_run(found).as_dict() for engine, found in runs[size.rows].items()},
            "all_runs": {engine: [run.as_dict() for run in found] for engine, found in runs[size.rows].items()},
            "check": checks.get(size.rows, []),
        }
        for size in sizes
    ]
    for entry in report["sizes"]:
        duck, spark = entry["runs"].get("duckdb"), entry["runs"].get("spark")
        if duck and spark:
            entry["spark_vs_duckdb"] = {
                "end_to_end": round(spark["seconds"] / duck["seconds"], 3),
                "compute_only": round(spark["compute_s"] / duck["compute_s"], 3),
            }
    print_report(report, report["sizes"])
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"pipeline-{started_at:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"JSON: {out}", style="dim", highlight=False)
    return 0


def incremental_main(args: argparse.Namespace, settings: Settings, started_at: datetime) -> int:
    import _incremental

    from mdslab.workloads.bootstrap import ensure_platform

    with console.status("starting services") as status:
        ensure_platform(settings, on_step=status.update)
        result = _incremental.run(
            load_settings(),
            rows=args.rows[0],
            batches=args.batches,
            batch_rows=args.batch_rows,
            seed=args.seed,
            say=status.update,
            keep_lakes=args.keep_lakes,
        )
    report = {
        "benchmark": "pipeline-incremental",
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": package_versions(*PACKAGES),
        **result,
    }
    _incremental.print_report(console, result)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"pipeline-incremental-{started_at:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"JSON: {out}", style="dim", highlight=False)
    return 0


def _announce_step(announce: Callable[[str], None], template: str, step: str) -> None:
    """One line per step of an engine's run: ``template`` with the step's name in its ``{}``."""
    announce(template.format(step))


if __name__ == "__main__":
    sys.exit(main())
