"""Planted fraud: four modus operandi, each detectable from a customer's own recent history.

* ``card_testing``: 3-8 tiny online charges within minutes, then one large online purchase.
* ``geo_jump``: card-present use in a far-away city within an hour of a purchase at home.
* ``night_spree``: several purchases of 5-20x the customer's usual ticket at electronics or jewelry
  merchants between midnight and 5 a.m. local time.
* ``merchant_burst``: many distinct online merchants, new to the customer, within half an hour or so.

Features such as "transactions in the previous hour", "mean amount over the previous 24 hours",
"distance from home", local hour and category separate these from normal spending, while legitimate
night owls, big-ticket buyers and travellers keep the problem from being trivial.
"""

from __future__ import annotations

import numpy as np

from mdslab.workloads.contracts import FraudPattern, MerchantCategory
from mdslab.workloads.simulator.catalog import CATEGORY_CODES
from mdslab.workloads.simulator.frame import Frame, concat_frames
from mdslab.workloads.simulator.geo import haversine_km
from mdslab.workloads.simulator.incidents import expand_incidents, incident_sizes, running_sum
from mdslab.workloads.simulator.sampling import DAY_US, HOUR_US, MINUTE_US, IntArray, weighted_choice
from mdslab.workloads.simulator.transactions import (
    ATM,
    CARD_PRESENT,
    CONTACTLESS,
    MEDIAN,
    ONLINE,
    legit_amounts,
    transaction_rows,
    usual_amount,
)
from mdslab.workloads.simulator.world import World, category_pickers

PATTERNS: tuple[FraudPattern, ...] = tuple(FraudPattern)
BIG_TICKET = (MerchantCategory.ELECTRONICS, MerchantCategory.JEWELRY, MerchantCategory.TRAVEL)
RESELLABLE = (MerchantCategory.ELECTRONICS, MerchantCategory.JEWELRY)
CASHABLE = (*RESELLABLE, MerchantCategory.CLOTHING, MerchantCategory.CASH_WITHDRAWAL)
FAR_KM = 1_000.0


