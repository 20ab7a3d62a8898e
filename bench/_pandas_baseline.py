"""The baseline of bench/train.py: gold.fraud_features computed in pandas and NumPy from silver and the
labels, as one data scientist would on one machine; the check that it gives the SQL step's values; and the
model fit both paths share. ``baseline_worker`` runs it in a process of its own, so its memory is its own.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _harness import GIB, lab
from _measure import Phase, TreeSampler
from sklearn.metrics import average_precision_score, roc_auc_score

from mdslab.ml.features import FRAUD, TrainingFrame
from mdslab.ml.models import gradient_boosting
from mdslab.settings import load_settings
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.gold_sql import DAY_US, HOUR_US
from mdslab.workloads.pipeline.silver_sql import EARTH_RADIUS_KM

SILVER_COLUMNS = ["event_id", "customer_id", "merchant_id", "event_time", "amount_usd", "merchant_category"]
SILVER_COLUMNS += ["channel", "local_hour", "distance_from_home_km", "lat", "lon"]
LABEL_COLUMNS = ["event_id", "is_fraud", "fraud_pattern", "reported_at", "ingested_at"]


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
    distance: np.ndarray = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))
    return distance


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
        start: np.ndarray = np.maximum(np.searchsorted(key, key - span_us, "left"), first)
        return start

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


# The feature check: a value matches exactly (floats to 1e-9 relative) or within the tolerance, which
# takes one step of the coarsest rounding in the SQL (km to 0.001) or 0.1% of the value: a half-step
# tie rounded the other way, or a 30-day mean off by such a flip feeding amount_to_avg_30d.
EXACT_REL = 1e-9
TOLERANCE_ABS = 1.01e-3
TOLERANCE_REL = 1e-3
CHECKED_COLUMNS = [*FRAUD.features, FRAUD.label]


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


def fit_holdout(data: TrainingFrame, threads: int) -> dict[str, Any]:
    """``mdslab.ml.train.holdout_scores``'s fit (the time split, the LightGBM pipeline) and its metrics."""
    spec = data.spec
    train_rows, valid_rows = data.split()
    model = gradient_boosting(spec, threads=threads).fit(train_rows[spec.features], train_rows[spec.label])
    y, scores = valid_rows[spec.label].to_numpy(), model.predict_proba(valid_rows[spec.features])[:, 1]
    return {
        "roc_auc": round(float(roc_auc_score(y, scores)), 5),
        "pr_auc": round(float(average_precision_score(y, scores)), 5),
        "train_rows": len(train_rows),
        "validation_rows": len(valid_rows),
        "validation_positives": int(y.sum()),
    }


def path_figures(
    phases: dict[str, Phase], *, feature_build: tuple[str, ...], frame_load: tuple[str, ...], training: tuple[str, ...]
) -> dict[str, Any]:
    """A path's figures (either path's: the same keys) from its measured phases."""

    def seconds(names: tuple[str, ...]) -> float:
        return sum(phases[name].seconds for name in names)

    measured = list(phases.values())
    total = seconds(feature_build + frame_load + training)
    others = sum(phase.others_cpu_s for phase in measured)
    return {
        "feature_build_s": round(seconds(feature_build), 3),
        "frame_load_s": round(seconds(frame_load), 3),
        "training_s": round(seconds(training), 3),
        "total_s": round(total, 3),
        "cpu_s": round(sum(phase.cpu_s for phase in measured), 2),
        "others_cpu_s": round(others, 2),
        "others_cores": round(others / total, 2) if total else 0.0,
        "peak_pss_gib": round(max(phase.peak_pss for phase in measured) / GIB, 3),
        "peak_rss_gib": round(max(phase.peak_rss for phase in measured) / GIB, 3),
        "pss_at_start_gib": round(measured[0].start_pss / GIB, 3),
        "peak_processes": max(phase.peak_processes for phase in measured),
        "phases": {
            name: phase.as_dict() | {"others_cpu_seconds": round(phase.others_cpu_s, 2)}
            for name, phase in phases.items()
        },
    }


def baseline_worker(job_path: Path) -> int:
    """The pandas baseline, in the process ``train.py --baseline-worker`` starts: read, features, training."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    job = json.loads(job_path.read_text())
    lake = lakehouse(lab(load_settings(), f"bench-n{job['rows']}-s{job['seed']}", curated="train", create=False))
    out: dict[str, Any] = {"engine": "pandas", "silver_version": job["silver_version"]}
    with TreeSampler() as sampler:
        print("pandas: reading silver.transactions and bronze.fraud_labels", flush=True)
        with sampler.phase("read") as read:
            tx = lake.read_table("silver.transactions", version=job["silver_version"], columns=SILVER_COLUMNS)
            tx = tx.to_pandas()
            labels = lake.read_table("bronze.fraud_labels", version=job["labels_version"], columns=LABEL_COLUMNS)
            labels = labels.to_pandas()
        print("pandas: computing the point-in-time features", flush=True)
        with sampler.phase("features") as compute:
            features = fraud_features(tx, labels)
            data = training_frame(features, job["silver_version"])
        del tx, labels
        print("pandas: training LightGBM", flush=True)
        with sampler.phase("training") as training:
            out["metrics"] = fit_holdout(data, job["threads"])
    phases = {"read": read, "features": compute, "training": training}
    out |= path_figures(phases, feature_build=("read", "features"), frame_load=(), training=("training",))
    out["rows_in"] = len(features)
    del data
    if job.get("gold_version") is not None:
        print("pandas: checking the features against gold.fraud_features", flush=True)
        gold = lake.read_table(
            "gold.fraud_features", version=job["gold_version"], columns=["event_id", *CHECKED_COLUMNS]
        )
        out["feature_check"] = compare_features(features, gold.to_pandas()) | {"gold_version": job["gold_version"]}
    Path(job["out"]).write_text(json.dumps(out, default=str))
    return 0
