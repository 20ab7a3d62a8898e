"""PostgreSQL reference tables -> bronze snapshots, replaced only when their content changed."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from mdslab.workloads import reference
from mdslab.workloads.pipeline.framework import PipelineContext, Step, StepOutput, Versions

OUTPUTS = tuple(f"bronze.{table.name}" for table in reference.REFERENCE_TABLES)


def _snapshots(ctx: PipelineContext) -> dict[str, pa.Table]:
    """Read once per run and keep, so the fingerprints and the written rows are the same snapshot."""
    if "reference" not in ctx.scratch:
        ctx.scratch["reference"] = {
            f"bronze.{table.name}": reference.read(
                ctx.settings.postgres, table, ctx.lake.spec(f"bronze.{table.name}").schema
            )
            for table in reference.REFERENCE_TABLES
        }
    snapshots: dict[str, pa.Table] = ctx.scratch["reference"]
    return snapshots


def _versions(ctx: PipelineContext) -> Versions:
    return {
        f"postgres:{reference.SCHEMA}.{name.removeprefix('bronze.')}": reference.fingerprint(data)
        for name, data in _snapshots(ctx).items()
    }


def _build(ctx: PipelineContext, _versions: Versions) -> StepOutput:
    extracted_at = datetime.now(UTC)
    tables = {}
    for name, data in _snapshots(ctx).items():
        stamp = pa.array([extracted_at] * data.num_rows, pa.timestamp("us", tz="UTC"))
        tables[name] = data.append_column("extracted_at", stamp)
    return StepOutput(tables, rows_in=sum(t.num_rows for t in tables.values()))


REFERENCE_STEP = Step(
    name="reference",
    layer="bronze",
    inputs=(),
    outputs=OUTPUTS,
    build=_build,
    description="Snapshot customers, merchants and policies from PostgreSQL into bronze.",
    input_versions=_versions,
)
