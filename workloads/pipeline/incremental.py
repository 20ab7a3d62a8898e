"""Incremental recipes: what each step reads and writes when it only processes what changed.

Silver: the bronze rows committed after the versions silver recorded go through the same SQL plan as a
full build, with the event ids silver already holds as an extra input (``seen``), so a copy of an
event received before is quarantined as a duplicate exactly as a full build would; the new silver and
quarantine rows are appended.

Gold: every output row is a function of some scope of silver: a customer's day (daily spend), a
customer's history (point-in-time fraud features; claims features over the customer's and their
policies' claims) or a month (monthly claims). The increment finds the scopes the new rows touch,
recomputes them from the current silver with the same SQL plan, and MERGEs the rows by the table's key.

Fraud features only look back, so a customer's rows change from their earliest new (or newly
labelled) transaction on, the *start*; a late event therefore shifts the windows of the later rows, as a
full build would. Their cost must follow the batch, not the customer's whole history: every bounded
window looks back at most 30 days, so the plan gets the customer's rows from 30 days before the start,
and of the older history only the rows the unbounded features can see (the latest transaction, the
latest located one, the latest at each merchant the recent rows name). The plan's output for rows from
the start on is then exactly what it gives over the whole history.

Policies are kept by term, and a renewal is a new term appended to ``bronze.policies``. Silver and gold
claims follow those appended terms like new events instead of starting over: a claim is judged against
the latest term begun on or before its incident (``silver_sql.policy_term_of``), so a term added after
the others changes nothing already built unless a claim built earlier has its incident on or after the
new term's start (or names a policy that had no term). The increment checks exactly that over the
claims built before and asks for a full build when one does (:func:`policy_terms_guard`).

Increments run the plans on DuckDB in this process: a batch is small next to the lake, and a Spark
session (~15-20 s to start here, seconds per job) would cost more than the work. Full builds, where
the volume is, run on Spark. Both engines run the same SQL text (``tests/integration/test_pipeline.py``
checks they agree), and ``tests/integration/test_incremental.py`` that N increments equal a full build.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mdslab.workloads.pipeline.dialect import DUCKDB, Dialect
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.plan import SqlPlan
from mdslab.workloads.pipeline.silver_sql import CONFORMANCE_CODES
from mdslab.workloads.pipeline.step_runtime import (
    FullBuildNeededError,
    Incremental,
    PipelineContext,
    StepOutput,
    Versions,
)

SilverPlanFactory = Callable[..., SqlPlan]
Scope = Callable[[PipelineContext, Versions, Versions], pc.Expression]
Guard = Callable[[PipelineContext, Versions, Versions], None]  # raises FullBuildNeededError
EarlierClaims = Callable[[PipelineContext, Versions], pa.Table]  # policy_id, incident_date, incident_raw
POLICIES = "bronze.policies"


def _new(ctx: PipelineContext, table: str, base: Versions, current: Versions, columns: list[str]) -> pa.Table:
    """The rows ``table`` gained since ``base`` (read once per run and step)."""
    key = f"appended:{table}:{base.get(table)}..{current.get(table)}:{','.join(columns)}"
    if key not in ctx.scratch:
        ctx.scratch[key] = ctx.lake.appended_rows(
            table, after=int(base[table]), to=int(current[table]), columns=columns
        )
    rows: pa.Table = ctx.scratch[key]
    return rows


def silver_increment(factory: SilverPlanFactory, events_table: str, guard: Guard | None = None) -> Incremental:
    """New bronze events through the incremental silver plan; silver and quarantine rows appended.
    With a ``guard``, the policies' appended terms are followed too (see the module docstring)."""
    plan = factory(DUCKDB, incremental=True)
    seen_columns = {"seen_silver": ["event_id"], "seen_quarantine": ["event_id", "reason_codes"]}

    def build(ctx: PipelineContext, base: Versions, current: Versions) -> StepOutput:
        if guard is not None:
            guard(ctx, base, current)
        new = ctx.lake.appended_rows(events_table, after=int(base[events_table]), to=int(current[events_table]))
        batch_ids = pc.field("event_id").isin(_payload_event_ids(new))
        inputs: dict[str, pa.Table] = {}
        for view, table in plan.inputs.items():
            if table == events_table:
                inputs[view] = new
            elif view in seen_columns:  # the outputs as last built: their latest versions
                inputs[view] = ctx.lake.read_table(table, columns=seen_columns[view], filters=batch_ids)
            else:
                inputs[view] = ctx.lake.read_table(table, version=int(current[table]))
        outputs = run_duckdb(plan, inputs)
        return StepOutput(outputs, new.num_rows, modes=dict.fromkeys(outputs, "append"))

    return Incremental(changes=(events_table, POLICIES) if guard else (events_table,), build=build)


