"""The lake of one size in bench/train.py: bench/pipeline.py's bronze (landed once, reused by both
scripts) with this script's own curated bucket, and what one size's runs collect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mdslab import database, objectstore
from mdslab.lakehouse import Lakehouse
from mdslab.settings import LakeSettings, Settings
from mdslab.workloads.lake import build_registry

OUTPUT_TABLES = ("silver.transactions", "silver.quarantine_transactions", "gold.fraud_features")


def size_settings(base: Settings, rows: int, seed: int, *, create: bool) -> Settings:
    """bench/pipeline.py's bronze (raw bucket and reference database) and this script's curated bucket."""
    tag = f"bench-n{rows}-s{seed}"
    lake = LakeSettings(raw_bucket=f"{tag}-raw", curated_bucket=f"{tag}-train")
    pg = base.postgres.model_copy(update={"database": tag.replace("-", "_")})
    if create:
        objectstore.ensure_buckets(objectstore.s3_client(base.s3), [lake.raw_bucket, lake.curated_bucket])
        database.ensure_database(pg, pg.database)
    return base.model_copy(update={"lake": lake, "postgres": pg})


def open_lake(settings: Settings) -> Lakehouse:
    return Lakehouse.from_settings(settings, build_registry())


@dataclass
class SizeRun:
    rows: int
    seed: int
    settings: Settings
    bronze: dict[str, int] = field(default_factory=dict)
    landed_now: bool = False
    platform_runs: list[dict[str, Any]] = field(default_factory=list)
    baseline_runs: list[dict[str, Any]] = field(default_factory=list)
    silver_version: int | None = None
    gold_version: int | None = None

    @property
    def label(self) -> str:
        from pipeline import human_rows

        return human_rows(self.rows)

    @property
    def platform(self) -> dict[str, Any] | None:
        return _median_run(self.platform_runs)

    @property
    def baseline(self) -> dict[str, Any] | None:
        return _median_run(self.baseline_runs)


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run with the median total (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda run: float(run["total_s"]))
    return ordered[(len(ordered) - 1) // 2] if ordered else None


def land_size(base: Settings, rows: int, seed: int) -> SizeRun:
    """Land the batch unless landed earlier (bench/pipeline.py's ``land``) and pin its bronze versions."""
    from pipeline import SizeLake, land

    settings = size_settings(base, rows, seed, create=True)
    size = SizeLake(rows, seed, settings, settings)
    land(size)
    return SizeRun(rows, seed, settings, dict(size.pinned), size.landed_now)


def vacuum_outputs(size: SizeRun) -> None:
    """Delete the files of earlier runs' output versions, so repeated runs do not fill the disk."""
    lake = open_lake(size.settings)
    for table in OUTPUT_TABLES:
        if lake.exists(table):
            lake.delta(table).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
