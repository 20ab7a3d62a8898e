"""Benchmark: the pipeline's silver + gold build on Spark on Ray against the same SQL on DuckDB, lake ->
engine -> lake from the same pinned bronze snapshot; with --incremental, one batch built incrementally on
a big lake against a full rebuild. What each figure means: bench/README.md.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

from _bronze import Bronze, land, pinned, size_lab, vacuum
from _compare import check_engines
from _duck_steps import SQL_STEPS, DuckTimes, duckdb_steps
from _harness import console, finish, header, human_rows, median_run, note, parser, progress, ratio, table, title
from _measure import TreeSampler

from mdslab.settings import Settings, load_settings
from mdslab.workloads.bootstrap import ensure_platform
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.step_runtime import PipelineContext, SparkProvider, StepResult, run_step

PACKAGES = ("pyspark", "raydp", "ray", "duckdb", "deltalake", "pyarrow")
ENGINES = {"duckdb": "DuckDB", "spark": "Spark on Ray"}
PARTS = ("lake_to_engine_s", "compute_s", "engine_to_lake_s")
METHOD = {
    "rows": "bronze transaction events per size (claims and labels come with them)",
    "timed": "the five SQL steps per engine, from pinned bronze versions to committed Delta outputs",
    "spark_compute": "time to the first Arrow batch of each output (Spark job incl. row->Arrow)",
    "spark_to_lake": "the remaining Arrow partitions through Ray's object store + Delta write",
    "memory": "PSS and RSS summed over this process and its descendants, sampled every 0.5 s",
}


def step_figures(result: StepResult, duck: DuckTimes | None) -> dict[str, Any]:
    """One step's seconds split into lake -> engine, compute and engine -> lake (the Delta commit)."""
    read, compute = result.phases.get("read", 0.0), result.phases.get("compute", 0.0)
    if duck is not None:  # the DuckDB build reads and computes in one phase; it timed the read itself
        read, compute = duck.read[result.step], compute - duck.read[result.step]
    parts = (read, compute, result.phases.get("write", 0.0))
    return {"step": result.step, "seconds": result.seconds, **dict(zip(PARTS, parts, strict=True))}


def run_engine(
    engine: str,
    settings: Settings,
    bronze: Bronze,
    sampler: TreeSampler,
    spark: SparkProvider | None,
    say: Callable[[str], None],
    duckdb_threads: int | None,
) -> dict[str, Any]:
    """The five SQL steps on one engine, ``force``d, from the pinned bronze into the engine's own bucket."""
    duck = DuckTimes() if engine == "duckdb" else None
    steps = SQL_STEPS if duck is None else duckdb_steps(duck, threads=duckdb_threads)
    ctx = PipelineContext(settings, lakehouse(settings), spark or SparkProvider(settings))
    figures: list[dict[str, Any]] = []
    outputs: dict[str, int] = {}
    rows_out: dict[str, dict[str, int]] = {}
    with sampler.phase(f"{engine} {human_rows(bronze.rows)}") as phase:
        for step in steps:
            say(step.name)
            result = run_step(ctx, pinned(step, bronze.pinned), force=True)
            figures.append(step_figures(result, duck))
            rows_out[step.name] = result.rows_out
            outputs.update(result.outputs)
    tree = {f"tree_{key}": value for key, value in phase.as_dict().items() if key != "seconds"}
    return {
        "engine": engine,
        "seconds": round(phase.seconds, 3),
        "rows_per_s": round(bronze.rows / phase.seconds) if phase.seconds else 0,
        **{part: round(sum(step[part] for step in figures), 3) for part in PARTS},
        **tree,
        "steps": [
            {key: round(value, 3) if isinstance(value, float) else value for key, value in step.items()}
            | {"rows_out": rows_out[step["step"]]}
            for step in figures
        ],
        "output_versions": outputs,
    }


