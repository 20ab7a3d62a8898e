"""Incremental recipes: what each step reads and writes when it only processes what changed.

Silver: the bronze rows committed after the versions silver recorded go through the same SQL plan as a
full build, with the event ids silver already holds as an extra input (``seen``), so a copy of an
event received before is quarantined as a duplicate exactly as a full build would; the new silver and
quarantine rows are appended.

Gold: every output row is a function of some scope of silver: a customer's transactions (daily spend,
point-in-time fraud features over a customer's own history, claims features over the customer's and
their policies' claims) or a month (monthly claims). The increment finds the scopes the new rows touch
(including transactions whose fraud label arrived since), recomputes those scopes whole from the current
silver with the same SQL plan, and MERGEs the rows by the table's key. Late events are therefore
placed correctly: a customer's windows are recomputed over their whole history.

Increments run the plans on DuckDB in this process: a batch is small next to the lake, and a Spark
session (~15-20 s to start here, seconds per job) would cost more than the work. Full builds, where
the volume is, run on Spark. Both engines run the same SQL text (``tests/integration/test_pipeline.py``
checks they agree), and ``tests/integration/test_incremental.py`` that N increments equal a full build.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from mdslab.workloads.pipeline.dialect import DUCKDB, Dialect
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.framework import Incremental, PipelineContext, StepOutput, Versions
from mdslab.workloads.pipeline.plan import SqlPlan

SilverPlanFactory = Callable[..., SqlPlan]
Scope = Callable[[PipelineContext, Versions, Versions], pa.Array]


def _new(ctx: PipelineContext, table: str, base: Versions, current: Versions, columns: list[str]) -> pa.Table:
    return ctx.lake.appended_rows(table, after=int(base[table]), to=int(current[table]), columns=columns)


def silver_increment(factory: SilverPlanFactory, events_table: str) -> Incremental:
    """New bronze events through the incremental silver plan; silver and quarantine rows appended."""
    plan = factory(DUCKDB, incremental=True)
    seen_columns = {"seen_silver": ["event_id"], "seen_quarantine": ["event_id", "reason_codes"]}

    def build(ctx: PipelineContext, base: Versions, current: Versions) -> StepOutput:
        new = ctx.lake.appended_rows(events_table, after=int(base[events_table]), to=int(current[events_table]))
        inputs: dict[str, pa.Table] = {}
        for view, table in plan.inputs.items():
            if table == events_table:
                inputs[view] = new
            elif view in seen_columns:  # the outputs as last built: their latest versions
                inputs[view] = ctx.lake.read_table(table, columns=seen_columns[view])
            else:
                inputs[view] = ctx.lake.read_table(table, version=int(current[table]))
        outputs = run_duckdb(plan, inputs)
        return StepOutput(outputs, new.num_rows, modes=dict.fromkeys(outputs, "append"))

    return Incremental(changes=(events_table,), build=build)


def gold_increment(
    factory: Callable[[Dialect], SqlPlan],
    *,
    scoped: str,
    column: str,
    scope: Scope,
    changes: tuple[str, ...],
    narrow: dict[str, str] | None = None,
) -> Incremental:
    """Recompute the rows of the ``scoped`` input view whose ``column`` is in ``scope(...)`` and MERGE
    the results. ``narrow`` (view -> column) reads other views only for the values the scoped rows hold."""
    plan = factory(DUCKDB)

    def build(ctx: PipelineContext, base: Versions, current: Versions) -> StepOutput:
        keys = pc.unique(scope(ctx, base, current))
        scoped_rows = ctx.lake.read_table(
            plan.inputs[scoped], version=int(current[plan.inputs[scoped]]), filters=pc.field(column).isin(keys)
        )
        inputs = {scoped: scoped_rows}
        for view, table in plan.inputs.items():
            if view == scoped:
                continue
            by = (narrow or {}).get(view)
            filters = pc.field(by).isin(pc.unique(scoped_rows.column(by))) if by else None
            inputs[view] = ctx.lake.read_table(table, version=int(current[table]), filters=filters)
        outputs = run_duckdb(plan, inputs)
        return StepOutput(outputs, scoped_rows.num_rows, modes=dict.fromkeys(outputs, "merge"))

    return Incremental(changes=changes, build=build)


def new_values(table: str, column: str) -> Scope:
    """The scope is the ``column`` values of the rows ``table`` gained."""

    def scope(ctx: PipelineContext, base: Versions, current: Versions) -> pa.Array:
        return _new(ctx, table, base, current, [column]).column(column).combine_chunks()

    return scope


def customers_with_new_transactions_or_labels(ctx: PipelineContext, base: Versions, current: Versions) -> pa.Array:
    """Customers with new transactions, and those of transactions whose fraud label arrived since."""
    customers = _new(ctx, "silver.transactions", base, current, ["customer_id"]).column("customer_id")
    labelled = _new(ctx, "bronze.fraud_labels", base, current, ["event_id"]).column("event_id")
    if len(labelled):
        owners = ctx.lake.read_table(
            "silver.transactions",
            version=int(current["silver.transactions"]),
            columns=["customer_id"],
            filters=pc.field("event_id").isin(pc.unique(labelled)),
        ).column("customer_id")
        customers = pa.chunked_array([*customers.chunks, *owners.chunks], pa.string())
    return customers.combine_chunks()
