"""Benchmark: fraud feature build + model training on Spark on Ray against single-process pandas.

For each size, one simulated batch is landed in bronze (the same buckets and database as
bench/pipeline.py, so a batch landed by either script is reused). Then, in the same run:

* Spark on Ray (the platform's path): the pipeline steps silver_transactions and gold_fraud_features
  build gold.fraud_features lake -> Spark -> lake (into this script's own curated bucket), the labelled
  rows are read back through Spark into pandas (mdslab.ml.features.load_frame), and the LightGBM
  pipeline (mdslab.ml.models.gradient_boosting) is fitted on the earlier 80% of event times and scored
  on the latest 20%, as mdslab.ml.train.holdout_scores does (no MLflow logging). Spark's session start
  is measured once and left out of every figure.
* pandas (the baseline): a separate Python process (pandas + NumPy, no DuckDB, no Spark) reads
  silver.transactions (the version Spark just built) and bronze.fraud_labels from the same lake,
  computes the same point-in-time features as gold_fraud_features, and trains the same model on the
  same time split. Its features are then checked against gold.fraud_features value by value.

Run ``python bench/train.py --help`` for the options. Results: a table on the console and JSON in
bench/results/. Benchmarks are not tests: nothing here fails on a slow figure.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _feature_check import EXACT_REL, TOLERANCE_ABS, TOLERANCE_REL
from _measure import TreeSampler, bench_progress, load_average, machine, package_versions
from _train_lake import SizeRun, land_size, vacuum_outputs
from _train_measure import settle
from _train_paths import baseline_worker, run_baseline, run_platform
from _train_report import console, print_report, ratios

from mdslab.ml.models import LGBM_PARAMS
from mdslab.settings import load_settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = ("pyspark", "raydp", "ray", "deltalake", "pyarrow", "pandas", "numpy", "lightgbm", "scikit-learn")


# --- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/train.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[1_000_000],
        metavar="N",
        help="Bronze transaction counts to run, in this order (default: 1000000).",
    )
    parser.add_argument("--seed", type=int, default=42, help="Simulation seed (default 42).")
    parser.add_argument(
        "--paths",
        nargs="+",
        choices=["spark", "pandas"],
        default=["spark", "pandas"],
        help="What to run (default both; ratios need both). pandas alone reuses the silver and gold an "
        "earlier Spark run left in this script's bucket.",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="LightGBM threads on both paths (default 2, as `mdslab ml train`)."
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Runs per path and size; the run with the median total is reported, all go to the JSON (default 1).",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=f"Where the JSON goes ({RESULTS_DIR}).")
    parser.add_argument("--baseline-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if any(rows < 1_000 for rows in args.rows) or args.threads < 1 or args.repeat < 1:
        parser.error("every --rows must be >= 1000, --threads and --repeat >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.baseline_worker is not None:
        return baseline_worker(args.baseline_worker)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from mdslab.workloads.bootstrap import ensure_platform
    from mdslab.workloads.pipeline.step_runtime import SparkProvider

    settings = load_settings()
    started_at = datetime.now(UTC)
    report: dict[str, Any] = {
        "benchmark": "train",
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "versions": package_versions(*PACKAGES),
        "spark_settings": settings.compute.model_dump(mode="json"),
        "lightgbm_threads": args.threads,
        "lightgbm_params": LGBM_PARAMS,
        "method": {
            "rows": "bronze transaction events per size (labels come with them)",
            "spark_feature_build": "pipeline steps silver_transactions + gold_fraud_features, lake -> Spark -> lake",
            "spark_frame_load": "mdslab.ml.features.load_frame: labelled gold rows through Spark into pandas",
            "pandas_feature_build": "silver.transactions + bronze.fraud_labels via delta-rs into pandas, "
            "the gold features in pandas/NumPy, in a separate process",
            "training": "time split (latest 20% of event times validates), LightGBM pipeline fit + validation "
            "scores, same code both sides; no MLflow",
            "memory": "PSS and RSS summed over the measured process tree, sampled every 0.5 s",
            "feature_check": f"every checked column per event_id; exact = floats to {EXACT_REL} relative; "
            f"tolerance = |diff| <= {TOLERANCE_ABS} or {TOLERANCE_REL:.1%} of the value",
        },
    }
    progress = bench_progress(console)
    spark_on, pandas_on = "spark" in args.paths, "pandas" in args.paths
    units = 1 + len(args.rows) * (1 + args.repeat * (4 * spark_on + pandas_on)) + spark_on
    sizes: list[SizeRun] = []
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
            say(f"{rows:,} rows: simulating and landing bronze (skipped when landed earlier)")
            sizes.append(land_size(settings, rows, args.seed))
            progress.advance(task)
        if spark_on:
            provider = SparkProvider(settings)
            try:
                say("starting Spark on Ray (RayDP)")
                with sampler.phase("spark session start") as phase:
                    provider.get()
                report["spark_session_start"] = phase.as_dict()
                report["spark_session_start"]["seconds"] = provider.started_in_s or phase.seconds
                progress.advance(task)
                for size in sizes:
                    for attempt in range(args.repeat):
                        again = f" (run {attempt + 1}/{args.repeat})" if args.repeat > 1 else ""
                        run_platform(size, provider, sampler, args.threads, announce, again)
            finally:
                say("stopping Spark and Ray")
                provider.close()  # the baseline runs without an idle Ray cluster beside it
                report["spark_teardown_s"] = round(settle(), 1)
        for size in sizes:
            for attempt in range(args.repeat if pandas_on else 0):
                again = f" (run {attempt + 1}/{args.repeat})" if args.repeat > 1 else ""
                run_baseline(size, args.threads, functools.partial(_say_again, say, again), check=attempt == 0)
                progress.advance(task)
            vacuum_outputs(size)
    report["load_average_at_end"] = [round(x, 2) for x in load_average()]
    report["sizes"] = []
    for size in sizes:
        entry: dict[str, Any] = {
            "rows": size.rows,
            "seed": size.seed,
            "bronze_versions": size.bronze,
            "bronze_landed_in_this_run": size.landed_now,
            "buckets": {"bronze": size.settings.lake.raw_bucket, "curated": size.settings.lake.curated_bucket},
            "silver_version": size.silver_version,
            "gold_version": size.gold_version,
            "platform": size.platform,
            "baseline": size.baseline,
            "all_runs": {"spark": size.platform_runs, "pandas": size.baseline_runs},
            "feature_check": next(
                (run.pop("feature_check") for run in size.baseline_runs if "feature_check" in run), None
            ),
        }
        if size.platform and size.baseline:
            entry["ratios"] = ratios(size.platform, size.baseline)
        report["sizes"].append(entry)
    print_report(report)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"train-{started_at:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"JSON: {out}", style="dim", highlight=False)
    return 0


def _say_again(say: Callable[[str], None], again: str, text: str) -> None:
    say(text + again)


if __name__ == "__main__":
    sys.exit(main())
