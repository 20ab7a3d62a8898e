"""The bronze that bench/pipeline.py and bench/train.py build from: one simulated batch per size and seed,
landed once in its own raw bucket and database (``bench-n{rows}-s{seed}``) and reused by later runs of
either script (same seed and size, same bytes), read at pinned versions so every engine and run sees the
same snapshot.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, replace

from _duck_steps import SQL_STEPS
from _harness import lab

from mdslab.settings import Settings
from mdslab.workloads.file_drop_feed import batch_id_for, drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.reference_step import REFERENCE_STEPS
from mdslab.workloads.pipeline.step_runtime import PipelineContext, SparkProvider, Step, Versions, run_step
from mdslab.workloads.simulator import SimulationConfig, simulate

BRONZE_EVENT_TABLES = ("bronze.transactions", "bronze.claims", "bronze.fraud_labels")


@dataclass
class Bronze:
    rows: int
    seed: int
    pinned: dict[str, int]  # bronze table -> the version every build reads
    landed_now: bool


def size_lab(base: Settings, rows: int, seed: int, curated: str, *, create: bool = True) -> Settings:
    """The size's bronze (raw bucket and reference database) with ``curated`` outputs of one script or engine."""
    return lab(base, f"bench-n{rows}-s{seed}", curated=curated, create=create)


def land(settings: Settings, rows: int, seed: int) -> Bronze:
    """Simulate and land the batch unless an earlier run did, snapshot the reference data, and pin every
    bronze version the SQL steps read."""
    lake = lakehouse(settings)
    config = SimulationConfig(transactions=rows, seed=seed)
    batch = f"landing:{batch_id_for(config)}"  # the app id landing commits with (workloads.bronze_landing)
    landed_now = any(lake.transaction_version(table, batch) is None for table in BRONZE_EVENT_TABLES)
    if landed_now:
        drop_batch(settings, lake, simulate(config))
        gc.collect()
    ctx = PipelineContext(settings, lake, SparkProvider(settings))
    for step in REFERENCE_STEPS:
        run_step(ctx, step)
    pinned = {}
    for table in sorted({table for step in SQL_STEPS for table in step.inputs if table.startswith("bronze.")}):
        if (version := lake.version(table)) is None:
            raise RuntimeError(f"{table} is missing after landing in {settings.lake.raw_bucket}")
        pinned[table] = version
    return Bronze(rows, seed, pinned, landed_now)


def pinned(step: Step, versions: dict[str, int]) -> Step:
    """The step reading ``versions`` of the tables named there, and the latest version of the others
    (the silver tables a gold step reads were just built by the same engine)."""

    def input_versions(ctx: PipelineContext) -> Versions:
        found: Versions = {}
        for table in step.inputs:
            version = versions[table] if table in versions else ctx.lake.version(table)
            if version is None:
                raise RuntimeError(f"{step.name} needs {table}, which this engine has not built")
            found[table] = version
        return found

    return replace(step, input_versions=input_versions)


def vacuum(settings: Settings, tables: list[str]) -> None:
    """Delete the files of earlier runs' output versions, so repeated runs do not fill the disk."""
    lake = lakehouse(settings)
    for table in tables:
        if lake.exists(table):
            lake.delta(table).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
