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
import gc
import json
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
from _measure import Phase, TreeSampler, load_average, machine, snapshot
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sklearn.metrics import average_precision_score, roc_auc_score

from mdslab import database, objectstore
from mdslab.lakehouse import Lakehouse
from mdslab.ml.features import FRAUD, TrainingFrame
from mdslab.ml.models import LGBM_PARAMS, gradient_boosting
from mdslab.settings import LakeSettings, Settings, load_settings
from mdslab.workloads.pipeline.gold_sql import DAY_US, HOUR_US
from mdslab.workloads.pipeline.silver_sql import EARTH_RADIUS_KM
from mdslab.workloads.tables import build_registry

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FEATURE_STEPS = ("silver_transactions", "gold_fraud_features")
OUTPUT_TABLES = ("silver.transactions", "silver.quarantine_transactions", "gold.fraud_features")
SILVER_COLUMNS = [
    "event_id",
    "customer_id",
    "merchant_id",
    "event_time",
    "amount_usd",
    "merchant_category",
    "channel",
    "local_hour",
    "distance_from_home_km",
    "lat",
    "lon",
]
LABEL_COLUMNS = ["event_id", "is_fraud", "fraud_pattern", "reported_at", "ingested_at"]
# The feature check: a value matches exactly (floats to 1e-9 relative) or within the tolerance, which
# takes one step of the coarsest rounding in the SQL (km to 0.001) or 0.1% of the value: a half-step
# tie rounded the other way, or a 30-day mean off by such a flip feeding amount_to_avg_30d.
EXACT_REL = 1e-9
TOLERANCE_ABS = 1.01e-3
TOLERANCE_REL = 1e-3
CHECKED_COLUMNS = [*FRAUD.features, FRAUD.label]
console = Console()
if not console.is_terminal:
    console = Console(width=170)  # a log file or a pipe: do not squeeze the tables to 80 columns


# --- the lake of one size --------------------------------------------------------------------------


def size_settings(base: Settings, rows: int, seed: int, *, create: bool) -> Settings:
    """bench/pipeline.py's bronze (raw bucket and reference database) and this script's curated bucket."""
    tag = f"bench-n{rows}-s{seed}"
    lake = LakeSettings(raw_bucket=f"{tag}-raw", curated_bucket=f"{tag}-train")
    pg = base.postgres.model_copy(update={"database": tag.replace("-", "_")})
    if create:
        objectstore.ensure_buckets(objectstore.s3_client(base.s3), [lake.raw_bucket, lake.curated_bucket])
        database.ensure_database(pg, pg.database)
    return base.model_copy(update={"lake": lake, "postgres": pg})


def open_lake(settings: Settings) -> Lakehouse:
    return Lakehouse.from_settings(settings, build_registry())


# --- the baseline: the gold features in pandas -----------------------------------------------------


def _prefix(values: np.ndarray) -> np.ndarray:
    """Cumulative sums with a leading 0: the sum over rows [lo, hi) is ``p[hi] - p[lo]``."""
    return np.concatenate(([0], np.cumsum(values, dtype=np.int64)))


def _mean_half_up(cents: np.ndarray, count: np.ndarray) -> np.ndarray:
    """round(sum / count, 4) for sums in cents, exactly (integer arithmetic, half up); NaN when empty."""
    safe = np.maximum(count, 1)
    steps = (200 * cents + safe) // (2 * safe)  # round(100 * cents / count) half up = 1e-4 USD steps
    return np.where(count > 0, steps / 1e4, np.nan)


