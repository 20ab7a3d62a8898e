"""The simulated world: reference data, time window and the merchant pickers events draw from.

Built once per run and shared read-only by the transaction, fraud and claim generators, so that each
of them sees the same customers, stores and calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

import numpy as np

from mdslab.workloads.contracts import MerchantCategory
from mdslab.workloads.simulator.catalog import CATEGORIES, CATEGORY_CODES
from mdslab.workloads.simulator.config import SimulationConfig
from mdslab.workloads.simulator.geo import CITIES, CityTable, city_table, utc_offsets_us
from mdslab.workloads.simulator.reference import (
    Customers,
    Merchants,
    Policies,
    make_customers,
    make_merchants,
    make_policies,
)
from mdslab.workloads.simulator.sampling import DAY_US, HOUR_US, SECOND_US, BoolArray, GroupedPicker, IntArray


@dataclass(frozen=True)
class MerchantPickers:
    """Weighted merchant choice by city (stores) or globally (online), on weekdays and on weekends."""

    stores: tuple[GroupedPicker, GroupedPicker]  # (weekday, weekend), grouped by city
    online: tuple[GroupedPicker, GroupedPicker]  # single group 0

    def pick_store(self, city: IntArray, weekend: BoolArray, rng: np.random.Generator) -> IntArray:
        return _pick_by_day(self.stores, city, weekend, rng)

    def pick_online(self, weekend: BoolArray, rng: np.random.Generator) -> IntArray:
        return _pick_by_day(self.online, np.zeros(len(weekend), dtype=np.int64), weekend, rng)


def _pick_by_day(
    pickers: tuple[GroupedPicker, GroupedPicker],
    groups: IntArray,
    weekend: BoolArray,
    rng: np.random.Generator,
) -> IntArray:
    chosen = np.empty(len(groups), dtype=np.int64)
    for is_weekend, picker in ((False, pickers[0]), (True, pickers[1])):
        rows = np.flatnonzero(weekend == is_weekend)
        chosen[rows] = picker.pick(groups[rows], rng)
    return chosen


def merchant_pickers(merchants: Merchants, weights: np.ndarray | None = None) -> MerchantPickers:
    """Pickers over ``weights`` (default: each merchant's popularity); zero weight excludes a merchant."""
    base = merchants.popularity if weights is None else weights
    boost = np.array([CATEGORIES[c].weekend_boost for c in CATEGORY_CODES])[merchants.category]
    by_day = (base, base * np.maximum(1.0 + boost, 0.05))
    stores = tuple(
        GroupedPicker.build(merchants.city, np.where(merchants.is_online, 0.0, w), len(CITIES)) for w in by_day
    )
    online = tuple(
        GroupedPicker.build(np.zeros(len(base), dtype=np.int64), np.where(merchants.is_online, w, 0.0), 1)
        for w in by_day
    )
    return MerchantPickers(stores=(stores[0], stores[1]), online=(online[0], online[1]))


@dataclass(frozen=True)
class World:
    config: SimulationConfig
    cities: CityTable
    customers: Customers
    merchants: Merchants
    policies: Policies
    pickers: MerchantPickers
    offsets_us: IntArray  # (cities, days) UTC offset of each local day
    first_day_us: int  # UTC midnight of the window's first day
    start_us: int
    end_us: int
    first_weekday: int  # 0 = Monday, of the window's first day

    def is_weekend(self, day: IntArray) -> BoolArray:
        """Whether each day of the window (0 = first) is a Saturday or Sunday."""
        return (self.first_weekday + day) % 7 >= 5

    def local_to_utc_us(self, day: IntArray, hour: IntArray, city: IntArray, rng: np.random.Generator) -> IntArray:
        """UTC epoch microseconds (millisecond resolution) for a local day and hour in a city's zone."""
        within_hour = rng.integers(0, HOUR_US // 1_000, size=len(day)) * 1_000
        local_us = self.first_day_us + day * DAY_US + hour * HOUR_US + within_hour
        return local_us - self.offsets_us[city, day]

    def weekend_at(self, event_us: IntArray) -> BoolArray:
        """Whether each UTC time falls on a weekend day of the window (clamped to the window)."""
        return self.is_weekend(np.clip((event_us - self.first_day_us) // DAY_US, 0, self.config.days - 1))


def category_pickers(world: World, categories: tuple[MerchantCategory, ...], *, only: bool = False) -> MerchantPickers:
    """Pickers favouring merchants of ``categories`` (50:1), or restricted to them with ``only``."""
    wanted = np.isin(world.merchants.category, [CATEGORY_CODES.index(c) for c in categories])
    return merchant_pickers(world.merchants, world.merchants.popularity * np.where(wanted, 50.0, 0.0 if only else 1.0))


def build_world(config: SimulationConfig) -> World:
    cities = city_table()
    customers = make_customers(config, cities)
    merchants = make_merchants(config, cities)
    first_day = config.start.date()
    start_us = round(config.start.timestamp() * SECOND_US)
    return World(
        config=config,
        cities=cities,
        customers=customers,
        merchants=merchants,
        policies=make_policies(config, customers, cities),
        pickers=merchant_pickers(merchants),
        offsets_us=utc_offsets_us(first_day, config.days),
        first_day_us=round(datetime.combine(first_day, time(), tzinfo=UTC).timestamp() * SECOND_US),
        start_us=start_us,
        end_us=start_us + config.days * DAY_US,
        first_weekday=first_day.weekday(),
    )
