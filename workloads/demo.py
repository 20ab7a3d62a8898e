"""The lab's main job: simulate a batch, land it in bronze, run the medallion pipeline, summarise.

The CLI's ``mdslab demo`` is a thin shell over :func:`run_demo` (after starting the services)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc

from mdslab.lakehouse import Lakehouse, TableInfo
from mdslab.settings import Settings
from mdslab.workloads.batch_drop import DropReport, drop_batch
from mdslab.workloads.pipeline.framework import SparkProvider
from mdslab.workloads.pipeline.runner import PipelineReport, lakehouse, run_pipeline
from mdslab.workloads.simulator import SimulationConfig, simulate

QUARANTINE_TABLES = ("silver.quarantine_transactions", "silver.quarantine_claims")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoReport:
    rows: int
    seed: int
    drop: DropReport
    pipeline: PipelineReport
    tables: list[TableInfo]
    quarantine_reasons: dict[str, dict[str, int]]
    simulate_s: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The summary a script would read (``mdslab demo --json``)."""
        return {
            "rows": self.rows,
            "seed": self.seed,
            "batch_id": self.drop.batch_id,
            "landed": {r.table: {"rows": r.rows, "skipped": r.skipped} for r in self.drop.landed},
            "planted_defects": self.drop.planted_defects,
            "tables": [
                {
                    "name": t.name,
                    "layer": str(t.layer),
                    "version": t.version,
                    "rows": t.rows,
                    "files": t.files,
                }
                for t in self.tables
            ],
            "quarantined": {name: sum(codes.values()) for name, codes in self.quarantine_reasons.items()},
            "quarantine_reasons": self.quarantine_reasons,
            "steps": [
                {
                    "step": r.step,
                    "status": r.status,
                    "seconds": round(r.seconds, 2),
                    "rows_in": r.rows_in,
                    "rows_out": r.rows_out,
                    "inputs": r.inputs,
                    "outputs": r.outputs,
                }
                for r in self.pipeline.results
            ],
            "seconds": {
                "simulate_and_land": round(self.simulate_s, 2),
                "spark_session_start": round(self.pipeline.spark_start_s or 0.0, 2),
                "lake_to_spark": round(self.pipeline.lake_to_spark_s, 2),
                "pipeline": round(self.pipeline.seconds, 2),
                "total": round(self.seconds, 2),
            },
        }


def quarantine_reasons(lake: Lakehouse) -> dict[str, dict[str, int]]:
    """Rejected rows per quarantine table, by reason code."""
    reasons: dict[str, dict[str, int]] = {}
    for name in QUARANTINE_TABLES:
        if not lake.exists(name):
            continue
        codes = pc.list_flatten(lake.read_table(name, columns=["reason_codes"]).column("reason_codes"))
        reasons[name] = dict(Counter(codes.to_pylist()).most_common())
    return reasons


def run_demo(
    settings: Settings,
    *,
    rows: int,
    seed: int,
    on_progress: Progress = lambda _msg: None,
    spark: SparkProvider | None = None,
) -> DemoReport:
    started = time.perf_counter()
    lake = lakehouse(settings)
    on_progress(f"simulating {rows:,} transactions (seed {seed})")
    data = simulate(SimulationConfig(transactions=rows, seed=seed))
    on_progress("landing the batch in bronze and reference data in PostgreSQL")
    drop = drop_batch(settings, lake, data)
    simulate_s = time.perf_counter() - started
    report = run_pipeline(
        settings,
        spark=spark,
        on_step=lambda name, index, total: on_progress(f"pipeline step {index + 1}/{total}: {name}"),
    )
    tables = [lake.info(spec.name) for spec in lake.registry]
    return DemoReport(
        rows, seed, drop, report, tables, quarantine_reasons(lake), simulate_s, time.perf_counter() - started
    )
