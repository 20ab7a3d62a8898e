"""Legitimate look-alikes of the fraud patterns, so that no single rule separates fraud from habit.

* shopping trips: several stores in the home city within two hours (a burst, but in person, at home);
* in-app purchases: a few charges under 5 at one online merchant within minutes, from the customer's
  own device (tiny online amounts, but no big purchase after them);
* late-night splurges: one big online purchase between midnight and 5 a.m. (a flight, a laptop).
"""

from __future__ import annotations

import numpy as np

from mdslab.workloads.contracts import MerchantCategory
from mdslab.workloads.simulator.frame import Frame, concat_frames
from mdslab.workloads.simulator.incidents import expand_incidents, incident_sizes, running_sum
from mdslab.workloads.simulator.sampling import MINUTE_US, SECOND_US, weighted_choice, wrap_into_window
from mdslab.workloads.simulator.transactions import (
    ATM,
    ATM_CATEGORY,
    CARD_PRESENT,
    CONTACTLESS,
    ONLINE,
    legit_amounts,
    transaction_rows,
    usual_amount,
)
from mdslab.workloads.simulator.world import World, category_pickers

#: Share of everyday transactions that belong to look-alike incidents.
LOOKALIKE_SHARE = 0.01
SPLIT = {"shopping_trip": 0.6, "in_app": 0.3, "splurge": 0.1}
APP_PRICES = np.array([0.99, 1.99, 2.99, 4.99])
APP_STORES = (MerchantCategory.ENTERTAINMENT, MerchantCategory.ONLINE_RETAIL)
SPLURGES = (MerchantCategory.TRAVEL, MerchantCategory.ELECTRONICS)


def lookalike_transactions(world: World, everyday: Frame, budget: int, rng: np.random.Generator) -> Frame:
    """``budget`` legitimate transactions in fraud-like incidents; ``everyday`` gives usual amounts."""
    trips = round(budget * SPLIT["shopping_trip"])
    in_app = round(budget * SPLIT["in_app"])
    frames = [
        _shopping_trips(world, trips, rng),
        _in_app_purchases(world, in_app, rng),
        _splurges(world, everyday, budget - trips - in_app, rng),
    ]
    return concat_frames(frames)


def _start(world: World, count: int, hour_low: int, hour_high: int, rng: np.random.Generator) -> tuple[
    np.ndarray, np.ndarray
]:  # fmt: skip
    """Customers (by activity) and a UTC start time at a local hour in [hour_low, hour_high)."""
    customer = weighted_choice(world.customers.activity, count, rng)
    day = rng.integers(0, world.config.days, count)
    hour = rng.integers(hour_low, hour_high, count)
    return customer, world.local_to_utc_us(day, hour, world.customers.city[customer], rng)


def _shopping_trips(world: World, budget: int, rng: np.random.Generator) -> Frame:
    _, sizes = incident_sizes(budget, 3, 7, rng)
    incident, _ = expand_incidents(sizes)
    customer, begin = _start(world, len(sizes), 10, 17, rng)
    since = running_sum(rng.uniform(6, 30, len(incident)) * MINUTE_US, incident, sizes)
    event_us = wrap_into_window(begin[incident] + since, world.start_us, world.config.days)
    shopper = customer[incident]
    merchant = world.pickers.pick_store(world.customers.city[shopper], world.weekend_at(event_us), rng)
    category = world.merchants.category[merchant]
    amount = legit_amounts(category, world.customers.spend_scale[shopper], rng)
    channel = np.where((amount < 60) & (rng.random(len(amount)) < 0.75), CONTACTLESS, CARD_PRESENT)
    channel[category == ATM_CATEGORY] = ATM
    device = np.full(len(amount), -1, dtype=np.int64)
    return transaction_rows(
        world, shopper, merchant, amount=amount, event_us=event_us, channel=channel, device=device, pattern=-1
    )


def _in_app_purchases(world: World, budget: int, rng: np.random.Generator) -> Frame:
    _, sizes = incident_sizes(budget, 2, 5, rng)
    incident, _ = expand_incidents(sizes)
    customer, begin = _start(world, len(sizes), 7, 24, rng)
    since = running_sum(rng.uniform(20, 240, len(incident)) * SECOND_US, incident, sizes)
    event_us = wrap_into_window(begin[incident] + since, world.start_us, world.config.days)
    shop = category_pickers(world, APP_STORES).pick_online(world.weekend_at(begin), rng)
    player = customer[incident]
    amount = APP_PRICES[rng.integers(0, len(APP_PRICES), len(incident))]
    channel = np.full(len(incident), ONLINE, dtype=np.int64)
    device = world.customers.devices[player, 0]
    return transaction_rows(
        world,
        player,
        shop[incident],
        amount=amount,
        event_us=event_us,
        channel=channel,
        device=device,
        pattern=-1,
    )


def _splurges(world: World, everyday: Frame, count: int, rng: np.random.Generator) -> Frame:
    customer, event_us = _start(world, count, 0, 5, rng)
    event_us = wrap_into_window(event_us, world.start_us, world.config.days)
    merchant = category_pickers(world, SPLURGES).pick_online(world.weekend_at(event_us), rng)
    amount = np.clip(usual_amount(world, everyday)[customer] * rng.uniform(4, 15, count), 40, 12_000)
    channel = np.full(count, ONLINE, dtype=np.int64)
    device = world.customers.devices[customer, 0]
    return transaction_rows(
        world,
        customer,
        merchant,
        amount=amount,
        event_us=event_us,
        channel=channel,
        device=device,
        pattern=-1,
    )