def print_report(report: dict[str, Any]) -> None:
    compute, session = report["spark_settings"], report.get("spark_session_start")
    title(
        "[bold]Pipeline benchmark[/]: silver + gold (5 SQL steps) from the same bronze snapshot, lake -> engine "
        "-> lake; rows = bronze transactions",
        report,
        f"Spark: {compute['spark_executors']} executor x {compute['spark_executor_cores']} cores, "
        f"{compute['spark_executor_memory']} executor / {compute['spark_driver_memory']} driver memory, "
        f"{compute['spark_shuffle_partitions']} shuffle partitions, object store {compute['ray_object_store_mb']} MB"
        f" | DuckDB threads: {report['duckdb_threads'] or 'all cores'}",
    )
    if session:
        console.print(
            f"Spark session start (Ray + RayDP, once, excluded below): {session['seconds']:.1f} s, "
            f"peak PSS {session['peak_pss_gib']:.2f} GiB",
            highlight=False,
        )
    rows: list[list[str] | None] = []
    for size in report["sizes"]:
        duck, label = size["runs"].get("duckdb") or {}, human_rows(size["rows"])
        for engine, run in ((engine, size["runs"][engine]) for engine in ENGINES if engine in size["runs"]):
            cpu = run["tree_cpu_seconds"]
            rows.append(
                [label, ENGINES[engine], f"{run['seconds']:.1f}", f"{run['rows_per_s']:,}"]
                + [ratio(run["seconds"], duck.get("seconds"))]
                + [f"{run[part]:.1f}" for part in PARTS]
                + [ratio(run["compute_s"], duck.get("compute_s")), f"{cpu:.0f} ({cpu / run['seconds']:.1f})"]
                + [f"{run['tree_peak_pss_gib']:.2f}"]
            )
            label = ""
        rows.append(None)
    columns = ("rows", "engine", "seconds", "rows/s", "vs DuckDB", "lake->engine s", "compute s", "engine->lake s")
    table(None, (*columns, "compute vs DuckDB", "CPU s (cores busy)", "peak PSS GiB"), rows, left=2)
    for size in report["sizes"]:
        print_steps(size)
    for size in report["sizes"]:
        print_check(size)
    note("How to read it: bench/README.md, `bench/pipeline.py`. CPU s and peak PSS: this process and all it started.")


def print_steps(size: dict[str, Any]) -> None:
    runs = [(ENGINES[engine], size["runs"][engine]) for engine in ENGINES if engine in size["runs"]]
    both = len(runs) == 2
    by_step: dict[str, list[dict[str, Any]]] = {}
    for _, run in runs:
        for step in run["steps"]:
            by_step.setdefault(step["step"], []).append(step)
    rows = [
        [name]
        + [f"{s['seconds']:.1f} = " + " / ".join(f"{s[part]:.1f}" for part in PARTS) for s in steps]
        + ([ratio(steps[1]["seconds"], steps[0]["seconds"])] if both else [])
        for name, steps in by_step.items()
    ]
    heading = f"{human_rows(size['rows'])}: seconds per step (lake->engine / compute / engine->lake)"
    table(heading, ["step", *(name for name, _ in runs), *(["vs DuckDB"] if both else [])], rows)


def print_check(size: dict[str, Any]) -> None:
    if not (checks := size.get("check")):
        return
    verdict = "[green]agree[/]" if all(check["agree"] for check in checks) else "[red]DIFFER[/]"
    parts = []
    for kind in ("silver", "gold from the same silver", "gold end to end"):
        found = [check for check in checks if check["kind"] == kind]
        flips = sum(sum(check["rounding_flips"].values()) for check in found)
        near = sum(sum(check["near"].values()) for check in found)
        rows = ", ".join(f"{check['table'].split('.')[-1]} {check['rows'][0]:,}" for check in found)
        extra = f", {near:,} near (<= 0.0101 or 0.1%)" if near else ""
        parts.append(f"{kind}: {rows}; {flips:,} one-step rounding flips{extra}")
    console.print(
        f"{human_rows(size['rows'])} correctness: the engines {verdict}. Row counts equal and every value equal "
        "after sorting on the key (floats to 1e-9 relative) except as counted: " + " | ".join(parts),
        highlight=False,
    )
    for check in (check for check in checks if not check["agree"]):
        console.print(
            f"  {check['kind']} {check['table']}: rows {check['rows']}, mismatched {check['mismatched_values']}",
            highlight=False,
        )
        for column, examples in check["examples"].items():
            console.print(f"    {column}: e.g. {examples}", highlight=False)


