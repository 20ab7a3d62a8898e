"""Incremental recipes: what each step reads and writes when it only processes what changed.

Silver: the bronze rows committed after the versions silver recorded go through the same SQL plan as a
full build, with the event ids silver already holds as an extra input (``seen``), so a copy of an
event received before is quarantined as a duplicate exactly as a full build would; the new silver and
quarantine rows are appended.

Gold: every output row is a function of some scope of silver: a customer's day (daily spend), a
customer's history (point-in-time fraud features; claims features over the customer's and their
policies' claims) or a month (monthly claims). The increment finds the scopes the new rows touch
(including transactions whose fraud label arrived since), recomputes them from the current silver with
the same SQL plan, and MERGEs the rows by the table's key. Fraud features only look back, so of a
customer's rows only those from their earliest new transaction on (and the newly labelled ones) are
merged; a late event therefore shifts the windows of the later rows, as a full build would.

Increments run the plans on DuckDB in this process: a batch is small next to the lake, and a Spark
session (~15-20 s to start here, seconds per job) would cost more than the work. Full builds, where
the volume is, run on Spark. Both engines run the same SQL text (``tests/integration/test_pipeline.py``
checks they agree), and ``tests/integration/test_incremental.py`` that N increments equal a full build.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mdslab.workloads.pipeline.dialect import DUCKDB, Dialect
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.framework import Incremental, PipelineContext, StepOutput, Versions
from mdslab.workloads.pipeline.plan import SqlPlan

SilverPlanFactory = Callable[..., SqlPlan]
Scope = Callable[[PipelineContext, Versions, Versions], pc.Expression]
Keep = Callable[[PipelineContext, Versions, Versions, pa.Table], pa.Table]


def _new(ctx: PipelineContext, table: str, base: Versions, current: Versions, columns: list[str]) -> pa.Table:
    """The rows ``table`` gained since ``base`` (read once per run and step: scope and keep share it)."""
    key = f"appended:{table}:{base.get(table)}..{current.get(table)}:{','.join(columns)}"
    if key not in ctx.scratch:
        ctx.scratch[key] = ctx.lake.appended_rows(
            table, after=int(base[table]), to=int(current[table]), columns=columns
        )
    rows: pa.Table = ctx.scratch[key]
    return rows


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
    scope: Scope,
    changes: tuple[str, ...],
    narrow: dict[str, str] | None = None,
    keep: Keep | None = None,
) -> Incremental:
    """Recompute from the rows of the ``scoped`` input view that ``scope`` selects and MERGE the results
    (``keep``: only the output rows that can have changed). ``narrow`` (view -> column) reads other
    views only for the values the scoped rows hold."""
    plan = factory(DUCKDB)

    def build(ctx: PipelineContext, base: Versions, current: Versions) -> StepOutput:
        table = plan.inputs[scoped]
        scoped_rows = ctx.lake.read_table(table, version=int(current[table]), filters=scope(ctx, base, current))
        inputs = {scoped: scoped_rows}
        for view, name in plan.inputs.items():
            if view == scoped:
                continue
            by = (narrow or {}).get(view)
            filters = pc.field(by).isin(pc.unique(scoped_rows.column(by))) if by else None
            inputs[view] = ctx.lake.read_table(name, version=int(current[name]), filters=filters)
        outputs = run_duckdb(plan, inputs)
        if keep is not None:
            outputs = {name: keep(ctx, base, current, rows) for name, rows in outputs.items()}
        return StepOutput(outputs, scoped_rows.num_rows, modes=dict.fromkeys(outputs, "merge"))

    return Incremental(changes=changes, build=build)


def new_values(table: str, *columns: str) -> Scope:
    """Rows whose ``columns`` each hold a value of the rows ``table`` gained (e.g. the new rows' days
    and customers: every daily group a new row falls in, and partition pruning by day)."""

    def scope(ctx: PipelineContext, base: Versions, current: Versions) -> pc.Expression:
        new = _new(ctx, table, base, current, list(columns))
        expressions = [pc.field(column).isin(pc.unique(new.column(column))) for column in columns]
        return functools.reduce(operator.and_, expressions)

    return scope


def customers_with_new_transactions_or_labels(ctx: PipelineContext, base: Versions, current: Versions) -> pc.Expression:
    """Customers with new transactions, and those of transactions whose fraud label arrived since."""
    customers = _new(ctx, "silver.transactions", base, current, ["customer_id", "event_time"]).column("customer_id")
    labelled = _new(ctx, "bronze.fraud_labels", base, current, ["event_id"]).column("event_id")
    if len(labelled):
        owners = ctx.lake.read_table(
            "silver.transactions",
            version=int(current["silver.transactions"]),
            columns=["customer_id"],
            filters=pc.field("event_id").isin(pc.unique(labelled)),
        ).column("customer_id")
        customers = pa.chunked_array([*customers.chunks, *owners.chunks], pa.string())
    return pc.field("customer_id").isin(pc.unique(customers.combine_chunks()))


def since_first_new_event_or_labelled(
    ctx: PipelineContext, base: Versions, current: Versions, rows: pa.Table
) -> pa.Table:
    """Fraud features look back only: a customer's rows before their earliest new transaction are
    unchanged, and of those only the ones whose label arrived since need their label columns."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("features", rows)
        con.register("new_rows", _new(ctx, "silver.transactions", base, current, ["customer_id", "event_time"]))
        con.register("labelled", _new(ctx, "bronze.fraud_labels", base, current, ["event_id"]))
        return con.sql(
            "SELECT f.* FROM features f LEFT JOIN (SELECT customer_id, min(event_time) AS cutoff FROM new_rows "
            "GROUP BY customer_id) c ON f.customer_id = c.customer_id "
            "WHERE f.event_time >= c.cutoff OR f.event_id IN (SELECT event_id FROM labelled)"
        ).to_arrow_table()
    finally:
        con.close()
