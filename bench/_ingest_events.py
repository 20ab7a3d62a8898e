"""The simulated transactions bench/ingest.py sends: the same payloads and partition keys go through
the raw producer (the ceiling) and through the API, so the two are compared on equal events."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from mdslab.workloads.ingestion.events import TRANSACTIONS


@dataclass
class Events:
    """Simulated valid transactions (no planted defects): payload bytes and their partition keys."""

    payloads: list[bytes]
    keys: list[bytes]

    @classmethod
    def simulate(cls, count: int, seed: int) -> Events:
        from mdslab.workloads.simulator import SimulationConfig, simulate

        data = simulate(SimulationConfig(transactions=max(count, 1_000), seed=seed, invalid_share=0.0))
        payloads = [value.encode() for value in data.transactions.column("payload").to_pylist()[:count]]
        keys = [str(orjson.loads(payload)[TRANSACTIONS.key_field]).encode() for payload in payloads]
        return cls(payloads, keys)

    def take(self, count: int) -> Events:
        taken = Events(self.payloads[:count], self.keys[:count])
        del self.payloads[:count], self.keys[:count]
        return taken
