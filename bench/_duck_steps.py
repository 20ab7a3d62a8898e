"""The pipeline's SQL steps on DuckDB, shaped like the Spark steps so ``run_step`` runs both alike: each
reads its inputs at the pinned versions with delta-rs, runs the same ``SqlPlan`` (DuckDB dialect)
in-process, and hands Arrow tables to the same Lakehouse write (schema conformance, Delta commit).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pyarrow as pa

from mdslab.lakehouse import Lakehouse
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.step_runtime import PipelineContext, Step, StepOutput, Versions
from mdslab.workloads.pipeline.steps import PLANS, STEPS

# The five steps the figures in bench/README.md were measured on (gold_claims_features came later).
BENCH_STEPS = ("silver_transactions", "silver_claims", "gold_daily_spend", "gold_fraud_features", "gold_claims_monthly")
SQL_STEPS = [step for step in STEPS if step.name in BENCH_STEPS]


@dataclass
class DuckTimes:
    """Per step: seconds reading the inputs from the lake (the rest of the build is DuckDB's compute)."""

    read: dict[str, float] = field(default_factory=dict)


def read_snapshot(lake: Lakehouse, name: str, version: int) -> pa.Table:
    """A snapshot through delta-rs's native scan: the fastest reader here (~2-3x ``to_pyarrow_table``)."""
    return pa.RecordBatchReader.from_stream(lake.delta(name, version=version).scan()).read_all()


def duckdb_steps(times: DuckTimes, *, threads: int | None = None) -> list[Step]:
    """The five SQL steps (same names, inputs and outputs as the Spark ones) on DuckDB."""
    return [_duckdb_step(step, times, threads) for step in SQL_STEPS]


def _duckdb_step(like: Step, times: DuckTimes, threads: int | None) -> Step:
    plan = PLANS[like.name](DUCKDB)

    def build(ctx: PipelineContext, versions: Versions) -> StepOutput:
        started = time.perf_counter()
        inputs = {view: read_snapshot(ctx.lake, table, int(versions[table])) for view, table in plan.inputs.items()}
        times.read[like.name] = time.perf_counter() - started
        first = next(iter(plan.inputs.values()))
        return StepOutput(
            run_duckdb(plan, inputs, threads=threads), ctx.lake.row_count(first, version=int(versions[first]))
        )

    return Step(like.name, like.layer, like.inputs, like.outputs, build, f"{like.description} (DuckDB)")
