"""The baseline of bench/train.py: gold.fraud_features computed in pandas and NumPy from silver and the
labels, as one data scientist would on one machine, giving the same values as the SQL step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mdslab.ml.features import FRAUD, TrainingFrame
from mdslab.workloads.pipeline.gold_sql import DAY_US, HOUR_US
from mdslab.workloads.pipeline.silver_sql import EARTH_RADIUS_KM


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
