"""What bench/train.py prints: the Spark-vs-pandas table per size, the ratios, and the per-size details
(step times, split sizes, the feature check's verdict) from the report that also goes to JSON.
"""

from __future__ import annotations

from typing import Any

from _feature_check import CHECKED_COLUMNS
from rich.console import Console
from rich.table import Table

from mdslab.ml.features import FRAUD
from mdslab.ml.models import LGBM_PARAMS

console = Console()
if not console.is_terminal:
    console = Console(width=170)  # a log file or a pipe: do not squeeze the tables to 80 columns


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value is not None and base else "-"


def ratios(platform: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    def ratio(key: str, base_key: str | None = None) -> float | None:
        base = baseline[base_key or key]
        return round(platform[key] / base, 3) if base else None

    spark_from_silver = platform["steps"][1]["seconds"] + platform["frame_load_s"]
    pandas_from_silver = baseline["feature_build_s"]
    return {
        "feature_build": ratio("feature_build_s"),
        "training": ratio("training_s"),
        "total": ratio("total_s"),
        "peak_pss": ratio("peak_pss_gib"),
        "peak_rss": ratio("peak_rss_gib"),
        "features_from_silver": round(spark_from_silver / pandas_from_silver, 3) if pandas_from_silver else None,
    }


def print_report(report: dict[str, Any]) -> None:
    from pipeline import human_rows

    session = report.get("spark_session_start")
    compute = report["spark_settings"]
    info = report["machine"]
    console.print()
    console.print(
        "[bold]Training benchmark[/]: fraud features + LightGBM, Spark on Ray (the platform) against one "
        "pandas process; rows = bronze transactions",
        highlight=False,
    )
    console.print(
        f"machine: {info['logical_cpus']} logical CPUs, {info['memory_gib']} GiB; load average "
        f"{info['load_average_at_start'][0]} at start, {report['load_average_at_end'][0]} at end | Spark: "
        f"{compute['spark_executors']} executor x {compute['spark_executor_cores']} cores, "
        f"{compute['spark_executor_memory']} executor / {compute['spark_driver_memory']} driver memory, "
        f"{compute['spark_shuffle_partitions']} shuffle partitions | LightGBM: {report['lightgbm_threads']} threads, "
        f"{LGBM_PARAMS['n_estimators']} trees",
        style="dim",
        highlight=False,
    )
    if session:
        console.print(
            f"Spark session start (Ray + RayDP, once, excluded below): {session['seconds']:.1f} s, "
            f"peak PSS {session['peak_pss_gib']:.2f} GiB; Spark and Ray stopped and quiet "
            f"{report.get('spark_teardown_s', 0):.1f} s before the pandas runs",
            highlight=False,
        )
    table = Table(title_justify="left")
    columns = (
        "rows",
        "path",
        "feature build s",
        "frame load s",
        "training s",
        "total s",
        "peak PSS GiB",
        "peak RSS GiB",
        "CPU s",
        "others' CPU s (cores)",
        "ROC AUC",
        "PR AUC",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "path" else "right")
    for size in report["sizes"]:
        label = human_rows(size["rows"])
        spark, pandas_run = size.get("platform"), size.get("baseline")
        for name, run in (("Spark on Ray", spark), ("pandas, 1 process", pandas_run)):
            if run is None:
                continue
            metrics = run["metrics"]
            table.add_row(
                label,
                name,
                f"{run['feature_build_s']:.1f}",
                f"{run['frame_load_s']:.1f}" if run["frame_load_s"] else "-",
                f"{run['training_s']:.1f}",
                f"{run['total_s']:.1f}",
                f"{run['peak_pss_gib']:.2f}",
                f"{run['peak_rss_gib']:.2f}",
                f"{run['cpu_s']:.0f}",
                f"{run['others_cpu_s']:.0f} ({run['others_cores']:.2f})",
                f"{metrics['roc_auc']:.4f}",
                f"{metrics['pr_auc']:.4f}",
            )
            label = ""
        if spark and pandas_run:
            table.add_row(
                "",
                "[bold]Spark / pandas[/]",
                _ratio(spark["feature_build_s"], pandas_run["feature_build_s"]),
                "-",
                _ratio(spark["training_s"], pandas_run["training_s"]),
                f"[bold]{_ratio(spark['total_s'], pandas_run['total_s'])}[/]",
                _ratio(spark["peak_pss_gib"], pandas_run["peak_pss_gib"]),
                _ratio(spark["peak_rss_gib"], pandas_run["peak_rss_gib"]),
                _ratio(spark["cpu_s"], pandas_run["cpu_s"]),
                "",
                "",
                "",
            )
        table.add_section()
    console.print(table)
    for size in report["sizes"]:
        _print_details(size)
    console.print(
        "How to read it: Spark feature build = the pipeline steps silver_transactions (bronze JSON -> "
        "silver, every contract rule) and gold_fraud_features, lake -> Spark -> lake; frame load = "
        "gold.fraud_features' labelled rows through Spark into pandas (load_frame). pandas feature build = "
        "reading the silver.transactions Spark built (needed columns) and bronze.fraud_labels with "
        "delta-rs into pandas, plus the same point-in-time features and label join in pandas/NumPy; it "
        "starts from silver, so 'from silver' compares like for like (gold_fraud_features + frame load vs "
        "pandas' whole feature build). Training = the time split, LightGBM fit and scoring the "
        "validation period, the same code and frame size on both sides; no MLflow. Peak PSS/RSS: Spark = "
        "this process and everything it started (Ray, JVMs, workers), pandas = its one process; neither "
        "counts the embedded S3/PostgreSQL servers. CPU s over the timed phases; others' CPU s = what the "
        "rest of the machine used meanwhile (cores = per second of the path's total): near 0 on a quiet "
        "machine, and where it is not, the figures include waiting for a CPU.",
        style="dim",
        highlight=False,
    )


def _print_details(size: dict[str, Any]) -> None:
    from pipeline import human_rows

    label = human_rows(size["rows"])
    spark, pandas_run = size.get("platform"), size.get("baseline")
    parts = []
    if spark:
        steps = " + ".join(f"{step['step']} {step['seconds']:.1f} s" for step in spark["steps"])
        parts.append(f"Spark feature build = {steps}")
    if pandas_run:
        phases = pandas_run["phases"]
        parts.append(
            f"pandas feature build = read {phases['read']['seconds']:.1f} s + features "
            f"{phases['features']['seconds']:.1f} s"
        )
    if spark and pandas_run:
        parts.append(f"features from silver: Spark / pandas {size['ratios']['features_from_silver']:.2f}x")
    run = spark or pandas_run
    if run:
        metrics = run["metrics"]
        parts.append(
            f"train {metrics['train_rows']:,} rows, validate {metrics['validation_rows']:,} "
            f"({metrics['validation_positives']:,} fraud)"
        )
    console.print(f"{label}: " + "; ".join(parts), highlight=False)
    check = size.get("feature_check")
    if not check:
        return
    within = check["rows_all_within_tolerance_share"]
    one_sided = check["rows_only_in_gold"] + check["rows_only_in_pandas"]
    verdict = "[green]agree[/]" if within == 1.0 and not one_sided else "[red]DIFFER[/]"
    off = {name: c for name, c in check["columns"].items() if c["exact_share"] != 1.0}
    detail = ", ".join(
        f"{name} {c['exact_share']:.2%} exact ({c['one_step_rounding_flips']:,} one-step rounding flips), "
        f"{c['within_tolerance_share']:.2%} within"
        for name, c in off.items()
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