def _haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """The SQL's haversine (workloads/pipeline/silver_sql.py), term for term."""
    a = np.sin(np.radians(lat2 - lat1) / 2) ** 2 + np.cos(np.radians(lat1)) * np.cos(np.radians(lat2)) * (
        np.sin(np.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def fraud_features(tx: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """gold.fraud_features from silver.transactions and bronze.fraud_labels, in pandas and NumPy.

    The SQL (``fraud_features_plan``) windows each customer's rows ordered by event time with
    ``RANGE BETWEEN span PRECEDING AND 1 PRECEDING`` (microseconds): the rows at most ``span`` earlier
    and strictly earlier, never the row itself nor a row at the same instant. Here the rows are sorted
    by (customer, time) once; each window is then a slice [lo, hi) of that order found by binary search,
    counts and sums come from prefix sums, and the distinct merchants from each window's rows.
    """
    n = len(tx)
    customer = pd.factorize(tx["customer_id"])[0].astype(np.int64)
    merchant = pd.factorize(tx["merchant_id"])[0].astype(np.int64)
    micros = tx["event_time"].dt.as_unit("us").astype("int64").to_numpy()
    start = int(micros.min()) if n else 0
    shift = max(int(micros.max() - start).bit_length(), 1) if n else 1
    if n and int(customer.max()).bit_length() + shift > 62:
        raise ValueError("too many customers over too long a period for one 63-bit sort key")
    key = (customer << shift) | (micros - start)  # (customer, time) in one sortable integer
    order = np.argsort(key, kind="stable")
    key, micros, customer, merchant = key[order], micros[order], customer[order], merchant[order]
    rows = tx.iloc[order].reset_index(drop=True)
    amount = rows["amount_usd"].to_numpy(np.float64)
    lat, lon = rows["lat"].to_numpy(np.float64), rows["lon"].to_numpy(np.float64)

    first = np.searchsorted(key, customer << shift, "left")  # the customer's first row
    before = np.searchsorted(key, key, "left")  # rows [first, before) are strictly earlier than this one

    def since(span_us: int) -> np.ndarray:  # first row at most span_us earlier, same customer
        return np.maximum(np.searchsorted(key, key - span_us, "left"), first)

    lo_1h, lo_24h, lo_30d = since(HOUR_US), since(DAY_US), since(30 * DAY_US)
    count_1h, count_24h, count_30d = before - lo_1h, before - lo_24h, before - lo_30d
    small = _prefix((rows["channel"].to_numpy() == "online") & (amount < 5))
    cents = _prefix(np.rint(amount * 100).astype(np.int64))  # amount_usd is rounded to cents in silver
    avg_24h = _mean_half_up(cents[before] - cents[lo_24h], count_24h)
    avg_30d = _mean_half_up(cents[before] - cents[lo_30d], count_30d)

    # The same customer and merchant: the previous such row in this order (-1: none).
    index = np.arange(n)
    pair = customer * (int(merchant.max()) + 1 if n else 1) + merchant
    by_pair = np.argsort(pair, kind="stable")  # within a pair, still in time order
    new_group = np.r_[True, pair[by_pair][1:] != pair[by_pair][:-1]] if n else np.zeros(0, bool)
    previous_same = np.full(n, -1, dtype=np.int64)
    previous_same[by_pair[1:]] = np.where(new_group[1:], -1, by_pair[:-1])
    group_first = by_pair[np.maximum.accumulate(np.where(new_group, np.arange(n), 0))] if n else by_pair
    is_new_merchant = np.empty(n, dtype=bool)
    is_new_merchant[by_pair] = micros[by_pair] == micros[group_first]  # no strictly earlier visit

    # Distinct merchants in [lo_24h, before): the rows whose previous visit to that merchant is older.
    owner = np.repeat(index, count_24h)
    member = lo_24h[owner] + (np.arange(len(owner)) - np.repeat(np.cumsum(count_24h) - count_24h, count_24h))
    distinct_24h = np.bincount(owner[previous_same[member] < lo_24h[owner]], minlength=n)

    has_previous = before > first
    previous = np.maximum(before - 1, 0)
    seconds_since_prev = np.where(has_previous, (micros - micros[previous]) / 1e6, np.nan)
    located = ~np.isnan(lat)
    last_located = np.maximum.accumulate(np.where(located, index, -1))[previous] if n else index
    prev_ok = located & has_previous & (last_located >= first)
    prev = np.where(prev_ok, last_located, 0)
    km = np.where(prev_ok, np.round(_haversine_km(lat, lon, lat[prev], lon[prev]), 3), np.nan)

    features = rows[["event_id", "customer_id", "merchant_id", "event_time", "amount_usd", "merchant_category"]]
    features = features.assign(
        channel=rows["channel"],
        local_hour=rows["local_hour"],
        distance_from_home_km=rows["distance_from_home_km"],
        txn_count_1h=count_1h.astype(np.int64),
        txn_count_24h=count_24h.astype(np.int64),
        small_online_count_1h=(small[before] - small[lo_1h]).astype(np.int64),
        distinct_merchants_24h=distinct_24h.astype(np.int64),
        avg_amount_24h=avg_24h,
        avg_amount_30d=avg_30d,
        amount_to_avg_30d=np.round(amount / avg_30d, 4),
        seconds_since_prev=seconds_since_prev,
        km_from_prev_located=km,
        is_new_merchant=is_new_merchant,
    )
    latest = labels.sort_values(["reported_at", "ingested_at"], ascending=False, kind="stable")
    latest = latest.drop_duplicates("event_id")[["event_id", "is_fraud", "fraud_pattern"]]
    latest = latest.rename(columns={"is_fraud": FRAUD.label, "fraud_pattern": "label_pattern"})
    return features.merge(latest, on="event_id", how="left")


def training_frame(features: pd.DataFrame, version: int) -> TrainingFrame:
    """What ``load_frame`` selects from gold: labelled rows, the model's columns, sorted by time."""
    spec = FRAUD
    labelled = features.loc[features[spec.label].notna(), [spec.key, spec.time_column, spec.label, *spec.features]]
    frame = labelled.sort_values(spec.time_column, kind="stable").reset_index(drop=True)
    frame[spec.label] = frame[spec.label].astype(bool)
    return TrainingFrame(spec, frame, version)


def fit_holdout(data: TrainingFrame, threads: int) -> dict[str, Any]:
    """``mdslab.ml.train.holdout_scores``'s fit (the time split, the LightGBM pipeline), and its scores."""
    spec = data.spec
    train_rows, valid_rows = data.split()
    model = gradient_boosting(spec, threads=threads).fit(train_rows[spec.features], train_rows[spec.label])
    scores = model.predict_proba(valid_rows[spec.features])[:, 1]
    return {
        "y": valid_rows[spec.label].to_numpy(),
        "scores": scores,
        "train_rows": len(train_rows),
        "validation_rows": len(valid_rows),
    }


def holdout_metrics(fit: dict[str, Any]) -> dict[str, Any]:
    y, scores = fit["y"], fit["scores"]
    return {
        "roc_auc": round(float(roc_auc_score(y, scores)), 5),
        "pr_auc": round(float(average_precision_score(y, scores)), 5),
        "train_rows": fit["train_rows"],
        "validation_rows": fit["validation_rows"],
        "validation_positives": int(y.sum()),
    }


def compare_features(mine: pd.DataFrame, gold: pd.DataFrame) -> dict[str, Any]:
    """Share of rows and values of the pandas features equal to gold's (see EXACT_REL, TOLERANCE_*)."""
    joined = gold[["event_id", *CHECKED_COLUMNS]].merge(
        mine[["event_id", *CHECKED_COLUMNS]], on="event_id", how="outer", suffixes=("_gold", "_pandas"), indicator=True
    )
    both = joined["_merge"] == "both"
    result: dict[str, Any] = {
        "rows_gold": len(gold),
        "rows_pandas": len(mine),
        "rows_only_in_gold": int((joined["_merge"] == "left_only").sum()),
        "rows_only_in_pandas": int((joined["_merge"] == "right_only").sum()),
        "tolerance": f"|diff| <= {TOLERANCE_ABS} or <= {TOLERANCE_REL:.1%} of the value",
        "columns": {},
    }
    joined = joined[both]
    all_exact = np.ones(len(joined), dtype=bool)
    all_close = np.ones(len(joined), dtype=bool)
    for column in CHECKED_COLUMNS:
        a, b = joined[f"{column}_gold"], joined[f"{column}_pandas"]
        a_null, b_null = a.isna().to_numpy(), b.isna().to_numpy()
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            x = a.to_numpy(np.float64, na_value=0.0)
            y = b.to_numpy(np.float64, na_value=0.0)
            diff = np.abs(x - y)
            scale = np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))
            exact = (a_null & b_null) | (~a_null & ~b_null & (diff <= EXACT_REL * scale))
            close = exact | (~a_null & ~b_null & ((diff <= TOLERANCE_ABS) | (diff <= TOLERANCE_REL * scale)))
            flips = ~exact & ~a_null & ~b_null & (np.abs(diff - 1e-4) <= EXACT_REL * scale)
            flips |= ~exact & ~a_null & ~b_null & (np.abs(diff - 1e-3) <= EXACT_REL * scale)
        else:
            same = (a.astype(object).to_numpy() == b.astype(object).to_numpy()) & ~a_null & ~b_null
            exact = close = same | (a_null & b_null)
            flips = np.zeros(len(exact), dtype=bool)
        all_exact &= exact
        all_close &= close
        bad = np.flatnonzero(~close)[:3]
        result["columns"][column] = {
            "exact_share": round(float(exact.mean()), 6) if len(exact) else None,
            "within_tolerance_share": round(float(close.mean()), 6) if len(close) else None,
            "one_step_rounding_flips": int(flips.sum()),
            "outside_tolerance": int((~close).sum()),
            "examples": [
                {"event_id": joined["event_id"].iloc[i], "gold": repr(a.iloc[i]), "pandas": repr(b.iloc[i])}
                for i in bad
            ],
        }
    result["rows_compared"] = len(joined)
    result["rows_all_exact_share"] = round(float(all_exact.mean()), 6) if len(joined) else None
    result["rows_all_within_tolerance_share"] = round(float(all_close.mean()), 6) if len(joined) else None
    result["values_within_tolerance_share"] = (
        round(float(np.mean([c["within_tolerance_share"] for c in result["columns"].values()])), 6)
        if len(joined)
        else None
    )
    return result


def baseline_worker(job_path: Path) -> int:
    """The pandas baseline in its own process (run by the parent): its memory is its own."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    job = json.loads(job_path.read_text())
    settings = size_settings(load_settings(), job["rows"], job["seed"], create=False)
    lake = open_lake(settings)

    def say(text: str) -> None:
        print(text, flush=True)

    out: dict[str, Any] = {"engine": "pandas", "silver_version": job["silver_version"]}
    with TreeSampler() as sampler:
        say("pandas: reading silver.transactions and bronze.fraud_labels")
        with measure(sampler, "read") as read:
            tx = lake.read_table("silver.transactions", version=job["silver_version"], columns=SILVER_COLUMNS)
            tx = tx.to_pandas()
            labels = lake.read_table("bronze.fraud_labels", version=job["labels_version"], columns=LABEL_COLUMNS)
            labels = labels.to_pandas()
        say("pandas: computing the point-in-time features")
        with measure(sampler, "features") as compute:
            features = fraud_features(tx, labels)
            data = training_frame(features, job["silver_version"])
        del tx, labels
        say("pandas: training LightGBM")
        with measure(sampler, "training") as training:
            fit = fit_holdout(data, job["threads"])
    phases = {"read": read, "features": compute, "training": training}
    out.update(_path_figures(phases, feature_build=("read", "features"), frame_load=(), training=("training",)))
    out["metrics"] = holdout_metrics(fit)
    out["rows_in"] = len(features)
    del data, fit
    gc.collect()
    if job.get("gold_version") is not None:
        say("pandas: checking the features against gold.fraud_features")
        gold = lake.read_table(
            "gold.fraud_features", version=job["gold_version"], columns=["event_id", *CHECKED_COLUMNS]
        )
        out["feature_check"] = compare_features(features, gold.to_pandas())
        out["feature_check"]["gold_version"] = job["gold_version"]
    Path(job["out"]).write_text(json.dumps(out, default=str))
    return 0


# --- measuring -------------------------------------------------------------------------------------


def _machine_busy_s() -> float:
    """CPU seconds all processes on the machine have used so far (every core; not idle, not I/O wait)."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


@dataclass
class Measured:
    """A phase of the measured process tree, and the CPU the rest of the machine used meanwhile."""

    phase: Phase
    machine_cpu_s: float = 0.0

    @property
    def others_cpu_s(self) -> float:
        return max(0.0, self.machine_cpu_s - self.phase.cpu_s)

    def as_dict(self) -> dict[str, Any]:
        return {**self.phase.as_dict(), "others_cpu_seconds": round(self.others_cpu_s, 2)}


@contextmanager
def measure(sampler: TreeSampler, name: str) -> Iterator[Measured]:
    gc.collect()
    before = _machine_busy_s()
    with sampler.phase(name) as phase:
        measured = Measured(phase)
        yield measured
    measured.machine_cpu_s = _machine_busy_s() - before


def settle(timeout_s: float = 60.0, quiet_cores: float = 0.2) -> float:
    """Wait until this process tree is quiet (Ray and its workers shutting down): seconds waited."""
    started = time.perf_counter()
    last, quiet = snapshot().cpu_s, 0
    while quiet < 3 and time.perf_counter() - started < timeout_s:
        time.sleep(1.0)
        now = snapshot().cpu_s
        quiet = quiet + 1 if now - last < quiet_cores else 0
        last = now
    return time.perf_counter() - started


def _path_figures(
    phases: dict[str, Measured],
    *,
    feature_build: tuple[str, ...],
    frame_load: tuple[str, ...],
    training: tuple[str, ...],
) -> dict[str, Any]:
    def seconds(names: tuple[str, ...]) -> float:
        return sum(phases[name].phase.seconds for name in names)

    measured = [entry.phase for entry in phases.values()]
    total = seconds(feature_build + frame_load + training)
    others = sum(entry.others_cpu_s for entry in phases.values())
    return {
        "feature_build_s": round(seconds(feature_build), 3),
        "frame_load_s": round(seconds(frame_load), 3),
        "training_s": round(seconds(training), 3),
        "total_s": round(total, 3),
        "cpu_s": round(sum(phase.cpu_s for phase in measured), 2),
        "others_cpu_s": round(others, 2),
        "others_cores": round(others / total, 2) if total else 0.0,
        "peak_pss_gib": round(max(phase.peak_pss for phase in measured) / 2**30, 3),
        "peak_rss_gib": round(max(phase.peak_rss for phase in measured) / 2**30, 3),
        "pss_at_start_gib": round(measured[0].start_pss / 2**30, 3),
        "peak_processes": max(phase.peak_processes for phase in measured),
        "phases": {name: entry.as_dict() for name, entry in phases.items()},
    }


# --- the platform path: Spark on Ray ---------------------------------------------------------------


@dataclass
class SizeRun:
    rows: int
    seed: int
    settings: Settings
    bronze: dict[str, int] = field(default_factory=dict)
    landed_now: bool = False
    platform_runs: list[dict[str, Any]] = field(default_factory=list)
    baseline_runs: list[dict[str, Any]] = field(default_factory=list)
    silver_version: int | None = None
    gold_version: int | None = None

    @property
    def label(self) -> str:
        from pipeline import human_rows

        return human_rows(self.rows)

    @property
    def platform(self) -> dict[str, Any] | None:
        return _median_run(self.platform_runs)

    @property
    def baseline(self) -> dict[str, Any] | None:
        return _median_run(self.baseline_runs)


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run with the median total (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda run: float(run["total_s"]))
    return ordered[(len(ordered) - 1) // 2] if ordered else None


def land_size(base: Settings, rows: int, seed: int) -> SizeRun:
    """Land the batch unless landed earlier (bench/pipeline.py's ``land``) and pin its bronze versions."""
    from pipeline import SizeLake, land

    settings = size_settings(base, rows, seed, create=True)
    size = SizeLake(rows, seed, settings, settings)
    land(size)
    return SizeRun(rows, seed, settings, dict(size.pinned), size.landed_now)


def run_platform(
    size: SizeRun, spark: Any, sampler: TreeSampler, threads: int, say: Callable[[str], None], again: str = ""
) -> None:
    """silver_transactions + gold_fraud_features on Spark, the frame through Spark, then the model."""
    from _duck_steps import pinned

    from mdslab.ml.features import load_frame
    from mdslab.workloads.pipeline.framework import PipelineContext, run_step
    from mdslab.workloads.pipeline.steps import STEPS

    lake = open_lake(size.settings)
    ctx = PipelineContext(size.settings, lake, spark)
    steps = {step.name: step for step in STEPS}
    step_figures: list[dict[str, Any]] = []
    with measure(sampler, f"spark features {size.rows}") as build:
        for name in FEATURE_STEPS:
            say(f"{size.label}: Spark on Ray {name}{again}")
            result = run_step(ctx, pinned(steps[name], size.bronze), force=True)
            step_figures.append(
                {
                    "step": name,
                    "seconds": round(result.seconds, 3),
                    **{f"{key}_s": round(value, 3) for key, value in result.phases.items()},
                    "inputs": result.inputs,
                    "outputs": result.outputs,
                    "rows_out": result.rows_out,
                }
            )
    size.silver_version = step_figures[0]["outputs"]["silver.transactions"]
    size.gold_version = step_figures[1]["outputs"]["gold.fraud_features"]
    say(f"{size.label}: Spark on Ray: gold.fraud_features -> pandas (load_frame){again}")
    with measure(sampler, f"spark frame {size.rows}") as load:
        data = load_frame(lake, spark, FRAUD, version=size.gold_version)
    say(f"{size.label}: Spark on Ray: training LightGBM{again}")
    with measure(sampler, f"spark training {size.rows}") as training:
        fit = fit_holdout(data, threads)
    phases = {"feature_build": build, "frame_load": load, "training": training}
    size.platform_runs.append(
        {
            "engine": "spark",
            **_path_figures(
                phases, feature_build=("feature_build",), frame_load=("frame_load",), training=("training",)
            ),
            "steps": step_figures,
            "metrics": holdout_metrics(fit),
            "frame_rows": len(data.frame),
            "silver_version": size.silver_version,
            "gold_version": size.gold_version,
        }
    )


def run_baseline(size: SizeRun, threads: int, say: Callable[[str], None], *, check: bool) -> None:
    """The pandas baseline in a child process (see ``baseline_worker``); ``check``: compare with gold."""
    lake = open_lake(size.settings)
    if size.gold_version is None:  # no platform run now: the gold an earlier run built, and its inputs
        size.gold_version = lake.version("gold.fraud_features")
        if size.gold_version is None:
            raise RuntimeError(f"no gold.fraud_features in {size.settings.lake.curated_bucket}: run the platform path")
        inputs = lake.commit_metadata("gold.fraud_features", version=size.gold_version)["inputs"]
        size.silver_version = int(inputs["silver.transactions"])
        if int(inputs["bronze.fraud_labels"]) != size.bronze["bronze.fraud_labels"]:
            raise RuntimeError("gold.fraud_features was built from other fraud labels than the pinned ones")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        job, out, log = (Path(scratch) / name for name in ("job.json", "out.json", "stderr.log"))
        job.write_text(
            json.dumps(
                {
                    "rows": size.rows,
                    "seed": size.seed,
                    "silver_version": size.silver_version,
                    "labels_version": size.bronze["bronze.fraud_labels"],
                    "gold_version": size.gold_version if check else None,
                    "threads": threads,
                    "out": str(out),
                }
            )
        )
        with log.open("w") as errors:
            child = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--baseline-worker", str(job)],
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            assert child.stdout is not None
            for line in child.stdout:
                say(f"{size.label}: {line.strip()}")
            code = child.wait()
        if code != 0:
            tail = "\n".join(log.read_text().splitlines()[-30:])
            raise RuntimeError(f"the pandas baseline failed (exit {code}):\n{tail}")
        size.baseline_runs.append(json.loads(out.read_text()))


def vacuum_outputs(size: SizeRun) -> None:
    """Delete the files of earlier runs' output versions, so repeated runs do not fill the disk."""
    lake = open_lake(size.settings)
    for table in OUTPUT_TABLES:
        if lake.exists(table):
            lake.delta(table).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)


# --- reporting -------------------------------------------------------------------------------------


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


# --- main ------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    found = {}
    for package in ("pyspark", "raydp", "ray", "deltalake", "pyarrow", "pandas", "numpy", "lightgbm", "scikit-learn"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


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
    from mdslab.cli.services import ensure_services
    from mdslab.workloads.pipeline.framework import SparkProvider

    settings = load_settings()
    started_at = datetime.now(UTC)
    report: dict[str, Any] = {
        "benchmark": "train",
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "versions": _versions(),
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
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
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

        ensure_services(settings, on_step=say, quiet=True)
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
                run_baseline(size, args.threads, lambda text, again=again: say(text + again), check=attempt == 0)
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


if __name__ == "__main__":
    sys.exit(main())
