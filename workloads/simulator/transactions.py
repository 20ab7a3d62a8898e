"""Everyday card transactions: who pays where, when, how much, and how the card is used.

Customers shop mostly in their home city (sometimes elsewhere in their region, a few travel), pick
stores by popularity with more weekend shopping in some categories, follow a category's daily rhythm
in local time, and spend log-normal amounts around the category's median scaled by their own habits.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from mdslab.workloads.contracts import Channel, MerchantCategory, Transaction
from mdslab.workloads.simulator.catalog import CATEGORIES, CATEGORY_CODES, PROFILE_NAMES
from mdslab.workloads.simulator.config import SimulationConfig
from mdslab.workloads.simulator.defects import DefectRecipe
from mdslab.workloads.simulator.encode import ISO_MILLIS_UTC, PayloadSpec, enum_column, nullable_float
from mdslab.workloads.simulator.events import EventType
from mdslab.workloads.simulator.frame import Frame, narrowed
from mdslab.workloads.simulator.geo import CURRENCY_CODES
from mdslab.workloads.simulator.sampling import (
    DAY_US,
    FloatArray,
    GroupedPicker,
    IntArray,
    local_hours,
    weighted_choice,
    wrap_into_window,
)
from mdslab.workloads.simulator.world import World

CHANNELS: tuple[Channel, ...] = tuple(Channel)
CARD_PRESENT, CONTACTLESS, ONLINE, ATM = (CHANNELS.index(c) for c in Channel)
ATM_CATEGORY = CATEGORY_CODES.index(MerchantCategory.CASH_WITHDRAWAL)
MEDIAN = np.array([CATEGORIES[c].median_amount for c in CATEGORY_CODES])
SIGMA = np.array([CATEGORIES[c].sigma for c in CATEGORY_CODES])
PROFILE = np.array([PROFILE_NAMES.index(CATEGORIES[c].hours) for c in CATEGORY_CODES])
#: Compact column types of a transaction frame (ids fit 7 digits, codes fit a byte).
DTYPES: dict[str, type[np.generic]] = {
    "customer": np.int32, "merchant": np.int32, "currency": np.int8, "channel": np.int8, "card": np.int16,
    "pattern": np.int8,
}  # fmt: skip
NEARBY_SHARE = 0.05  # physical purchases in another city of the home region
TRAVELLER_SHARE = 0.05  # customers who take a trip during the window


def legit_amounts(category: IntArray, scale: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Log-normal around the category median; cash comes in multiples of 20."""
    amount = MEDIAN[category] * scale * np.exp(rng.normal(0.0, 1.0, len(category)) * SIGMA[category])
    cash = category == ATM_CATEGORY
    amount[cash] = np.clip(np.round(amount[cash] / 20) * 20, 20, 1_000)
    return np.round(np.clip(amount, 0.5, 25_000), 2)  # type: ignore[no-any-return]


def legit_transactions(world: World, n: int, rng: np.random.Generator) -> Frame:
    customers, merchants, cities = world.customers, world.merchants, world.cities
    config = world.config
    customer = weighted_choice(customers.activity, n, rng)
    online = rng.random(n) < customers.online_share[customer]
    day = rng.integers(0, config.days, n)
    weekend = world.is_weekend(day)
    home = customers.city[customer]
    place = home.copy()
    nearby = np.flatnonzero(rng.random(n) < NEARBY_SHARE)
    region_picker = GroupedPicker.build(cities.region, cities.weight, len(cities.regions))
    place[nearby] = region_picker.pick(cities.region[home[nearby]], rng)
    place = _trip_places(world, customer, day, place, rng)

    merchant = np.empty(n, dtype=np.int64)
    stores = np.flatnonzero(~online)
    merchant[stores] = world.pickers.pick_store(place[stores], weekend[stores], rng)
    merchant[online] = world.pickers.pick_online(weekend[online], rng)
    category = merchants.category[merchant]
    hour = local_hours(PROFILE[category], rng)
    zone_city = np.where(online, home, merchants.city[merchant])
    event_us = world.local_to_utc_us(day, hour, zone_city, rng)
    amount = legit_amounts(category, customers.spend_scale[customer], rng)

    channel = np.full(n, CARD_PRESENT, dtype=np.int64)
    tap = rng.random(n) < np.where(amount < 60, 0.75, 0.25)
    channel[tap] = CONTACTLESS
    channel[category == ATM_CATEGORY] = ATM
    channel[online] = ONLINE
    merchant_currency = cities.currency[merchants.city[merchant]]
    home_currency = customers.currency[customer]
    currency = np.where(online & (rng.random(n) < 0.88), home_currency, merchant_currency)
    second_device = rng.random(n) < 0.25
    device = customers.devices[customer, second_device.astype(np.int64)]
    wallet = (channel == CONTACTLESS) & (rng.random(n) < 0.35)
    device = np.where(online | wallet, device, -1)
    columns = {
        "customer": customer,
        "merchant": merchant,
        "amount": amount,
        "currency": currency,
        "event_us": wrap_into_window(event_us, world.start_us, config.days),
        "channel": channel,
        "card": customers.card_last4[customer],
        "lat": np.where(online, np.nan, merchants.lat[merchant]),
        "lon": np.where(online, np.nan, merchants.lon[merchant]),
        "device": device,
        "pattern": np.full(n, -1, dtype=np.int64),
        "anchor": np.zeros(n, dtype=bool),
    }
    return narrowed(columns, DTYPES)


