"""The simulated source system's memory: which windows of its world it already produced.

Invariant: a lab has one simulated world, fixed by its first simulation (run 0: seed, anchor date,
numbers of customers, merchants and policies) and recorded in PostgreSQL (``simulator.runs``), the
source side of the lab. Every later run is a *continuation*: the same world (so the reference data it
upserts is identical and changes nothing), the next time window (it starts where the latest run's
window ended) and event ids of its own (its random streams include the run number). A run is claimed
under a table lock before anything is sent, so two simulators never produce the same window.

Re-sending a batch is only ever asked for: ``replay`` rebuilds a recorded run's exact configuration
(the same events, so silver's deduplication has something to do), and ``same_or_next`` lets the demo
and the orchestrators' simulate task recognise a run they already made with the same parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from mdslab import database
from mdslab.errors import MdslabError
from mdslab.settings import PostgresSettings
from mdslab.workloads.simulator import SimulationConfig
from mdslab.workloads.simulator.config import WorldSpec

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS simulator;
CREATE TABLE IF NOT EXISTS simulator.runs (
    run integer PRIMARY KEY,
    transactions bigint NOT NULL,
    seed bigint NOT NULL,
    invalid_share double precision NOT NULL,
    window_start timestamptz NOT NULL,
    days integer NOT NULL,
    first_claim bigint NOT NULL DEFAULT 1,
    world jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


class UnknownRunError(MdslabError):
    """A replay asked for a run this lab never simulated."""


@dataclass(frozen=True)
class PlannedRun:
    config: SimulationConfig
    new: bool  # False: a recorded run rebuilt (a replay, or the same parameters as before)

    @property
    def describe(self) -> str:
        """One line for logs and the CLI: which run, which window."""
        end = self.config.start + timedelta(days=self.config.days)
        what = "new run" if self.new else "recorded run"
        return (
            f"{what} {self.config.run}: {self.config.transactions:,} transactions, "
            f"{self.config.start:%Y-%m-%d} to {end:%Y-%m-%d} (seed {self.config.seed})"
        )


def _world_json(world: WorldSpec) -> str:
    return json.dumps(
        {
            "seed": world.seed,
            "start": world.start.isoformat(),
            "days": world.days,
            "customers": world.customers,
            "merchants": world.merchants,
            "policies": world.policies,
        }
    )


def _world(raw: dict[str, Any]) -> WorldSpec:
    return WorldSpec(
        seed=int(raw["seed"]),
        start=datetime.fromisoformat(raw["start"]),
        days=int(raw["days"]),
        customers=int(raw["customers"]),
        merchants=int(raw["merchants"]),
        policies=int(raw["policies"]),
    )


def _config(row: tuple[Any, ...]) -> SimulationConfig:
    run, transactions, seed, invalid_share, window_start, days, first_claim, world = row
    spec = _world(world if isinstance(world, dict) else json.loads(world))
    return SimulationConfig(
        transactions=int(transactions),
        seed=int(seed),
        start=window_start,
        days=int(days),
        invalid_share=float(invalid_share),
        run=int(run),
        world_spec=spec if run else None,
        first_claim=int(first_claim),
    )


_COLUMNS = "run, transactions, seed, invalid_share, window_start, days, first_claim, world"


def _claim(
    conn: psycopg.Connection, *, transactions: int, seed: int, invalid_share: float, reuse_same: bool
) -> PlannedRun:
    conn.execute(SCHEMA_SQL)
    conn.execute("LOCK TABLE simulator.runs IN EXCLUSIVE MODE")
    if reuse_same:
        same = conn.execute(
            f"SELECT {_COLUMNS} FROM simulator.runs WHERE transactions = %s AND seed = %s AND invalid_share = %s "
            "ORDER BY run DESC LIMIT 1",
            (transactions, seed, invalid_share),
        ).fetchone()
        if same is not None:
            return PlannedRun(_config(same), new=False)
    first = conn.execute(f"SELECT {_COLUMNS} FROM simulator.runs WHERE run = 0").fetchone()
    if first is None:
        config = SimulationConfig(transactions=transactions, seed=seed, invalid_share=invalid_share)
    else:
        recorded = [_config(row) for row in conn.execute(f"SELECT {_COLUMNS} FROM simulator.runs").fetchall()]
        config = SimulationConfig(
            transactions=transactions,
            seed=seed,
            start=max(r.start + timedelta(days=r.days) for r in recorded),
            invalid_share=invalid_share,
            run=max(r.run for r in recorded) + 1,
            world_spec=_config(first).world,
            first_claim=max(r.first_claim + r.n_claims for r in recorded),
        )
    conn.execute(
        f"INSERT INTO simulator.runs ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            config.run,
            config.transactions,
            config.seed,
            config.invalid_share,
            config.start,
            config.days,
            config.first_claim,
            _world_json(config.world),
        ),
    )
    return PlannedRun(config, new=True)


def next_run(
    pg: PostgresSettings, *, transactions: int, seed: int, invalid_share: float = 0.02, reuse_same: bool = False
) -> PlannedRun:
    """Claim the world's next window for a run of ``transactions`` (the first run creates the world).

    With ``reuse_same`` a recorded run with exactly these parameters is returned instead, unclaimed:
    re-running the demo as before is then recognised (and its events are not sent twice)."""
    with database.connect(pg) as conn:
        return _claim(conn, transactions=transactions, seed=seed, invalid_share=invalid_share, reuse_same=reuse_same)


def replay(pg: PostgresSettings, run: int) -> PlannedRun:
    """A recorded run's exact configuration, to send its events again on purpose."""
    with database.connect(pg) as conn:
        conn.execute(SCHEMA_SQL)
        row = conn.execute(f"SELECT {_COLUMNS} FROM simulator.runs WHERE run = %s", (run,)).fetchone()
        if row is None:
            known = [r[0] for r in conn.execute("SELECT run FROM simulator.runs ORDER BY run").fetchall()]
            runs = f"runs 0 to {known[-1]}" if known else "no run yet"
            raise UnknownRunError(f"simulation run {run} does not exist in this lab ({runs}): nothing to replay")
    return PlannedRun(_config(row), new=False)


def recorded_runs(pg: PostgresSettings) -> list[SimulationConfig]:
    """Every run of this lab's simulator, oldest first."""
    with database.connect(pg) as conn:
        conn.execute(SCHEMA_SQL)
        rows = conn.execute(f"SELECT {_COLUMNS} FROM simulator.runs ORDER BY run").fetchall()
    return [_config(row) for row in rows]