def parse_args(argv: list[str] | None) -> Any:
    found = parser("pipeline.py", __doc__)
    found.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000], metavar="N", help="Bronze "
                       "transaction counts to run, in this order (default: 1000000 5000000).")  # fmt: skip
    found.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES), help="Engines to run "
                       "(default both; ratios and the correctness check need both).")  # fmt: skip
    found.add_argument("--repeat", type=int, default=1, help="Runs per engine and size; the median run is "
                       "reported, all runs go to the JSON (default 1).")  # fmt: skip
    found.add_argument("--duckdb-threads", type=int, help="DuckDB threads (default: DuckDB's own, all cores).")
    found.add_argument("--incremental", action="store_true", help="Instead: build a lake of the first --rows in "
                       "full, then --batches batches incrementally (see bench/_incremental.py).")  # fmt: skip
    found.add_argument("--batches", type=int, default=10, help="With --incremental: batches (default 10).")
    found.add_argument("--batch-rows", type=int, default=50_000, help="With --incremental: rows per batch (50000).")
    found.add_argument("--keep-lakes", action="store_true", help="With --incremental: keep the benchmark's lakes.")
    args = found.parse_args(argv)
    if args.repeat < 1 or any(rows < 1_000 for rows in args.rows):
        found.error("--repeat must be >= 1 and every --rows >= 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if args.incremental:
        import _incremental

        return _incremental.main(args, header("pipeline-incremental", PACKAGES, argv))
    report = header("pipeline", PACKAGES, argv)
    engines = [engine for engine in ENGINES if engine in args.engines]
    sizes: list[tuple[Bronze, dict[str, Settings], dict[str, list[dict[str, Any]]]]] = []
    spark: SparkProvider | None = None
    with progress() as stage, TreeSampler() as sampler:
        settings = ensure_platform(load_settings(), on_step=stage.say).settings
        report |= {
            "spark_settings": settings.compute.model_dump(mode="json"),
            "duckdb_threads": args.duckdb_threads,
            "method": METHOD,
        }
        for rows in args.rows:
            stage(f"{human_rows(rows)}: simulating and landing bronze (skipped when landed earlier)")
            labs = {engine: size_lab(settings, rows, args.seed, engine) for engine in ENGINES}
            sizes.append((land(labs["spark"], rows, args.seed), labs, {}))
        try:
            for engine in engines:
                if engine == "spark":
                    stage("starting Spark on Ray (RayDP)")
                    spark = SparkProvider(settings)
                    with sampler.phase("spark session start") as phase:
                        spark.get()
                    report["spark_session_start"] = phase.as_dict() | {"seconds": spark.started_in_s or phase.seconds}
                for bronze, labs, runs in sizes:
                    for attempt in range(args.repeat):
                        prefix = f"{human_rows(bronze.rows)}: {engine}"
                        again = f" (run {attempt + 1}/{args.repeat})" if args.repeat > 1 else ""
                        say = stage.framed(f"{prefix} ", again)
                        run = run_engine(engine, labs[engine], bronze, sampler, spark, say, args.duckdb_threads)
                        runs.setdefault(engine, []).append(run)
        finally:
            if spark is not None:
                spark.close()
        report["sizes"] = []
        for bronze, labs, runs in sizes:
            stage(f"{human_rows(bronze.rows)}: comparing the engines' outputs")
            report["sizes"].append(size_entry(bronze, labs, runs))
            for engine in engines:
                vacuum(labs[engine], [table for step in SQL_STEPS for table in step.outputs])
    return finish(report, args.results_dir, print_report)


def size_entry(bronze: Bronze, labs: dict[str, Settings], runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One size's figures: the median run per engine, every run, and the engines' agreement."""
    median = {engine: median_run(found, key=lambda run: run["seconds"]) for engine, found in runs.items()}
    entry: dict[str, Any] = {
        "rows": bronze.rows,
        "seed": bronze.seed,
        "bronze_versions": bronze.pinned,
        "bronze_landed_in_this_run": bronze.landed_now,
        "buckets": {"bronze": labs["spark"].lake.raw_bucket}
        | {engine: labs[engine].lake.curated_bucket for engine in ("spark", "duckdb")},
        "runs": median,
        "all_runs": runs,
        "check": [],
    }
    if "spark" in runs and "duckdb" in runs:
        spark, duck = runs["spark"][-1], runs["duckdb"][-1]
        lakes = (lakehouse(labs["spark"]), lakehouse(labs["duckdb"]))
        entry["check"] = check_engines(*lakes, spark["output_versions"], duck["output_versions"])
        entry["spark_vs_duckdb"] = {
            "end_to_end": round(median["spark"]["seconds"] / median["duckdb"]["seconds"], 3),
            "compute_only": round(median["spark"]["compute_s"] / median["duckdb"]["compute_s"], 3),
        }
    return entry


if __name__ == "__main__":
    sys.exit(main())