def _payload_event_ids(bronze_rows: pa.Table) -> pa.Array:
    """The event ids the batch's payloads carry, as the silver plan reads them (``contract_sql``: the raw
    JSON text of the field). Only these can match an id silver holds, so the duplicate check reads the
    outputs' rows with these ids rather than all of them, which it would copy into DuckDB and make
    distinct for nothing (1.5 s of every batch on a 5M-row silver, measured)."""
    con = duckdb.connect()
    try:
        con.register("bronze_rows", bronze_rows.select(["payload"]))
        ids = con.sql(
            "SELECT DISTINCT json_extract_string(payload, '$.\"event_id\"') AS id FROM bronze_rows "
            "WHERE json_valid(payload) AND id IS NOT NULL"
        ).to_arrow_table()
    finally:
        con.close()
    return ids.column("id").combine_chunks()


def gold_increment(
    factory: Callable[[Dialect], SqlPlan],
    *,
    scoped: str,
    scope: Scope,
    changes: tuple[str, ...],
    guard: Guard | None = None,
) -> Incremental:
    """Recompute from the rows of the ``scoped`` input view that ``scope`` selects and MERGE the results
    (``guard``: as in :func:`silver_increment`, for the inputs in ``changes`` it vouches for)."""
    plan = factory(DUCKDB)

    def build(ctx: PipelineContext, base: Versions, current: Versions) -> StepOutput:
        if guard is not None:
            guard(ctx, base, current)
        table = plan.inputs[scoped]
        scoped_rows = ctx.lake.read_table(table, version=int(current[table]), filters=scope(ctx, base, current))
        inputs = {scoped: scoped_rows}
        for view, name in plan.inputs.items():
            if view != scoped:
                inputs[view] = ctx.lake.read_table(name, version=int(current[name]))
        outputs = run_duckdb(plan, inputs)
        return StepOutput(outputs, scoped_rows.num_rows, modes=dict.fromkeys(outputs, "merge"))

    return Incremental(changes=changes, build=build)


def policy_terms_guard(earlier_claims: EarlierClaims) -> Guard:
    """Let an increment follow the terms appended to ``bronze.policies`` when none of them can change a
    claim built before (``earlier_claims``: those claims at the base versions); else ask for a full build."""

    def guard(ctx: PipelineContext, base: Versions, current: Versions) -> None:
        if base[POLICIES] == current[POLICIES]:
            return
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.register("added", _new(ctx, POLICIES, base, current, ["policy_id", "start_date"]))
            con.register(
                "earlier",
                ctx.lake.read_table(POLICIES, version=int(base[POLICIES]), columns=["policy_id", "start_date"]),
            )
            con.register("claims", earlier_claims(ctx, base))
            ((touched,),) = con.execute(_TOUCHED_CLAIMS).fetchall()
        finally:
            con.close()
        if touched:
            raise FullBuildNeededError(
                f"{touched:,} claims built before fall in (or may fall in) policy terms added since; "
                "the claims are rebuilt from all of bronze"
            )

    return guard


# A policy's added terms change an earlier claim when the policy had no term before (it was unknown), a
# term was added before an existing one, or the claim's incident is on or after the first added start;
# an incident that is present but not a date is counted too (the contract may read it differently).
_TOUCHED_CLAIMS = """
WITH a AS (SELECT policy_id, min(start_date) AS added_from FROM added GROUP BY policy_id),
k AS (SELECT policy_id, max(start_date) AS latest FROM earlier GROUP BY policy_id),
ak AS (SELECT a.policy_id, a.added_from, k.latest FROM a LEFT JOIN k ON a.policy_id = k.policy_id)
SELECT count(*) FROM claims c JOIN ak ON c.policy_id = ak.policy_id
WHERE ak.latest IS NULL OR ak.added_from <= ak.latest OR c.incident_date >= ak.added_from
   OR (c.incident_date IS NULL AND c.incident_raw IS NOT NULL)
"""


