"""Benchmark: three analyst queries over gold and silver on `mdslab sql` (DuckDB over the Delta snapshots),
on the same SQL on Spark on Ray (`mdslab sql --engine spark`), and on DuckDB over a local Parquet copy of
the same snapshots (the physical ceiling), at 1M and 5M transactions in one run; a fourth engine reads the
local copy through Arrow as `mdslab sql` does, to show where the time goes. What each figure means:
bench/README.md.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from _harness import (
    Stage,
    console,
    drop_lab,
    finish,
    header,
    human_rows,
    note,
    parser,
    progress,
    table,
    title,
    verdict,
)
from _sql_lake import TRAVEL_TABLE as TRAVEL
from _sql_lake import BenchLake, LocalCopy, continuation_rows, copy_snapshots, prepare, run_local
from _sql_queries import QUERIES, Query, same_answer

from mdslab.lakehouse.sql import ResolvedQuery, duckdb_quote, resolve, run_duckdb
from mdslab.settings import load_settings
from mdslab.workloads.bootstrap import ensure_platform
from mdslab.workloads.pipeline.step_runtime import SparkProvider
from mdslab.workloads.sql_on_spark import run_spark_sql

PACKAGES = ("duckdb", "deltalake", "pyarrow", "pyspark", "raydp", "ray")
ENGINES = {
    "mdslab": "mdslab sql (DuckDB over Delta)",
    "spark": "Spark on Ray",
    "arrow": "DuckDB over Arrow, local files",
    "parquet": "DuckDB, local Parquet",
}
LOCAL = ("arrow", "parquet")  # the engines that read the local copy
CEILING = "parquet"
TARGET = 1.5  # mdslab sql within 1.5x of the local Parquet ceiling
LIMIT = 1_000_000  # far above any answer here: the queries aggregate or take the top 25
TIMEOUT_S = 3_600.0
METHOD = {
    "rows": "transactions of the first build; a continuation of 1% more is built incrementally after it",
    "mdslab": "mdslab.lakehouse.sql.run_duckdb: resolves the names (Delta logs, publications), registers each "
    "snapshot's delta-rs Arrow dataset, runs the query; a new DuckDB connection per query",
    "spark": "mdslab.workloads.sql_on_spark.run_spark_sql on the run's one Spark session (its start excluded)",
    "arrow": "the resolved text on DuckDB over the local copy as pyarrow datasets: the Arrow path of mdslab without "
    "the object store and the Delta log (where the time goes)",
    "parquet": "the resolved text on DuckDB's Parquet reader over a local copy of the snapshots' files (copy excluded)",
    "timing": "wall seconds per query; one untimed warm-up run per query and engine, then --repeat runs "
    "(--spark-repeat on Spark), interleaved engine by engine; median and p95 of those",
    "resolve": "mdslab only: seconds of resolve() alone (looking the tables up), median of --repeat",
}


def parse_args(argv: list[str] | None) -> Any:
    found = parser("sql.py", __doc__)
    found.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000], metavar="N", help="Transaction "
                       "counts to run, in this order (default: 1000000 5000000).")  # fmt: skip
    found.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES), help="Engines to time "
                       "(default all four; ratios need parquet). The lake is built on Spark either way.")  # fmt: skip
    found.add_argument("--repeat", type=int, default=5, help="Timed runs per query on DuckDB, each (default 5).")
    found.add_argument("--spark-repeat", type=int, default=3, help="Timed runs per query on Spark (default 3).")
    found.add_argument("--keep-lakes", action="store_true", help="Keep each size's lake; a later run with the same "
                       "size and seed then queries it without building again.")  # fmt: skip
    args = found.parse_args(argv)
    if min(args.repeat, args.spark_repeat) < 1 or any(rows < 1_000 for rows in args.rows):
        found.error("--repeat and --spark-repeat must be >= 1 and every --rows >= 1000")
    return args


class Engines:
    """Runs a query text on one engine and returns its rows."""

    def __init__(self, bench: BenchLake, spark: SparkProvider, copies: dict[str, LocalCopy]) -> None:
        self.bench, self.spark, self.copies = bench, spark, copies

    def run(self, engine: str, text: str, resolved: ResolvedQuery) -> pa.Table:
        """``text`` as the user typed it (mdslab, Spark); the local copies run the text resolved up front."""
        if engine == "mdslab":
            return run_duckdb(self.bench.lake, text, limit=LIMIT, timeout_s=TIMEOUT_S).rows
        if engine == "spark":
            return run_spark_sql(self.spark.get(), self.bench.lake, text, limit=LIMIT, timeout_s=TIMEOUT_S).rows
        copies = {ref.view: self.copies[ref.view] for ref in resolved.tables}
        return run_local(copies, resolved.text, LIMIT, arrow=engine == "arrow")


def run_size(
    bench: BenchLake, rows: int, spark: SparkProvider, engines: list[str], args: Any, stage: Stage
) -> dict[str, Any]:
    """Every query on every engine: a warm-up run each, then the timed rounds, then the answers compared."""
    label = human_rows(rows)
    texts = {query.name: query.text(bench.previous) for query in QUERIES}
    resolved = {name: resolve(bench.lake, text, duckdb_quote) for name, text in texts.items()}
    first: dict[str, dict[str, float]] = {query.name: {} for query in QUERIES}
    seconds: dict[str, dict[str, list[float]]] = {query.name: {engine: [] for engine in engines} for query in QUERIES}
    answers: dict[str, dict[str, pa.Table]] = {query.name: {} for query in QUERIES}
    repeats = {engine: args.spark_repeat if engine == "spark" else args.repeat for engine in engines}
    copy: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-sql-") as scratch:
        copies: dict[str, LocalCopy] = {}
        if set(LOCAL) & set(engines):
            refs = list(dict.fromkeys(ref for found in resolved.values() for ref in found.tables))
            stage(f"{label}: copying {len(refs)} snapshots to local Parquet")
            started = time.perf_counter()
            copies = copy_snapshots(bench.settings, bench.lake, refs, Path(scratch))
            copy = {"seconds": round(time.perf_counter() - started, 3), "snapshots": [ref.view for ref in refs]}
        runner = Engines(bench, spark, copies)
        for round_number in range(max(repeats.values()) + 1):  # round 0 warms up, untimed
            for query in QUERIES:
                for engine in (engine for engine in engines if round_number <= repeats[engine]):
                    what = f"run {round_number}/{repeats[engine]}" if round_number else "warm-up"
                    stage(f"{label}: {query.name} on {ENGINES[engine]} ({what})")
                    started = time.perf_counter()
                    found = runner.run(engine, texts[query.name], resolved[query.name])
                    took = time.perf_counter() - started
                    if round_number:
                        seconds[query.name][engine].append(took)
                    else:
                        first[query.name][engine], answers[query.name][engine] = took, found
    figures: dict[str, Any] = {}
    for query in QUERIES:
        figures[query.name] = {"sql": texts[query.name].strip()}
        figures[query.name] |= summarise(query, first[query.name], seconds[query.name], answers[query.name])
        if "mdslab" in engines:
            figures[query.name]["mdslab"]["resolve_s"] = resolve_seconds(bench, texts[query.name], args.repeat)
    return {"queries": figures, "local_copy": copy}


def summarise(
    query: Query, first: dict[str, float], seconds: dict[str, list[float]], answers: dict[str, pa.Table]
) -> dict[str, Any]:
    """Per engine: the warm-up and every timed run, median and p95, the answer's rows, the ratio to the
    ceiling and whether the answer is the ceiling's."""
    out: dict[str, Any] = {}
    for engine, runs in seconds.items():
        p50, p95 = np.percentile(runs, [50, 95])
        out[engine] = {
            "first_s": round(first[engine], 3),
            "runs_s": [round(x, 3) for x in runs],
            "median_s": round(float(p50), 3),
            "p95_s": round(float(p95), 3),
            "rows": answers[engine].num_rows,
        }
    if CEILING in out:
        ceiling = out[CEILING]["median_s"]
        for engine, figures in out.items():
            figures["vs_parquet"] = round(figures["median_s"] / ceiling, 3) if ceiling else None
            if engine != CEILING:
                figures["answer"] = same_answer(query, answers[CEILING], answers[engine])
    return out


