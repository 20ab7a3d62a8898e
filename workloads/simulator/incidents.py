"""Incidents: short runs of related transactions (a fraud burst, a shopping trip), built vectorised.

An incident is a group of consecutive rows; these helpers size the groups to an exact row budget and
lay out per-row positions and running times within each group without a Python loop over groups.
"""

from __future__ import annotations

import numpy as np

from mdslab.workloads.simulator.sampling import FloatArray, IntArray


def incident_sizes(budget: int, low: int, high: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """(planned, actual) sizes of incidents adding up to exactly ``budget`` rows; the last may be cut."""
    planned = rng.integers(low, high + 1, budget // low + 1)
    total = np.cumsum(planned)
    count = int(np.searchsorted(total, budget)) + 1 if budget else 0
    actual = planned[:count].copy()
    if count:
        actual[-1] -= total[count - 1] - budget
    return planned[:count], actual


def expand_incidents(sizes: IntArray) -> tuple[IntArray, IntArray]:
    """Per row: its incident and its position within the incident."""
    incident = np.repeat(np.arange(len(sizes)), sizes)
    starts = np.cumsum(sizes) - sizes
    return incident, np.arange(int(sizes.sum())) - starts[incident]


def running_sum(gaps: FloatArray, incident: IntArray, sizes: IntArray) -> IntArray:
    """Cumulative sum of ``gaps`` restarting at each incident (e.g. time since the incident began)."""
    total = np.cumsum(gaps)
    first = np.cumsum(sizes) - sizes
    return (total - (total[first] - gaps[first])[incident]).astype(np.int64)  # type: ignore[no-any-return]