def claims_judged_by_terms(silver: str, quarantine: str) -> EarlierClaims:
    """The claims silver built whose outcome depends on a policy term: its valid claims and the valid first
    copies it quarantined for conformance (as last built: the outputs' latest versions). A claim rejected
    for its contract or as a later copy is rejected for that whatever the terms say (silver_sql's routing),
    so a planted bad date never forces a rebuild."""

    def earlier(ctx: PipelineContext, base: Versions) -> pa.Table:
        valid = ctx.lake.read_table(silver, columns=["policy_id", "incident_date"])
        rejected = ctx.lake.read_table(quarantine, columns=["payload", "reason_codes"])
        con = duckdb.connect()
        try:
            con.register("rejected", rejected)
            codes = ", ".join(f"'{code}'" for code in CONFORMANCE_CODES)
            conformance = con.sql(
                "SELECT json_extract_string(payload, '$.policy_id') AS policy_id, "
                "TRY_CAST(json_extract_string(payload, '$.incident_date') AS DATE) AS incident_date, "
                "json_extract_string(payload, '$.incident_date') AS incident_raw "
                f"FROM rejected WHERE reason_codes[1] IN ({codes})"
            ).to_arrow_table()
        finally:
            con.close()
        valid = valid.append_column("incident_raw", pa.nulls(valid.num_rows, pa.string()))
        return pa.concat_tables([valid, conformance.cast(valid.schema)])

    return earlier


def claims_in_silver(table: str) -> EarlierClaims:
    """The valid claims ``table`` held at the base version."""

    def earlier(ctx: PipelineContext, base: Versions) -> pa.Table:
        rows = ctx.lake.read_table(table, version=int(base[table]), columns=["policy_id", "incident_date"])
        return rows.append_column("incident_raw", pa.nulls(rows.num_rows, pa.string()))

    return earlier


def new_values(table: str, *columns: str) -> Scope:
    """Rows whose ``columns`` each hold a value of the rows ``table`` gained (e.g. the new rows' days
    and customers: every daily group a new row falls in; a partition column among them prunes partitions)."""

    def scope(ctx: PipelineContext, base: Versions, current: Versions) -> pc.Expression:
        new = _new(ctx, table, base, current, list(columns))
        expressions = [pc.field(column).isin(pc.unique(new.column(column))) for column in columns]
        return functools.reduce(operator.and_, expressions)

    return scope


def fraud_features_increment(
    factory: Callable[[Dialect], SqlPlan], columns: tuple[str, ...], window_columns: tuple[str, ...], look_back_us: int
) -> Incremental:
    """Point-in-time fraud features from each touched customer's start on (see the module docstring);
    ``columns``: the silver columns the plan reads; ``window_columns``: those its windows read of an
    earlier row; ``look_back_us``: its longest bounded window."""
    plan = factory(DUCKDB)
    silver = plan.inputs["silver_transactions"]
    (output,) = plan.outputs

    def build(ctx: PipelineContext, base: Versions, current: Versions) -> StepOutput:
        at = int(current[silver])
        new = _new(ctx, silver, base, current, ["event_id", "customer_id", "event_time"])
        labelled = pc.unique(_new(ctx, "bronze.fraud_labels", base, current, ["event_id"]).column("event_id"))
        older_labelled = pc.filter(labelled, pc.invert(pc.is_in(labelled, new.column("event_id"))))
        owners = new.schema.empty_table()
        if len(older_labelled):  # labels for transactions of earlier batches: their owners start there
            owners = ctx.lake.read_table(
                silver, version=at, columns=new.schema.names, filters=pc.field("event_id").isin(older_labelled)
            )
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.register("new_rows", pa.concat_tables([new, owners.cast(new.schema)]))
            starts = con.sql(
                "SELECT customer_id, epoch_us(min(event_time)) AS start_us FROM new_rows GROUP BY customer_id"
            ).to_arrow_table()
            if not starts.num_rows:  # nothing new, no new label: an empty write records the versions
                nothing = ctx.lake.spec(output).schema.empty_table()
                return StepOutput({output: nothing}, 0, modes={output: "merge"})
            # Filters are joins in DuckDB: an Arrow isin over tens of thousands of customers cost more than
            # the read (measured). The month bound prunes partitions, the date bound files (their statistics).
            start_us = pc.min(starts.column("start_us")).as_py()
            since, outputs_from = _from_day(start_us - look_back_us - DAY_US), _from_day(start_us)
            read = functools.partial(ctx.lake.read_table, silver, version=at)
            # Each row is read once, with the columns its part needs: a batch right after a large backfill
            # looks back over most of the lake, and event ids are the costliest column to read.
            con.register("starts", starts)
            con.register("recent", read(columns=list(columns), filters=outputs_from))
            con.register("context", read(columns=list(window_columns), filters=since & ~outputs_from))
            con.register("older", read(columns=list(_UNBOUNDED_COLUMNS), filters=~since))
            visible = con.sql(_VISIBLE_ROWS.format(look_back_us=look_back_us)).to_arrow_table()
            labels_table = plan.inputs["fraud_labels"]
            con.register("labels", ctx.lake.read_table(labels_table, version=int(current[labels_table])))
            con.register("visible", visible)
            labels = con.sql("SELECT * FROM labels SEMI JOIN visible USING (event_id)").to_arrow_table()
            features = run_duckdb(plan, {"silver_transactions": visible, "fraud_labels": labels})
            con.register("features", features[output])
            changed = con.sql(
                "SELECT f.* FROM features f JOIN starts s ON f.customer_id = s.customer_id "
                "WHERE epoch_us(f.event_time) >= s.start_us"
            ).to_arrow_table()
        finally:
            con.close()
        # Rows of new events only (events later than the customer's others, labels with them) are new
        # keys of gold: appended. A MERGE reads the whole table to find matches; it is for late events and
        # late labels, which change rows gold already holds.
        only_new = bool(pc.all(pc.is_in(changed.column("event_id"), new.column("event_id"))).as_py() is not False)
        return StepOutput({output: changed}, visible.num_rows, modes={output: "append" if only_new else "merge"})

    return Incremental(changes=(silver, "bronze.fraud_labels"), build=build)