def _trip_places(
    world: World, customer: IntArray, day: IntArray, place: IntArray, rng: np.random.Generator
) -> IntArray:
    """Travellers spend a few consecutive days in another city: far from home, but not fraud."""
    n_customers = len(world.customers.city)
    traveller = rng.random(n_customers) < TRAVELLER_SHARE
    trip_city = weighted_choice(world.cities.weight, n_customers, rng)
    trip_start = rng.integers(0, world.config.days - 1, n_customers)
    trip_days = rng.integers(2, 8, n_customers)
    away = traveller[customer] & (day >= trip_start[customer]) & (day < trip_start[customer] + trip_days[customer])
    return np.where(away & (rng.random(len(day)) < 0.9), trip_city[customer], place)


def transaction_rows(
    world: World,
    customer: IntArray,
    merchant: IntArray,
    *,
    amount: FloatArray,
    event_us: IntArray,
    channel: IntArray,
    device: IntArray,
    pattern: int,
) -> Frame:
    """A frame for explicitly built transactions (fraud, look-alikes); ``pattern`` -1 means legitimate.

    Currency, card and location follow from the customer and merchant as for everyday spending.
    """
    online = channel == ONLINE
    merchant_currency = world.cities.currency[world.merchants.city[merchant]]
    columns = {
        "customer": customer,
        "merchant": merchant,
        "amount": np.round(amount, 2),
        "currency": np.where(online, world.customers.currency[customer], merchant_currency),
        "event_us": event_us,
        "channel": channel,
        "card": world.customers.card_last4[customer],
        "lat": np.where(online, np.nan, world.merchants.lat[merchant]),
        "lon": np.where(online, np.nan, world.merchants.lon[merchant]),
        "device": device,
        "pattern": np.full(len(customer), pattern, dtype=np.int64),
        "anchor": np.zeros(len(customer), dtype=bool),
    }
    return narrowed(columns, DTYPES)


def usual_amount(world: World, legit: Frame) -> FloatArray:
    """Each customer's mean everyday ticket (the overall median for customers without any)."""
    n_customers = len(world.customers.city)
    count = np.bincount(legit["customer"], minlength=n_customers)
    total = np.bincount(legit["customer"], weights=legit["amount"], minlength=n_customers)
    return np.where(count > 0, total / np.maximum(count, 1), np.median(legit["amount"]))


def transaction_columns(frame: Frame) -> Mapping[str, pa.Array]:
    device = frame["device"]
    return {
        "customer": pa.array(frame["customer"]),
        "merchant": pa.array(frame["merchant"]),
        "amount": pa.array(frame["amount"]),
        "currency": enum_column(frame["currency"], CURRENCY_CODES),
        "event_us": pa.array(frame["event_us"]),
        "channel": enum_column(frame["channel"], CHANNELS),
        "card": pa.array(frame["card"]),
        "lat": nullable_float(frame["lat"]),
        "lon": nullable_float(frame["lon"]),
        "device": pa.array(device, mask=device < 0),
    }


TRANSACTION_PAYLOAD = PayloadSpec(
    contract=Transaction,
    fields={
        "event_id": "event_id",
        "customer_id": "printf('C%07d', customer)",
        "merchant_id": "printf('M%06d', merchant)",
        "amount": "amount",
        "currency": "currency",
        "event_time": f"strftime(make_timestamp(event_us), '{ISO_MILLIS_UTC}')",
        "channel": "channel",
        "card_last4": "printf('%04d', card)",
        "lat": "lat",
        "lon": "lon",
        "device_id": "printf('dev-%012x', device)",
    },
)


def _out_of_range(frame: Frame, rows: IntArray, rng: np.random.Generator, config: SimulationConfig) -> list[str]:
    """Zero or negative amounts, amounts over the limit, clocks at the epoch or a century ahead."""
    variant = rng.integers(0, 4, len(rows))
    amount, event_us = frame["amount"], frame["event_us"]
    negative = rows[variant == 0]
    amount[negative] = np.where(rng.random(len(negative)) < 0.7, -amount[negative], 0.0)
    amount[rows[variant == 1]] = np.round(rng.uniform(50_000.01, 250_000, int((variant == 1).sum())), 2)
    event_us[rows[variant == 2]] = event_us[rows[variant == 2]] % DAY_US  # 1970-01-01, same time of day
    event_us[rows[variant == 3]] += 36_525 * DAY_US  # a hundred years ahead
    return ["amount" if v < 2 else "event_time" for v in variant]


def _unknown_reference(frame: Frame, rows: IntArray, rng: np.random.Generator, config: SimulationConfig) -> list[str]:
    """Ids of the right shape that the reference data does not contain."""
    merchant = rng.random(len(rows)) < 0.5
    frame["customer"][rows[~merchant]] = rng.integers(config.n_customers, 10_000_000, int((~merchant).sum()))
    frame["merchant"][rows[merchant]] = rng.integers(config.n_merchants, 1_000_000, int(merchant.sum()))
    return ["merchant_id" if m else "customer_id" for m in merchant]


TRANSACTION_EVENTS = EventType(
    name="transaction",
    payload=TRANSACTION_PAYLOAD,
    columns=transaction_columns,
    defects=DefectRecipe(
        out_of_range=_out_of_range,
        unknown_reference=_unknown_reference,
        bad_values={
            "amount": (
                lambda value, rng: f"{value:.2f}".replace(".", ","),
                lambda value, rng: "N/A",
                lambda value, rng: f"USD {value}",
            ),
            "event_time": (
                lambda value, rng: "yesterday",
                lambda value, rng: f"{value[5:7]}/{value[8:10]}/{value[:4]} {value[11:16]}",
                lambda value, rng: "not-a-date",
            ),
            "lat": (lambda value, rng: "N/A",),
        },
        missing_fields=(
            "customer_id",
            "merchant_id",
            "amount",
            "currency",
            "event_time",
            "channel",
            "card_last4",
        ),
    ),
)
