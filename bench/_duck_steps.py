"""The pipeline's SQL steps on DuckDB, shaped like the Spark steps so the framework runs both alike.

Each step reads its inputs at the pinned snapshot versions with delta-rs, runs the same
:class:`~mdslab.workloads.pipeline.plan.SqlPlan` (DuckDB dialect) in-process, and hands Arrow tables
to :func:`~mdslab.workloads.pipeline.step_runtime.run_step`, which writes them through the same
Lakehouse path (schema conformance, Delta commit with the step's stamp) as the Spark outputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import pyarrow as pa

from mdslab.lakehouse import Lakehouse
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.step_runtime import PipelineContext, Step, StepOutput, Versions
from mdslab.workloads.pipeline.steps import PLANS, STEPS

# The five steps the figures in bench/README.md were measured on (gold_claims_features came later).
BENCH_STEPS = ("silver_transactions", "silver_claims", "gold_daily_spend", "gold_fraud_features", "gold_claims_monthly")


@dataclass
class DuckTimes:
    """Per step: seconds reading the inputs from the lake, and seconds inside DuckDB."""

    read: dict[str, float] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)


def read_snapshot(lake: Lakehouse, name: str, version: int) -> pa.Table:
    """A snapshot through delta-rs's native scan: the fastest reader here (~2-3x ``to_pyarrow_table``)."""
    scan = lake.delta(name, version=version).scan()
    return pa.RecordBatchReader.from_stream(scan).read_all()


def duckdb_steps(times: DuckTimes, *, threads: int | None = None) -> list[Step]:
    """The five SQL steps (same names, inputs and outputs as the Spark ones) on DuckDB."""
    spark_steps = {step.name: step for step in STEPS}
    return [_duckdb_step(spark_steps[name], name, times, threads) for name in BENCH_STEPS]


def _duckdb_step(like: Step, name: str, times: DuckTimes, threads: int | None) -> Step:
    plan = PLANS[name](DUCKDB)

    def build(ctx: PipelineContext, versions: Versions) -> StepOutput:
        started = time.perf_counter()
        inputs = {view: read_snapshot(ctx.lake, table, int(versions[table])) for view, table in plan.inputs.items()}
        times.read[name] = time.perf_counter() - started
        started = time.perf_counter()
        outputs = run_duckdb(plan, inputs, threads=threads)
        times.compute[name] = time.perf_counter() - started
        first = next(iter(plan.inputs.values()))
        return StepOutput(outputs, ctx.lake.row_count(first, version=int(versions[first])))

    return Step(name, like.layer, like.inputs, like.outputs, build, f"{like.description} (DuckDB)")


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
