"""PostgreSQL reference tables -> bronze snapshots: one step per table, run when its content changed.

One step per table, so that a change to one (a policy renewed) leaves the others' bronze versions, and
every step that reads only those, alone. A snapshot that only *gained* rows (new customers, a policy's
next term) is appended: bronze then grows the way the source did, and readers that follow it (silver
claims follow the policies' terms) get the new rows from Delta's change feed instead of starting over.
Anything else (a row changed or gone) replaces the table, which its readers treat as a rewrite.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from mdslab.workloads import reference
from mdslab.workloads.pipeline.step_runtime import PipelineContext, Step, StepOutput, Versions, WriteMode


def _snapshot(ctx: PipelineContext, table: reference.ReferenceTable) -> pa.Table:
    """Read once per run and keep, so the fingerprint and the written rows are the same snapshot."""
    name = f"bronze.{table.name}"
    key = f"reference:{name}"
    if key not in ctx.scratch:
        ctx.scratch[key] = reference.read(ctx.settings.postgres, table, ctx.lake.spec(name).schema)
    snapshot: pa.Table = ctx.scratch[key]
    return snapshot


def _added_rows(current: pa.Table, snapshot: pa.Table, key: tuple[str, ...]) -> pa.Table | None:
    """The snapshot's rows that bronze does not hold yet, or None when bronze holds a row the snapshot
    does not (changed or deleted at the source): then only a replacement is exact."""
    con = duckdb.connect()
    try:
        con.register("current_rows", current.select(snapshot.column_names))
        con.register("snapshot_rows", snapshot)
        gone = con.execute("SELECT count(*) FROM (SELECT * FROM current_rows EXCEPT ALL SELECT * FROM snapshot_rows)")
        if gone.fetchall() != [(0,)]:
            return None
        order = ", ".join(key)
        added = con.sql(
            f"SELECT * FROM (SELECT * FROM snapshot_rows EXCEPT ALL SELECT * FROM current_rows) ORDER BY {order}"
        )
        return added.to_arrow_table().cast(snapshot.schema)
    finally:
        con.close()


def reference_step(table: reference.ReferenceTable) -> Step:
    name = f"bronze.{table.name}"

    def versions(ctx: PipelineContext) -> Versions:
        return {reference.source_name(table): reference.fingerprint(_snapshot(ctx, table))}

    def build(ctx: PipelineContext, _versions: Versions) -> StepOutput:
        snapshot = _snapshot(ctx, table)
        added = None
        if ctx.lake.exists(name):
            added = _added_rows(ctx.lake.read_table(name, columns=snapshot.column_names), snapshot, table.key)
        mode: WriteMode = "overwrite" if added is None else "append"
        rows = snapshot if added is None else added
        modes: dict[str, WriteMode] = {name: mode}
        stamp = pa.array([datetime.now(UTC)] * rows.num_rows, pa.timestamp("us", tz="UTC"))
        return StepOutput({name: rows.append_column("extracted_at", stamp)}, snapshot.num_rows, modes=modes)

    return Step(
        name=f"reference_{table.name}",
        layer="bronze",
        inputs=(),
        outputs=(name,),
        build=build,
        description=f"Snapshot {table.name} from PostgreSQL into bronze (new rows appended, a change replaces it).",
        input_versions=versions,
    )


REFERENCE_STEPS = tuple(reference_step(table) for table in reference.REFERENCE_TABLES)