def resolve_seconds(bench: BenchLake, text: str, repeat: int) -> float:
    """Median seconds of looking the query's tables up (Delta logs and publications), alone."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        resolve(bench.lake, text, duckdb_quote)
        runs.append(time.perf_counter() - started)
    return round(float(np.median(runs)), 3)


def print_report(report: dict[str, Any]) -> None:
    compute = report["spark_settings"]
    title(
        "[bold]SQL benchmark[/]: three analyst queries on mdslab sql, Spark on Ray and DuckDB over a local "
        "Parquet copy of the same snapshots; rows = transactions",
        report,
        f"Spark: {compute['spark_executors']} executor x {compute['spark_executor_cores']} cores, "
        f"{compute['spark_executor_memory']} executor memory; session start "
        f"{report.get('spark_session_start_s', 0):.1f} s (excluded) | DuckDB: all cores",
    )
    rows: list[list[str] | None] = []
    for size in report["sizes"]:
        label = human_rows(size["rows"])
        for name, query in size["queries"].items():
            for engine in (engine for engine in ENGINES if engine in query):
                run = query[engine]
                answer = run.get("answer")
                met = run["vs_parquet"] <= TARGET if engine == "mdslab" and "vs_parquet" in run else None
                rows.append(
                    [label, name, ENGINES[engine]]
                    + [f"{run[key]:.3f}" for key in ("first_s", "median_s", "p95_s")]
                    + [f"{run['vs_parquet']:.2f}x" if "vs_parquet" in run else "-", f"{run['rows']:,}"]
                    + ["-" if answer is None else "same" if answer["agree"] else "[red]DIFFERS[/]", verdict(met)]
                )
                label, name = "", ""
            rows.append(None)
    columns = ("rows", "query", "engine", "first s", "median s", "p95 s", "vs Parquet", "answer rows", "answer")
    table(None, (*columns, f"<= {TARGET}x"), rows, left=3)
    for size in report["sizes"]:
        builds = ", ".join(f"{label} {seconds:.1f} s" for label, seconds in size["builds_s"].items())
        copy = size["local_copy"]
        console.print(
            f"{human_rows(size['rows'])}: lake {size['lake']} ({builds or 'kept from an earlier run'}); "
            f"{TRAVEL} read at v{size['previous_version']}"
            + (f"; local copy of {len(copy['snapshots'])} snapshots {copy['seconds']:.1f} s" if copy else "")
            + "; mdslab resolve s: "
            + ", ".join(f"{n} {q['mdslab']['resolve_s']:.3f}" for n, q in size["queries"].items() if "mdslab" in q),
            highlight=False,
        )
    note(
        "How to read it: bench/README.md, `bench/sql.py`. first = the untimed warm-up run; answer = the same rows "
        "as the local Parquet run (sums of doubles may differ by one rounding step)."
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    report = header("sql", PACKAGES, argv)
    engines = [engine for engine in ENGINES if engine in args.engines]
    report |= {"method": METHOD, "target": f"mdslab within {TARGET}x of the local Parquet ceiling", "sizes": []}
    with progress() as stage:
        settings = ensure_platform(load_settings(), on_step=stage.say).settings
        report["spark_settings"] = settings.compute.model_dump(mode="json")
        spark = SparkProvider(settings)  # started here to time it apart, or by a build when needed
        try:
            if "spark" in engines:
                stage("starting Spark on Ray (RayDP)")
                started = time.perf_counter()
                spark.get()
                report["spark_session_start_s"] = round(time.perf_counter() - started, 3)
            for rows in args.rows:
                bench = prepare(settings, rows, args.seed, spark, stage.framed(f"{human_rows(rows)}: ", ""))
                try:
                    size = run_size(bench, rows, spark, engines, args, stage)
                finally:
                    kept = args.keep_lakes
                    problems = [] if kept else drop_lab(bench.settings)
                for problem in problems:
                    console.print(f"could not clean up: {problem}", highlight=False)
                tag = bench.settings.lake.raw_bucket.removesuffix("-raw")
                report["sizes"].append(
                    {
                        "rows": rows,
                        "continuation_rows": continuation_rows(rows),
                        "lake": tag if kept else f"{tag} (deleted; --keep-lakes keeps it)",
                        "builds_s": bench.builds_s,
                        "previous_version": bench.previous,
                        **size,
                    }
                )
        finally:
            spark.close()
    return finish(report, args.results_dir, print_report)


if __name__ == "__main__":
    sys.exit(main())