DAY_US = 86_400_000_000


def _from_day(at_us: int) -> pc.Expression:
    """Rows from the UTC day of ``at_us`` on: the month bound prunes partitions, the date bound files
    (their statistics). Filters on customers are joins in DuckDB instead: an Arrow isin over tens of
    thousands of customers cost more than the read (measured)."""
    day = datetime.fromtimestamp(at_us / 1e6, UTC).date()
    return (pc.field("event_month") >= day.replace(day=1)) & (pc.field("event_date") >= day)


# What the unbounded features (time since the previous transaction, distance from the previous located
# one, a merchant never seen before) read of a row; nothing else of the older rows reaches a window.
_UNBOUNDED_COLUMNS = ("customer_id", "merchant_id", "event_time", "lat", "lon")
# The rows a touched customer's rows from ``start_us`` on can see, from three reads that split silver by
# day: ``recent`` (from the earliest start's day: every column, these rows are the output), ``context``
# (the look-back before it: the columns windows read) and ``older`` (the rest: the columns above). Every
# row from ``look_back_us`` before the customer's start is kept, and of the earlier ones the latest, the
# latest with a location, the latest at each merchant the later rows name (the columns they were not
# read with are null; the plan's output for such rows is discarded).
_VISIBLE_ROWS = """
WITH age AS (SELECT customer_id, start_us - {look_back_us} AS from_us FROM starts),
touched AS (
  SELECT t.*, row_number() OVER () AS _row, epoch_us(t.event_time) >= a.from_us AS _windowed
  FROM (SELECT * FROM recent UNION ALL BY NAME SELECT * FROM context UNION ALL BY NAME SELECT * FROM older) t
  JOIN age a ON t.customer_id = a.customer_id
),
r AS (SELECT * FROM touched WHERE _windowed),
o AS (SELECT * FROM touched WHERE NOT _windowed),
kept AS (
  SELECT arg_max(_row, event_time) AS _row FROM o GROUP BY customer_id
  UNION SELECT arg_max(_row, event_time) FROM o WHERE lat IS NOT NULL GROUP BY customer_id
  UNION SELECT arg_max(_row, event_time) FROM o WHERE lon IS NOT NULL GROUP BY customer_id
  UNION SELECT arg_max(o._row, o.event_time) FROM o SEMI JOIN r ON o.customer_id = r.customer_id
        AND o.merchant_id = r.merchant_id GROUP BY o.customer_id, o.merchant_id
)
SELECT * EXCLUDE (_row, _windowed) FROM touched WHERE _windowed OR _row IN (SELECT _row FROM kept)
"""
