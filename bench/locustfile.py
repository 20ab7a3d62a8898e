"""Locust load test of the ingestion API: single-event and batch POSTs of valid transactions, each with a
fresh ``event_id`` so every accepted one is a new row in bronze. How to run it and what it sends:
bench/README.md, "Load tests with Locust". This file needs only Locust, not mdslab. For figures against
the project's targets use ``python bench/ingest.py``: it also measures the consumer, bronze freshness and
the broker's own ceiling.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from locust import FastHttpUser, constant, task

API_KEY = os.environ.get("MDSLAB_API__API_KEY", "")
BATCH_SIZE = int(os.environ.get("INGEST_BATCH_SIZE", "500"))
if not API_KEY:
    raise SystemExit("set MDSLAB_API__API_KEY to the key the API was started with (`mdslab config` shows it)")

# The simulator's mix (seed 1, 5,000 transactions): channels, currencies, ATM withdrawals of round sums.
CHANNELS = (("contactless", 0.39), ("card_present", 0.27), ("online", 0.25), ("atm", 0.09))
CURRENCIES = (("USD", 0.54), ("EUR", 0.37), ("GBP", 0.09))
CITIES = ((40.7128, -74.006), (34.0522, -118.2437), (41.8781, -87.6298), (51.5074, -0.1278), (48.8566, 2.3522))


def _pick(choices: tuple[tuple[str, float], ...]) -> str:
    return random.choices([value for value, _ in choices], weights=[weight for _, weight in choices])[0]


def transaction() -> dict[str, Any]:
    """One valid event of the ``transaction`` contract (version 1.0.0)."""
    channel = _pick(CHANNELS)
    lat = lon = None
    if channel != "online":
        base_lat, base_lon = random.choice(CITIES)
        lat, lon = round(base_lat + random.uniform(-0.2, 0.2), 5), round(base_lon + random.uniform(-0.2, 0.2), 5)
    if channel == "atm":
        amount = float(random.choice((20, 40, 60, 100, 200, 300)))
    else:
        amount = min(49_999.0, round(random.lognormvariate(3.5, 0.9), 2) + 0.01)
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "event_id": str(uuid.uuid4()),
        "customer_id": f"C{random.randint(1, 200_000):07d}",
        "merchant_id": f"M{random.randint(1, 20_000):06d}",
        "amount": amount,
        "currency": _pick(CURRENCIES),
        "event_time": now,
        "channel": channel,
        "card_last4": f"{random.randint(0, 9999):04d}",
        "lat": lat,
        "lon": lon,
        "device_id": f"dev-{random.getrandbits(48):012x}" if channel == "online" else None,
    }


class IngestUser(FastHttpUser):
    """POSTs transactions as fast as the API answers (no think time)."""

    wait_time = constant(0)
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}  # noqa: RUF012

    def _post(self, body: bytes, count: int, name: str) -> None:
        with self.client.post(
            "/v1/transactions", data=body, headers=self.headers, name=name, catch_response=True
        ) as response:
            if response.status_code != 202:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
            elif json.loads(response.content or b"{}").get("accepted") != count:
                response.failure(f"202 but accepted != {count}")

    @task(10)
    def single(self) -> None:
        self._post(json.dumps(transaction()).encode(), 1, "POST /v1/transactions (1 event)")

    @task(1)
    def batch(self) -> None:
        events = [transaction() for _ in range(BATCH_SIZE)]
        self._post(json.dumps(events).encode(), BATCH_SIZE, f"POST /v1/transactions ({BATCH_SIZE} events)")
