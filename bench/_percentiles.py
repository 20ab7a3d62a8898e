"""The summary every latency and freshness figure of bench/ingest.py is reported as: p50, p95, p99,
max and mean of a sample, so the producer, HTTP and bronze figures read alike."""

from __future__ import annotations

import numpy as np


def percentiles(values: np.ndarray | list[float], scale: float = 1.0) -> dict[str, float]:
    data = np.asarray(values, dtype=np.float64) * scale
    if not len(data):
        return {}
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    return {
        "p50": round(float(p50), 4),
        "p95": round(float(p95), 4),
        "p99": round(float(p99), 4),
        "max": round(float(data.max()), 4),
        "mean": round(float(data.mean()), 4),
    }
