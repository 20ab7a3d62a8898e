"""Places: a built-in list of real cities, their regions, currencies and time zones, and distances.

Customers and stores live in these cities so that "distance from home" and "local hour of day" are
meaningful features, and a card used in another country an hour after a home purchase looks like what
it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from mdslab.workloads.contracts import Currency

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class City:
    name: str
    country: str
    region: str
    lat: float
    lon: float
    timezone: str
    weight: float  # share of customers and stores, roughly metro population in millions


CITIES: tuple[City, ...] = (
    City("New York", "US", "US-Northeast", 40.7128, -74.0060, "America/New_York", 8.0),
    City("Boston", "US", "US-Northeast", 42.3601, -71.0589, "America/New_York", 2.5),
    City("Philadelphia", "US", "US-Northeast", 39.9526, -75.1652, "America/New_York", 3.0),
    City("Washington", "US", "US-Northeast", 38.9072, -77.0369, "America/New_York", 3.0),
    City("Pittsburgh", "US", "US-Northeast", 40.4406, -79.9959, "America/New_York", 1.2),
    City("Chicago", "US", "US-Midwest", 41.8781, -87.6298, "America/Chicago", 5.0),
    City("Detroit", "US", "US-Midwest", 42.3314, -83.0458, "America/Detroit", 2.0),
    City("Minneapolis", "US", "US-Midwest", 44.9778, -93.2650, "America/Chicago", 1.8),
    City("St. Louis", "US", "US-Midwest", 38.6270, -90.1994, "America/Chicago", 1.4),
    City("Atlanta", "US", "US-South", 33.7490, -84.3880, "America/New_York", 3.0),
    City("Miami", "US", "US-South", 25.7617, -80.1918, "America/New_York", 3.0),
    City("Dallas", "US", "US-South", 32.7767, -96.7970, "America/Chicago", 3.5),
    City("Houston", "US", "US-South", 29.7604, -95.3698, "America/Chicago", 3.5),
    City("Austin", "US", "US-South", 30.2672, -97.7431, "America/Chicago", 1.5),
    City("Nashville", "US", "US-South", 36.1627, -86.7816, "America/Chicago", 1.2),
    City("Denver", "US", "US-West", 39.7392, -104.9903, "America/Denver", 1.8),
    City("Phoenix", "US", "US-West", 33.4484, -112.0740, "America/Phoenix", 2.5),
    City("Los Angeles", "US", "US-West", 34.0522, -118.2437, "America/Los_Angeles", 6.0),
    City("San Francisco", "US", "US-West", 37.7749, -122.4194, "America/Los_Angeles", 3.0),
    City("San Diego", "US", "US-West", 32.7157, -117.1611, "America/Los_Angeles", 2.0),
    City("Seattle", "US", "US-West", 47.6062, -122.3321, "America/Los_Angeles", 2.5),
    City("Las Vegas", "US", "US-West", 36.1699, -115.1398, "America/Los_Angeles", 1.3),
    City("London", "GB", "UK", 51.5074, -0.1278, "Europe/London", 7.0),
    City("Manchester", "GB", "UK", 53.4808, -2.2426, "Europe/London", 1.8),
    City("Birmingham", "GB", "UK", 52.4862, -1.8904, "Europe/London", 1.6),
    City("Glasgow", "GB", "UK", 55.8642, -4.2518, "Europe/London", 1.0),
    City("Edinburgh", "GB", "UK", 55.9533, -3.1883, "Europe/London", 0.8),
    City("Bristol", "GB", "UK", 51.4545, -2.5879, "Europe/London", 0.7),
    City("Berlin", "DE", "DE", 52.5200, 13.4050, "Europe/Berlin", 3.5),
    City("Munich", "DE", "DE", 48.1351, 11.5820, "Europe/Berlin", 1.6),
    City("Hamburg", "DE", "DE", 53.5511, 9.9937, "Europe/Berlin", 1.8),
    City("Frankfurt", "DE", "DE", 50.1109, 8.6821, "Europe/Berlin", 1.2),
    City("Cologne", "DE", "DE", 50.9375, 6.9603, "Europe/Berlin", 1.1),
    City("Paris", "FR", "FR", 48.8566, 2.3522, "Europe/Paris", 5.0),
    City("Lyon", "FR", "FR", 45.7640, 4.8357, "Europe/Paris", 1.4),
    City("Marseille", "FR", "FR", 43.2965, 5.3698, "Europe/Paris", 1.2),
    City("Toulouse", "FR", "FR", 43.6047, 1.4442, "Europe/Paris", 0.9),
    City("Madrid", "ES", "ES", 40.4168, -3.7038, "Europe/Madrid", 3.3),
    City("Barcelona", "ES", "ES", 41.3874, 2.1686, "Europe/Madrid", 2.7),
    City("Rome", "IT", "IT", 41.9028, 12.4964, "Europe/Rome", 2.8),
    City("Milan", "IT", "IT", 45.4642, 9.1900, "Europe/Rome", 2.5),
    City("Amsterdam", "NL", "NL", 52.3676, 4.9041, "Europe/Amsterdam", 1.5),
    City("Rotterdam", "NL", "NL", 51.9244, 4.4777, "Europe/Amsterdam", 1.0),
    City("Dublin", "IE", "IE", 53.3498, -6.2603, "Europe/Dublin", 1.4),
)

REGIONS: tuple[str, ...] = tuple(dict.fromkeys(city.region for city in CITIES))
CURRENCY_BY_COUNTRY: dict[str, Currency] = {
    "US": Currency.USD,
    "GB": Currency.GBP,
    **{country: Currency.EUR for country in ("DE", "FR", "ES", "IT", "NL", "IE")},
}
CURRENCY_CODES: tuple[Currency, ...] = tuple(Currency)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CityTable:
    """The cities as columns, for vectorised look-ups by city index."""

    lat: FloatArray
    lon: FloatArray
    weight: FloatArray
    region: IntArray  # index into ``regions``
    currency: IntArray  # index into CURRENCY_CODES
    regions: tuple[str, ...]


def city_table() -> CityTable:
    return CityTable(
        lat=np.array([city.lat for city in CITIES]),
        lon=np.array([city.lon for city in CITIES]),
        weight=np.array([city.weight for city in CITIES]) / sum(city.weight for city in CITIES),
        region=np.array([REGIONS.index(city.region) for city in CITIES], dtype=np.int64),
        currency=np.array([CURRENCY_CODES.index(CURRENCY_BY_COUNTRY[city.country]) for city in CITIES], dtype=np.int64),
        regions=REGIONS,
    )


def utc_offsets_us(first_day: date, days: int) -> IntArray:
    """UTC offset in microseconds of each city on each local day, shape (cities, days).

    Taken at local noon: good enough for a daily curve (the hour around a DST switch is off by one).
    """
    offsets = np.empty((len(CITIES), days), dtype=np.int64)
    for i, city in enumerate(CITIES):
        zone = ZoneInfo(city.timezone)
        for d in range(days):
            noon = datetime.combine(first_day + timedelta(days=d), datetime.min.time().replace(hour=12))
            offset = noon.replace(tzinfo=zone).utcoffset() or timedelta(0)
            offsets[i, d] = int(offset.total_seconds()) * 1_000_000
    return offsets


def haversine_km(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    """Great-circle distance, vectorised; used to keep fraud jumps far away and legit trips plausible."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))  # type: ignore[no-any-return]
