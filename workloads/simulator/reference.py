"""Reference data: customers, merchants and policies, as Arrow tables plus the hidden traits behind them.

The tables are what a master-data system would publish (every row valid per its contract). The traits
(how active a customer is, how much they usually spend, their card and devices) never leave the
simulator: they only shape the transactions, the way real habits shape real data.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from mdslab.workloads.contracts import Product, Segment
from mdslab.workloads.simulator.catalog import (
    CATEGORIES,
    CATEGORY_CODES,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LANGUAGE_BY_COUNTRY,
    LAST_NAMES,
)
from mdslab.workloads.simulator.config import SimulationConfig, WorldSpec
from mdslab.workloads.simulator.encode import fixed_width_ids, string_column
from mdslab.workloads.simulator.geo import CITIES, CURRENCY_CODES, CityTable
from mdslab.workloads.simulator.sampling import BoolArray, FloatArray, IntArray, weighted_choice

EPOCH = date(1970, 1, 1)
SEGMENTS: tuple[Segment, ...] = tuple(Segment)
PRODUCTS: tuple[Product, ...] = tuple(Product)
ONLINE_MERCHANT_SHARE = 0.18
MIN_ONLINE_MERCHANTS = 24  # one per category sold online, and ten distinct ones for a merchant burst


@dataclass(frozen=True)
class Customers:
    table: pa.Table
    city: IntArray
    currency: IntArray
    activity: FloatArray  # relative number of transactions
    spend_scale: FloatArray  # multiplies every category's median ticket
    online_share: FloatArray
    card_last4: IntArray
    devices: IntArray  # shape (n, 2): primary and secondary device fingerprint


@dataclass(frozen=True)
class Merchants:
    table: pa.Table
    city: IntArray
    category: IntArray  # index into CATEGORY_CODES
    is_online: BoolArray
    lat: FloatArray
    lon: FloatArray
    popularity: FloatArray


@dataclass(frozen=True)
class Policies:
    """One row per policy *term* in ``table`` (a renewal is a new row: same ``policy_id``, the next
    ``start_date``); the arrays are per policy, in ``policy_id`` order, and hold what no renewal changes."""

    table: pa.Table
    customer: IntArray
    product: IntArray  # index into PRODUCTS
    start_day: IntArray  # first term's first day, days since 1970-01-01
    end_day: IntArray  # last day of cover, renewals included, as far as the run's window needs to know
    coverage_limit: FloatArray
    deductible: FloatArray
    active: BoolArray  # covered without a gap over the run's window plus the 30 days before it


def epoch_day(day: date) -> int:
    return (day - EPOCH).days


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.replace("ü", "ue").replace("ö", "oe").replace("ä", "ae"))
    return "".join(c for c in folded if c.isascii() and c.isalpha()).lower()


def _jitter(
    center: FloatArray, km: float, rng: np.random.Generator, *, longitude_of: FloatArray | None = None
) -> FloatArray:
    degrees: float | FloatArray = km / 111.0
    if longitude_of is not None:
        degrees = degrees / np.cos(np.radians(longitude_of))
    return np.round(center + rng.normal(0.0, 1.0, len(center)) * degrees, 5)


def make_customers(config: SimulationConfig, cities: CityTable) -> Customers:
    world = config.world
    rng = world.rng("customers")
    n = world.customers
    city = weighted_choice(cities.weight, n, rng)
    segment = weighted_choice(np.array([0.75, 0.17, 0.08]), n, rng)
    language = [LANGUAGE_BY_COUNTRY[CITIES[c].country] for c in city]
    first_pick, last_pick, domain = rng.random(n), rng.random(n), rng.integers(0, len(EMAIL_DOMAINS), n)
    first = [FIRST_NAMES[lang][int(u * len(FIRST_NAMES[lang]))] for lang, u in zip(language, first_pick, strict=True)]
    last = [LAST_NAMES[lang][int(u * len(LAST_NAMES[lang]))] for lang, u in zip(language, last_pick, strict=True)]
    plain = {name: _ascii(name) for names in (*FIRST_NAMES.values(), *LAST_NAMES.values()) for name in names}
    emails = [
        f"{plain[f]}.{plain[s]}{i}@{EMAIL_DOMAINS[d]}"
        for i, (f, s, d) in enumerate(zip(first, last, domain, strict=True))
    ]
    start_day = epoch_day(world.start.date())
    signup = rng.integers(epoch_day(date(2012, 1, 1)), start_day - 1, n)
    home_lat = _jitter(cities.lat[city], 6.0, rng)
    home_lon = _jitter(cities.lon[city], 6.0, rng, longitude_of=cities.lat[city])
    table = pa.table(
        {
            "customer_id": fixed_width_ids("C", np.arange(n), 7),
            "full_name": string_column([f"{f} {s}" for f, s in zip(first, last, strict=True)]),
            "email": string_column(emails),
            "city": string_column([CITIES[c].name for c in city]),
            "region": string_column([CITIES[c].region for c in city]),
            "country": string_column([CITIES[c].country for c in city]),
            "timezone": string_column([CITIES[c].timezone for c in city]),
            "segment": string_column([SEGMENTS[s].value for s in segment]),
            "signup_date": pa.array(signup.astype(np.int32), type=pa.date32()),
            "home_lat": pa.array(home_lat),
            "home_lon": pa.array(home_lon),
        }
    )
    segment_activity = np.array([1.0, 1.3, 1.7])[segment]
    segment_spend = np.array([1.0, 1.6, 1.3])[segment]
    return Customers(
        table=table,
        city=city,
        currency=cities.currency[city],
        activity=rng.lognormal(0.0, 0.8, n) * segment_activity,
        spend_scale=rng.lognormal(0.0, 0.35, n) * segment_spend,
        online_share=rng.beta(2.0, 6.0, n),
        card_last4=rng.integers(0, 10_000, n),
        devices=rng.integers(1 << 40, 1 << 48, (n, 2)),
    )


def make_merchants(config: SimulationConfig, cities: CityTable) -> Merchants:
    rng = config.world.rng("merchants")
    n = config.world.merchants
    n_online = max(MIN_ONLINE_MERCHANTS, round(n * ONLINE_MERCHANT_SHARE))
    n_physical = n - n_online
    is_online = np.zeros(n, dtype=bool)
    is_online[rng.permutation(n)[:n_online]] = True
    # every city gets at least one store, the rest follow population
    physical_city = np.concatenate(
        [np.arange(len(CITIES)), weighted_choice(cities.weight, n_physical - len(CITIES), rng)]
    )
    city = np.empty(n, dtype=np.int64)
    city[~is_online] = rng.permutation(physical_city)
    city[is_online] = weighted_choice(cities.weight, n_online, rng)
    store_share = np.array([CATEGORIES[c].store_share for c in CATEGORY_CODES])
    online_share = np.array([CATEGORIES[c].online_share for c in CATEGORY_CODES])
    category = np.empty(n, dtype=np.int64)
    category[~is_online] = weighted_choice(store_share, n_physical, rng)
    # every category sold online has at least one online merchant, the rest follow the shares
    sold_online = np.flatnonzero(online_share > 0)
    category[is_online] = rng.permutation(
        np.concatenate([sold_online, weighted_choice(online_share, n_online - len(sold_online), rng)])
    )
    lat = _jitter(cities.lat[city], 5.0, rng)
    lon = _jitter(cities.lon[city], 5.0, rng, longitude_of=cities.lat[city])
    brand_pick = rng.random(n)
    names = []
    for c, k, online, u in zip(city, category, is_online, brand_pick, strict=True):
        brands = CATEGORIES[CATEGORY_CODES[k]].brands
        brand = brands[int(u * len(brands))]
        names.append(f"{brand} Online" if online else f"{brand} {CITIES[c].name}")
    visit_rate = np.array([CATEGORIES[c].visit_rate for c in CATEGORY_CODES])
    table = pa.table(
        {
            "merchant_id": fixed_width_ids("M", np.arange(n), 6),
            "name": string_column(names),
            "category": string_column([CATEGORY_CODES[k].value for k in category]),
            "mcc": string_column([CATEGORIES[CATEGORY_CODES[k]].mcc for k in category]),
            "city": string_column([CITIES[c].name for c in city]),
            "region": string_column([CITIES[c].region for c in city]),
            "country": string_column([CITIES[c].country for c in city]),
            "timezone": string_column([CITIES[c].timezone for c in city]),
            "lat": pa.array(lat),
            "lon": pa.array(lon),
            "is_online": pa.array(is_online),
        }
    )
    popularity = visit_rate[category] * rng.lognormal(0.0, 0.7, n)
    return Merchants(table, city, category, is_online, lat, lon, popularity)


# product -> (weight among policies, median premium, premium sigma, coverage choices, deductible choices)
PRODUCT_TERMS: dict[Product, tuple[float, float, float, tuple[float, ...], tuple[float, ...]]] = {
    Product.AUTO: (0.35, 950.0, 0.35, (50_000, 100_000, 250_000), (250, 500, 1_000)),
    Product.HOME: (0.28, 620.0, 0.40, (150_000, 300_000, 500_000, 800_000), (250, 500, 1_000, 2_500)),
    Product.HEALTH: (0.15, 3_200.0, 0.30, (100_000, 500_000, 2_000_000), (0, 500, 1_500)),
    Product.TRAVEL: (0.12, 190.0, 0.30, (50_000, 250_000, 500_000), (0, 100)),
    Product.LIFE: (0.10, 480.0, 0.50, (100_000, 250_000, 500_000, 1_000_000), (0,)),
}


RENEWAL_RATE = 0.9  # share of annual policies renewed at each anniversary (the rest lapse)
PREMIUM_CHANGE = (0.03, 0.06)  # log-normal mean and sigma of a premium's change at renewal
TERM_DAYS = 365


def make_policies(config: SimulationConfig, customers: Customers, cities: CityTable) -> Policies:
    """The world's policies, with every renewal term that has begun by the end of ``config``'s window.

    The first terms depend on the world only; renewal ``k`` of every policy is drawn from a stream of
    its own, so a later window adds rows (terms that have begun since) and never redraws one: the
    policy administration system issues a renewal, it does not rewrite the expired term."""
    world = config.world
    rng = world.rng("policies")
    n = world.policies
    holder = rng.integers(0, world.customers, n)
    product = weighted_choice(np.array([PRODUCT_TERMS[p][0] for p in PRODUCTS]), n, rng)
    window_day = epoch_day(world.start.date())
    is_life = product == PRODUCTS.index(Product.LIFE)
    lapsed = (rng.random(n) < 0.12) & ~is_life
    start = rng.integers(window_day + world.days - 364, window_day - 35, n)
    start[lapsed] = rng.integers(window_day - 3 * 365, window_day - 400, int(lapsed.sum()))
    start[is_life] = rng.integers(window_day - 15 * 365, window_day - 35, int(is_life.sum()))
    end = np.where(is_life, start + 20 * 365, start + 364)
    premium = np.empty(n)
    coverage = np.empty(n)
    deductible = np.empty(n)
    for p, (_, median, sigma, limits, deductibles) in enumerate(PRODUCT_TERMS.values()):
        rows = np.flatnonzero(product == p)
        premium[rows] = np.round(median * rng.lognormal(0.0, sigma, len(rows)), 2)
        coverage[rows] = np.array(limits, dtype=np.float64)[rng.integers(0, len(limits), len(rows))]
        deductible[rows] = np.array(deductibles, dtype=np.float64)[rng.integers(0, len(deductibles), len(rows))]
    home = customers.city[holder]
    first_terms = {
        "policy_id": fixed_width_ids("P", np.arange(n), 7),
        "customer_id": fixed_width_ids("C", holder, 7),
        "product": string_column([PRODUCTS[p].value for p in product]),
        "region": string_column([cities.regions[r] for r in cities.region[home]]),
        "currency": string_column([CURRENCY_CODES[c].value for c in cities.currency[home]]),
        "start_date": pa.array(start.astype(np.int32), type=pa.date32()),
        "end_date": pa.array(end.astype(np.int32), type=pa.date32()),
        "annual_premium": pa.array(premium),
        "coverage_limit": pa.array(coverage),
        "deductible": pa.array(deductible),
    }
    table = pa.table(first_terms)
    window_end = epoch_day(config.start.date()) + config.days  # the day after the window, as active_in sees it
    renewals, covered_to = _renewals(world, start, end, premium, ~is_life & ~lapsed, window_end)
    if renewals:
        table = pa.concat_tables([table, *(_renewal_rows(table, *renewal) for renewal in renewals)])
    active = active_in(start, covered_to, config)
    return Policies(table, holder, product, start, covered_to, coverage, deductible, active)


Renewal = tuple[IntArray, IntArray, FloatArray]  # (policy index, first day of the term, its premium)


def _renewals(
    world: WorldSpec, start: IntArray, end: IntArray, premium: FloatArray, renewable: BoolArray, until_day: int
) -> tuple[list[Renewal], IntArray]:
    """The renewal terms that begin on or before ``until_day``, and each policy's last day of cover.

    Renewal ``k`` of every policy is drawn from stream ``policy-renewal-k`` whatever the window, so the
    terms a later window adds never change an earlier one's."""
    renewed, covered_to, current = renewable.copy(), end.copy(), premium.copy()
    renewals: list[Renewal] = []
    k = 1
    while True:
        term_start = start + k * TERM_DAYS
        if not (renewed & (term_start <= until_day)).any():
            return renewals, covered_to
        rng = world.rng(f"policy-renewal-{k}")
        stays, change = rng.random(len(start)) < RENEWAL_RATE, rng.lognormal(*PREMIUM_CHANGE, len(start))
        renewed &= stays
        current = np.minimum(np.round(current * change, 2), 1_000_000.0)
        begun = np.flatnonzero(renewed & (term_start <= until_day))
        covered_to[begun] = term_start[begun] + TERM_DAYS - 1
        shown = begun[term_start[begun] < until_day]  # the table holds terms begun within the window
        if len(shown):
            renewals.append((shown, term_start[shown], current[shown]))
        k += 1


def _renewal_rows(first_terms: pa.Table, policy: IntArray, term_start: IntArray, premium: FloatArray) -> pa.Table:
    """A renewal: the policy's first-term row with the new term's dates and premium."""
    rows = first_terms.take(pa.array(policy))
    for name, values in (
        ("start_date", pa.array(term_start.astype(np.int32), type=pa.date32())),
        ("end_date", pa.array((term_start + TERM_DAYS - 1).astype(np.int32), type=pa.date32())),
        ("annual_premium", pa.array(premium)),
    ):
        rows = rows.set_column(rows.schema.get_field_index(name), name, values)
    return rows


def active_in(start: IntArray, covered_to: IntArray, config: SimulationConfig) -> BoolArray:
    """Policies covering the run's whole window and the 30 days before it (claims come from these)."""
    window_day = epoch_day(config.start.date())
    return (start <= window_day - 31) & (covered_to >= window_day + config.days)
