"""Benchmark: fraud feature build + model training on Spark on Ray (the platform's path: pipeline steps,
load_frame, LightGBM) against the same features and model in one pandas process, from the same bronze as
bench/pipeline.py. What each figure means: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import console, finish, header, human_rows, median_run, note, parser, progress, ratio, table, title
from _measure import TreeSampler, settle
from _pandas_baseline import (
    CHECKED_COLUMNS,
    EXACT_REL,
    TOLERANCE_ABS,
    TOLERANCE_REL,
    baseline_worker,
    fit_holdout,
    path_figures,
)

from mdslab.ml.features import FRAUD
from mdslab.ml.models import LGBM_PARAMS
from mdslab.settings import Settings, load_settings
from mdslab.workloads.lake import lakehouse

Size = dict[str, Any]  # one size's results, as they go to JSON
Say = Callable[[str], None]
PACKAGES = ("pyspark", "raydp", "ray", "deltalake", "pyarrow", "pandas", "numpy", "lightgbm", "scikit-learn")
FEATURE_STEPS = ("silver_transactions", "gold_fraud_features")
OUTPUT_TABLES = ["silver.transactions", "silver.quarantine_transactions", "gold.fraud_features"]
METHOD = {
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
}


def run_platform(size: Size, settings: Settings, spark: Any, sampler: TreeSampler, threads: int, say: Say) -> None:
    """silver_transactions + gold_fraud_features on Spark from the pinned bronze, the frame through Spark,
    then the model."""
    from _bronze import pinned

    from mdslab.ml.features import load_frame
    from mdslab.workloads.pipeline.step_runtime import PipelineContext, run_step
    from mdslab.workloads.pipeline.steps import STEPS

    lake = lakehouse(settings)
    ctx = PipelineContext(settings, lake, spark)
    steps = {step.name: step for step in STEPS}
    figures: list[dict[str, Any]] = []
    with sampler.phase(f"spark features {size['rows']}") as build:
        for name in FEATURE_STEPS:
            say(f"Spark on Ray {name}")
            result = run_step(ctx, pinned(steps[name], size["bronze_versions"]), force=True)
            timings = {f"{key}_s": round(value, 3) for key, value in result.phases.items()}
            figures.append({"step": name, "seconds": round(result.seconds, 3), **timings})
            figures[-1] |= {"inputs": result.inputs, "outputs": result.outputs, "rows_out": result.rows_out}
    size["silver_version"] = figures[0]["outputs"]["silver.transactions"]
    size["gold_version"] = figures[1]["outputs"]["gold.fraud_features"]
    say("Spark on Ray: gold.fraud_features -> pandas (load_frame)")
    with sampler.phase(f"spark frame {size['rows']}") as load:
        data = load_frame(lake, spark, FRAUD, version=size["gold_version"])
    say("Spark on Ray: training LightGBM")
    with sampler.phase(f"spark training {size['rows']}") as training:
        metrics = fit_holdout(data, threads)
    phases = {"feature_build": build, "frame_load": load, "training": training}
    run = path_figures(phases, feature_build=("feature_build",), frame_load=("frame_load",), training=("training",))
    run = {"engine": "spark", **run, "steps": figures, "metrics": metrics, "frame_rows": len(data.frame)}
    size["all_runs"]["spark"].append(run | {key: size[key] for key in ("silver_version", "gold_version")})


def run_baseline(size: Size, settings: Settings, threads: int, say: Say, *, check: bool) -> None:
    """The pandas baseline in a child process (``--baseline-worker``); ``check``: compare with gold."""
    if size["gold_version"] is None:  # no platform run now: the gold an earlier run built, and its inputs
        lake = lakehouse(settings)
        if (gold := lake.version("gold.fraud_features")) is None:
            raise RuntimeError(f"no gold.fraud_features in {settings.lake.curated_bucket}: run the platform path")
        inputs = lake.commit_metadata("gold.fraud_features", version=gold)["inputs"]
        size["gold_version"], size["silver_version"] = gold, int(inputs["silver.transactions"])
        if int(inputs["bronze.fraud_labels"]) != size["bronze_versions"]["bronze.fraud_labels"]:
            raise RuntimeError("gold.fraud_features was built from other fraud labels than the pinned ones")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        job, out, log = (Path(scratch) / name for name in ("job.json", "out.json", "stderr.log"))
        job_fields = {key: size[key] for key in ("rows", "seed", "silver_version")}
        job_fields |= {"labels_version": size["bronze_versions"]["bronze.fraud_labels"], "threads": threads}
        job.write_text(
            json.dumps(job_fields | {"gold_version": size["gold_version"] if check else None, "out": str(out)})
        )
        with log.open("w") as errors:
            command = [sys.executable, str(Path(__file__).resolve()), "--baseline-worker", str(job)]
            child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
            assert child.stdout is not None
            for line in child.stdout:
                say(line.strip())
            code = child.wait()
        if code != 0:
            tail = "\n".join(log.read_text().splitlines()[-30:])
            raise RuntimeError(f"the pandas baseline failed (exit {code}):\n{tail}")
        size["all_runs"]["pandas"].append(json.loads(out.read_text()))


def ratios(platform: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    keys = {"feature_build": "feature_build_s", "training": "training_s", "total": "total_s"}
    keys |= {"peak_pss": "peak_pss_gib", "peak_rss": "peak_rss_gib"}
    found = {name: round(platform[key] / baseline[key], 3) if baseline[key] else None for name, key in keys.items()}
    spark_from_silver = platform["steps"][1]["seconds"] + platform["frame_load_s"]
    pandas_from_silver = baseline["feature_build_s"]
    found["features_from_silver"] = round(spark_from_silver / pandas_from_silver, 3) if pandas_from_silver else None
    return found


def print_report(report: dict[str, Any]) -> None:
    compute, session = report["spark_settings"], report.get("spark_session_start")
    title(
        "[bold]Training benchmark[/]: fraud features + LightGBM, Spark on Ray (the platform) against one pandas "
        "process; rows = bronze transactions",
        report,
        f"Spark: {compute['spark_executors']} executor x {compute['spark_executor_cores']} cores, "
        f"{compute['spark_executor_memory']} executor / {compute['spark_driver_memory']} driver memory, "
        f"{compute['spark_shuffle_partitions']} shuffle partitions | LightGBM: {report['lightgbm_threads']} threads, "
        f"{LGBM_PARAMS['n_estimators']} trees",
    )
    if session:
        console.print(
            f"Spark session start (Ray + RayDP, once, excluded below): {session['seconds']:.1f} s, peak PSS "
            f"{session['peak_pss_gib']:.2f} GiB; Spark and Ray stopped and quiet "
            f"{report.get('spark_teardown_s', 0):.1f} s before the pandas runs",
            highlight=False,
        )
    rows: list[list[str] | None] = []
    keys = ("feature_build_s", "frame_load_s", "training_s", "total_s", "peak_pss_gib", "peak_rss_gib", "cpu_s")
    for size in report["sizes"]:
        label, spark, pandas_run = human_rows(size["rows"]), size.get("platform"), size.get("baseline")
        for name, run in (("Spark on Ray", spark), ("pandas, 1 process", pandas_run)):
            if run is None:
                continue
            seconds = [f"{run[key]:.1f}" if run[key] or key != "frame_load_s" else "-" for key in keys[:4]]
            memory = [f"{run['peak_pss_gib']:.2f}", f"{run['peak_rss_gib']:.2f}", f"{run['cpu_s']:.0f}"]
            others = f"{run['others_cpu_s']:.0f} ({run['others_cores']:.2f})"
            metrics = [f"{run['metrics']['roc_auc']:.4f}", f"{run['metrics']['pr_auc']:.4f}"]
            rows.append([label, name, *seconds, *memory, others, *metrics])
            label = ""
        if spark and pandas_run:
            cells = [ratio(spark[key], pandas_run[key]) for key in keys]
            cells[1], cells[3] = "-", f"[bold]{cells[3]}[/]"
            rows.append(["", "[bold]Spark / pandas[/]", *cells, "", "", ""])
        rows.append(None)
    columns = ["rows", "path", "feature build s", "frame load s", "training s", "total s", "peak PSS GiB"]
    columns += ["peak RSS GiB", "CPU s", "others' CPU s (cores)", "ROC AUC", "PR AUC"]
    table(None, columns, rows, left=2)
    for size in report["sizes"]:
        print_details(size)
    note("How to read it: bench/README.md, `bench/train.py`. others' CPU s = the rest of the machine meanwhile.")


def print_details(size: dict[str, Any]) -> None:
    label, spark, pandas_run = human_rows(size["rows"]), size.get("platform"), size.get("baseline")
    parts = []
    if spark:
        parts.append("Spark feature build = " + " + ".join(f"{s['step']} {s['seconds']:.1f} s" for s in spark["steps"]))
    if pandas_run:
        phases = pandas_run["phases"]
        read, features = phases["read"]["seconds"], phases["features"]["seconds"]
        parts.append(f"pandas feature build = read {read:.1f} s + features {features:.1f} s")
    if spark and pandas_run:
        parts.append(f"features from silver: Spark / pandas {size['ratios']['features_from_silver']:.2f}x")
    if run := spark or pandas_run:
        metrics = run["metrics"]
        parts.append(
            f"train {metrics['train_rows']:,} rows, validate {metrics['validation_rows']:,} "
            f"({metrics['validation_positives']:,} fraud)"
        )
    console.print(f"{label}: " + "; ".join(parts), highlight=False)
    if not (check := size.get("feature_check")):
        return
    within = check["rows_all_within_tolerance_share"]
    one_sided = check["rows_only_in_gold"] + check["rows_only_in_pandas"]
    verdict = "[green]agree[/]" if within == 1.0 and not one_sided else "[red]DIFFER[/]"
    detail = ", ".join(
        f"{name} {c['exact_share']:.2%} exact ({c['one_step_rounding_flips']:,} one-step rounding flips), "
        f"{c['within_tolerance_share']:.2%} within"
        for name, c in check["columns"].items()
        if c["exact_share"] != 1.0
    )
    console.print(
        f"{label} features: pandas vs gold.fraud_features@{check['gold_version']} {verdict}: "
        f"{check['rows_compared']:,} rows matched on event_id ({check['rows_only_in_gold']} only in gold, "
        f"{check['rows_only_in_pandas']} only in pandas); rows with all {len(CHECKED_COLUMNS)} columns "
        f"({len(FRAUD.features)} features + label) exact {check['rows_all_exact_share']:.4%}, within tolerance "
        f"{within:.4%} ({check['tolerance']}); values within tolerance {check['values_within_tolerance_share']:.4%}"
        + (f"; not all exact: {detail}" if detail else "; every value exact"),
        highlight=False,
    )
    for name, c in check["columns"].items():
        if c["outside_tolerance"]:
            console.print(f"  {name}: {c['outside_tolerance']:,} outside, e.g. {c['examples']}", highlight=False)


def parse_args(argv: list[str] | None) -> Any:
    found = parser("train.py", __doc__)
    found.add_argument("--rows", type=int, nargs="+", default=[1_000_000], metavar="N", help="Bronze transaction "
                       "counts to run, in this order (default: 1000000).")  # fmt: skip
    found.add_argument("--paths", nargs="+", choices=["spark", "pandas"], default=["spark", "pandas"], help="What to "
                       "run (default both; ratios need both). pandas alone reuses the silver and gold an earlier "
                       "Spark run left in this script's bucket.")  # fmt: skip
    found.add_argument("--threads", type=int, default=2, help="LightGBM threads on both paths (default 2, as "
                       "`mdslab ml train`).")  # fmt: skip
    found.add_argument("--repeat", type=int, default=1, help="Runs per path and size; the run with the median "
                       "total is reported, all go to the JSON (default 1).")  # fmt: skip
    found.add_argument("--baseline-worker", type=Path, help=argparse.SUPPRESS)
    args = found.parse_args(argv)
    if any(rows < 1_000 for rows in args.rows) or args.threads < 1 or args.repeat < 1:
        found.error("every --rows must be >= 1000, --threads and --repeat >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.baseline_worker is not None:
        return baseline_worker(args.baseline_worker)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from _bronze import land, size_lab, vacuum

    from mdslab.workloads.bootstrap import ensure_platform
    from mdslab.workloads.pipeline.step_runtime import SparkProvider

    report = header("train", PACKAGES, argv)
    sizes: list[tuple[Size, Settings]] = []
    with progress() as stage, TreeSampler() as sampler:
        settings = ensure_platform(load_settings(), on_step=stage.say).settings
        report |= {"spark_settings": settings.compute.model_dump(mode="json"), "lightgbm_threads": args.threads}
        report |= {"lightgbm_params": LGBM_PARAMS, "method": METHOD}
        for rows in args.rows:
            stage(f"{rows:,} rows: simulating and landing bronze (skipped when landed earlier)")
            lab = size_lab(settings, rows, args.seed, "train")
            bronze = land(lab, rows, args.seed)
            buckets = {"bronze": lab.lake.raw_bucket, "curated": lab.lake.curated_bucket}
            size = {"rows": rows, "seed": args.seed, "bronze_versions": bronze.pinned, "buckets": buckets}
            size |= {"bronze_landed_in_this_run": bronze.landed_now, "silver_version": None, "gold_version": None}
            sizes.append((size | {"all_runs": {"spark": [], "pandas": []}}, lab))
        repeats = [f" (run {n + 1}/{args.repeat})" if args.repeat > 1 else "" for n in range(args.repeat)]
        if "spark" in args.paths:
            spark = SparkProvider(settings)
            try:
                stage("starting Spark on Ray (RayDP)")
                with sampler.phase("spark session start") as phase:
                    spark.get()
                report["spark_session_start"] = phase.as_dict() | {"seconds": spark.started_in_s or phase.seconds}
                for size, lab in sizes:
                    for again in repeats:
                        say = stage.framed(f"{human_rows(size['rows'])}: ", again)
                        run_platform(size, lab, spark, sampler, args.threads, say)
            finally:
                stage("stopping Spark and Ray")
                spark.close()  # the baseline runs without an idle Ray cluster beside it
                report["spark_teardown_s"] = round(settle(), 1)
        for size, lab in sizes:
            for attempt, again in enumerate(repeats if "pandas" in args.paths else []):
                say = stage.framed(f"{human_rows(size['rows'])}: ", again)
                run_baseline(size, lab, args.threads, say, check=attempt == 0)
            vacuum(lab, OUTPUT_TABLES)
    report["sizes"] = [entry(size) for size, _ in sizes]
    return finish(report, args.results_dir, print_report)


def entry(size: Size) -> Size:
    """A size's results: the median run of each path, every run, the feature check, the ratios."""
    runs = size["all_runs"]
    platform, baseline = (median_run(runs[path], key=lambda run: float(run["total_s"])) for path in ("spark", "pandas"))
    check = next((run.pop("feature_check") for run in runs["pandas"] if "feature_check" in run), None)
    size |= {"platform": platform, "baseline": baseline, "feature_check": check}
    return size | ({"ratios": ratios(platform, baseline)} if platform and baseline else {})


if __name__ == "__main__":
    sys.exit(main())
