"""Vectorised sampling building blocks: weighted picks within groups, daily rhythms, arrival order.

Each helper draws for millions of rows at once with numpy (cumulative sums and ``searchsorted``), which
is what keeps a five-million-event simulation within seconds; no helper loops over rows in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mdslab.workloads.simulator.catalog import hour_cdfs

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US


@dataclass(frozen=True)
class GroupedPicker:
    """Weighted choice of an item within its group (e.g. a merchant within a city), vectorised.

    Items are ordered by group; one cumulative weight array serves every group, and a draw for group
    ``g`` is a ``searchsorted`` into that group's slice of it.
    """

    items: IntArray  # item ids ordered by group
    cumulative: FloatArray
    low: FloatArray  # cumulative weight before each group's first item
    high: FloatArray  # cumulative weight at each group's last item
    last: IntArray  # position of each group's last item in ``items``

    @classmethod
    def build(cls, groups: IntArray, weights: FloatArray, n_groups: int) -> GroupedPicker:
        """``groups[i]`` is item i's group; items with zero weight are never picked."""
        order = np.argsort(groups, kind="stable")
        cumulative = np.cumsum(weights[order])
        counts = np.bincount(groups, minlength=n_groups)
        ends = np.cumsum(counts)
        starts = ends - counts
        padded = np.concatenate([[0.0], cumulative])
        return cls(
            items=order.astype(np.int64),
            cumulative=cumulative,
            low=padded[starts],
            high=padded[ends],
            last=ends - 1,
        )

    def has_items(self, groups: IntArray) -> BoolArray:
        return self.high[groups] > self.low[groups]

    def pick(self, groups: IntArray, rng: np.random.Generator) -> IntArray:
        """One item per entry of ``groups``; every requested group must have an item with weight."""
        low, high = self.low[groups], self.high[groups]
        targets = low + rng.random(len(groups)) * (high - low)
        positions = np.searchsorted(self.cumulative, targets, side="right")
        return self.items[np.minimum(positions, self.last[groups])]


def weighted_choice(weights: FloatArray, size: int, rng: np.random.Generator) -> IntArray:
    """``size`` indices drawn with probability proportional to ``weights``."""
    cumulative = np.cumsum(weights)
    positions: IntArray = np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right")
    return np.minimum(positions, len(weights) - 1).astype(np.int64)


def local_hours(profiles: IntArray, rng: np.random.Generator) -> IntArray:
    """An hour of day 0..23 per row, from the daily rhythm ``profiles[i]`` (index into PROFILE_NAMES)."""
    cdfs = hour_cdfs()
    flat = (cdfs + np.arange(len(cdfs))[:, None]).ravel()  # profile p's CDF shifted into [p, p + 1]
    positions: IntArray = np.searchsorted(flat, profiles + rng.random(len(profiles)), side="right")
    hours: IntArray = np.minimum(positions - profiles * 24, 23).astype(np.int64)
    return hours


def wrap_into_window(times_us: IntArray, start_us: int, days: int) -> IntArray:
    """Shift times that local-time conversion pushed outside [start, start + days) by whole windows.

    Whole-day shifts keep each event's hour of day, so the daily rhythm survives.
    """
    span = days * DAY_US
    return start_us + np.mod(times_us - start_us, span)


def arrival_order(times_us: IntArray, rng: np.random.Generator, late_share: float = 0.03) -> IntArray:
    """Order in which events reach the platform: by time, plus network jitter and some late arrivals.

    Most events arrive within seconds; ``late_share`` of them are held back for minutes to hours (a
    terminal batch uploaded late, a retry queue), so a stream is mostly but not strictly time-ordered.
    """
    n = len(times_us)
    delay = rng.integers(0, 3 * SECOND_US, size=n)
    late = rng.random(n) < late_share
    delay[late] += (rng.exponential(20 * MINUTE_US, size=int(late.sum()))).astype(np.int64)
    return np.argsort(times_us + delay, kind="stable").astype(np.int64)