def fraud_transactions(world: World, legit: Frame, n_fraud: int, rng: np.random.Generator) -> Frame:
    """``n_fraud`` fraudulent transactions, split evenly over the patterns.

    ``legit`` is read for habits (usual amounts) and anchors: a geo jump happens right after a real
    purchase at home, whose row gets ``anchor`` set so that it is never broken into a defect.
    """
    budgets = [n_fraud // len(PATTERNS) + (i < n_fraud % len(PATTERNS)) for i in range(len(PATTERNS))]
    frames = [
        _card_testing(world, budgets[0], rng),
        _geo_jump(world, legit, budgets[1], rng),
        _night_spree(world, legit, budgets[2], rng),
        _merchant_burst(world, budgets[3], rng),
    ]
    return concat_frames(frames)


def _fraud_devices(count: int, rng: np.random.Generator) -> IntArray:
    return rng.integers(1 << 40, 1 << 48, count)


def _card_testing(world: World, budget: int, rng: np.random.Generator) -> Frame:
    planned, sizes = incident_sizes(budget, 4, 9, rng)
    incident, position = expand_incidents(sizes)
    k, n = len(sizes), int(sizes.sum())
    victim = weighted_choice(world.customers.activity, k, rng)
    begin = rng.integers(world.start_us + HOUR_US, world.end_us - 3 * HOUR_US, k)
    is_big = position == planned[incident] - 1
    gaps = rng.exponential(45e6, n) + 5e6 + is_big * rng.uniform(60e6, 900e6, n)
    event_us = begin[incident] + running_sum(gaps, incident, sizes)
    weekend = world.weekend_at(event_us)
    same_shop = world.pickers.pick_online(weekend[np.cumsum(sizes) - sizes], rng)
    shop = np.where(rng.random(k) < 0.6, same_shop, -1)[incident]
    merchant = np.where(shop >= 0, shop, world.pickers.pick_online(weekend, rng))
    merchant[is_big] = category_pickers(world, BIG_TICKET).pick_online(weekend[is_big], rng)
    amount = np.where(is_big, np.clip(rng.lognormal(np.log(700), 0.6, n), 150, 9_000), rng.uniform(0.5, 4.99, n))
    device = _fraud_devices(k, rng)[incident]
    channel = np.full(n, ONLINE, dtype=np.int64)
    return transaction_rows(
        world,
        victim[incident],
        merchant,
        amount=amount,
        event_us=event_us,
        channel=channel,
        device=device,
        pattern=PATTERNS.index(FraudPattern.CARD_TESTING),
    )


def _geo_jump(world: World, legit: Frame, budget: int, rng: np.random.Generator) -> Frame:
    _, sizes = incident_sizes(budget, 1, 3, rng)
    incident, _ = expand_incidents(sizes)
    k, n = len(sizes), int(sizes.sum())
    customer, merchant = legit["customer"], legit["merchant"]
    home = world.customers.city[customer]
    at_home = np.isin(legit["channel"], [CARD_PRESENT, CONTACTLESS]) & (world.merchants.city[merchant] == home)
    in_window = (legit["event_us"] > world.start_us) & (legit["event_us"] < world.end_us - 3 * HOUR_US)
    candidates = np.flatnonzero(at_home & in_window)
    if k > len(candidates):
        raise ValueError(f"geo_jump needs {k} purchases at home to follow, only {len(candidates)} exist")
    anchor = rng.choice(candidates, size=k, replace=False)
    legit["anchor"][anchor] = True
    victim, home_city = customer[anchor], home[anchor]
    far_city = _far_cities(world, home_city, rng)
    gaps = np.where(np.arange(n) == (np.cumsum(sizes) - sizes)[incident], rng.uniform(10, 60, n), rng.uniform(3, 25, n))
    event_us = legit["event_us"][anchor][incident] + running_sum(gaps * MINUTE_US, incident, sizes)
    merchant_far = category_pickers(world, CASHABLE).pick_store(far_city[incident], world.weekend_at(event_us), rng)
    category = world.merchants.category[merchant_far]
    amount = MEDIAN[category] * rng.lognormal(np.log(2.5), 0.5, n)
    cash = category == CATEGORY_CODES.index(MerchantCategory.CASH_WITHDRAWAL)
    amount[cash] = np.clip(np.round(amount[cash] / 20) * 20, 100, 1_000)
    channel = np.where(cash, ATM, CARD_PRESENT)
    device = np.full(n, -1, dtype=np.int64)
    amount = np.clip(amount, 5, 9_000)
    return transaction_rows(
        world,
        victim[incident],
        merchant_far,
        amount=amount,
        event_us=event_us,
        channel=channel,
        device=device,
        pattern=PATTERNS.index(FraudPattern.GEO_JUMP),
    )


def _far_cities(world: World, home_city: IntArray, rng: np.random.Generator) -> IntArray:
    """A city at least FAR_KM from each home city, drawn by population (redrawn until far enough)."""
    lat, lon = world.cities.lat, world.cities.lon
    far = weighted_choice(world.cities.weight, len(home_city), rng)
    for _ in range(50):
        near = haversine_km(lat[home_city], lon[home_city], lat[far], lon[far]) < FAR_KM
        if not near.any():
            break
        far[near] = weighted_choice(world.cities.weight, int(near.sum()), rng)
    return far


def _night_spree(world: World, legit: Frame, budget: int, rng: np.random.Generator) -> Frame:
    _, sizes = incident_sizes(budget, 2, 5, rng)
    incident, _ = expand_incidents(sizes)
    k, n = len(sizes), int(sizes.sum())
    victim = weighted_choice(world.customers.activity, k, rng)
    home = world.customers.city[victim]
    day = rng.integers(1, world.config.days - 1, k)
    local_start = rng.uniform(0, 2.5 * HOUR_US, k)
    since_start = running_sum(rng.uniform(4, 30, n) * MINUTE_US, incident, sizes)
    local_us = day[incident] * DAY_US + local_start[incident].astype(np.int64) + since_start
    event_us = world.first_day_us + local_us - world.offsets_us[home[incident], day[incident]]
    weekend = world.is_weekend(day[incident])
    pickers = category_pickers(world, RESELLABLE, only=True)
    online = (rng.random(n) < 0.7) | ~pickers.stores[0].has_items(home[incident])
    merchant = pickers.pick_online(weekend, rng)
    merchant[~online] = pickers.pick_store(home[incident][~online], weekend[~online], rng)
    amount = np.clip(usual_amount(world, legit)[victim][incident] * rng.uniform(5, 20, n), 60, 45_000)
    device = np.where(online, _fraud_devices(k, rng)[incident], -1)
    channel = np.where(online, ONLINE, CARD_PRESENT)
    return transaction_rows(
        world,
        victim[incident],
        merchant,
        amount=amount,
        event_us=event_us,
        channel=channel,
        device=device,
        pattern=PATTERNS.index(FraudPattern.NIGHT_SPREE),
    )


def _merchant_burst(world: World, budget: int, rng: np.random.Generator) -> Frame:
    _, sizes = incident_sizes(budget, 5, 10, rng)
    incident, position = expand_incidents(sizes)
    k, n = len(sizes), int(sizes.sum())
    victim = weighted_choice(world.customers.activity, k, rng)
    begin = rng.integers(world.start_us + HOUR_US, world.end_us - 3 * HOUR_US, k)
    event_us = begin[incident] + running_sum(rng.uniform(2, 9, n) * MINUTE_US, incident, sizes)
    shops = np.flatnonzero(world.merchants.is_online)
    step = rng.integers(1, max(1, (len(shops) - 1) // 9) + 1, k)  # 10 steps never wrap: all distinct
    merchant = shops[(rng.integers(0, len(shops), k)[incident] + position * step[incident]) % len(shops)]
    category = world.merchants.category[merchant]
    amount = legit_amounts(category, world.customers.spend_scale[victim][incident] * 1.4, rng)
    device = _fraud_devices(k, rng)[incident]
    channel = np.full(n, ONLINE, dtype=np.int64)
    return transaction_rows(
        world,
        victim[incident],
        merchant,
        amount=amount,
        event_us=event_us,
        channel=channel,
        device=device,
        pattern=PATTERNS.index(FraudPattern.MERCHANT_BURST),
    )
