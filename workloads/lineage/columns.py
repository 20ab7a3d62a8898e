"""Column lineage derived from the pipeline's SQL plans, never declared by hand.

Each output of a :class:`~mdslab.workloads.pipeline.plan.SqlPlan` is one SQL statement over its input
views and stages; sqlglot qualifies it against the registered input schemas (expanding ``*``) and the
column references are followed back through every stage to the input views, i.e. to lake tables.

Every edge is classified the way OpenLineage's column-lineage facet does: DIRECT when the input's value
flows into the output's (IDENTITY when copied unchanged, TRANSFORMATION, AGGREGATION), INDIRECT when it
only decides which rows or which branch (CONDITIONAL: a CASE condition, e.g. silver's routing of a row
to the table or its quarantine; WINDOW: a window's partition and order). A path is DIRECT only when
every step of it is. sqlglot rather than openlineage-sql: on these plans the latter found no lineage for
silver at all and none for gold's ``amount_usd`` (measured with openlineage-sql 1.54).

Where it is approximate: a column read inside a subquery of an expression (``x IN (SELECT ...)``) or a
lambda's own parameter is not followed; filters, joins and groupings that select rows for the whole
table are not attached to each column (they are the dataset-level part of the facet).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

from mdslab.workloads.pipeline.plan import SqlPlan

EdgeType = Literal["DIRECT", "INDIRECT"]
DIALECT = "duckdb"  # the plans' DuckDB text (Spark runs the same logic; see pipeline.dialect)

# DIRECT subtypes, weakest first: along a path the strongest one is kept
_DIRECT_ORDER = ("IDENTITY", "TRANSFORMATION", "AGGREGATION")


@dataclass(frozen=True, order=True)
class ColumnSource:
    """One input column an output column depends on, and how (OpenLineage's transformation type)."""

    table: str
    column: str
    type: EdgeType
    subtype: str


TableLineage = dict[str, tuple[ColumnSource, ...]]  # output column -> its sources


class LineageError(ValueError):
    """A plan's SQL could not be analysed (the message names the output)."""


def plan_lineage(plan: SqlPlan, input_schemas: Mapping[str, pa.Schema]) -> dict[str, TableLineage]:
    """Column lineage of every output of ``plan`` (``input_schemas``: lake table -> its schema)."""
    views: dict[str, object] = {
        view: {field.name: "VARCHAR" for field in input_schemas[table]} for view, table in plan.inputs.items()
    }
    return {output: _output_lineage(plan, output, views) for output in plan.outputs}


def _statement(plan: SqlPlan, output: str) -> str:
    stages = ", ".join(f"{name} AS ({sql})" for name, sql in plan.stages)
    return (f"WITH {stages} " if stages else "") + plan.outputs[output]


def _output_lineage(plan: SqlPlan, output: str, views: dict[str, object]) -> TableLineage:
    try:
        parsed = sqlglot.parse_one(_statement(plan, output), dialect=DIALECT)
        qualified = qualify(parsed, schema=views, dialect=DIALECT, validate_qualify_columns=False, identify=False)
        root = build_scope(qualified)
    except sqlglot.errors.SqlglotError as exc:
        raise LineageError(f"cannot analyse the SQL of {output}: {str(exc).splitlines()[0]}") from None
    if root is None:
        raise LineageError(f"cannot analyse the SQL of {output}: no SELECT found")
    tracer = _Tracer(plan.inputs)
    return {select.alias_or_name: _strongest(tracer.trace(root, select.alias_or_name)) for select in _selects(root)}


def _selects(scope: Scope) -> list[exp.Expr]:
    query = scope.expression
    return list(query.selects) if isinstance(query, exp.Query) else []


class _Tracer:
    """Follows one statement's columns back to its inputs; a stage read by several others is followed
    once per column (silver's stages are read by every output column)."""

    def __init__(self, inputs: Mapping[str, str]) -> None:
        self.inputs = inputs
        self._followed: dict[tuple[int, str], frozenset[ColumnSource]] = {}

    def trace(self, scope: Scope, name: str) -> frozenset[ColumnSource]:
        if scope.is_set_operation:
            return frozenset(source for branch in scope.set_operation_scopes for source in self.trace(branch, name))
        key = (id(scope), name)
        if key not in self._followed:
            self._followed[key] = self._trace_select(scope, name)
        return self._followed[key]

    def _trace_select(self, scope: Scope, name: str) -> frozenset[ColumnSource]:
        select = next((s for s in _selects(scope) if s.alias_or_name == name), None)
        if select is None:
            return frozenset()
        found: set[ColumnSource] = set()
        columns = list(_columns_of(select))
        group = scope.expression.args.get("group")
        if group is not None and select.find(exp.AggFunc) is not None:  # count(*) reads no column but its groups
            columns += [(key, ("INDIRECT", "GROUP_BY")) for key in group.find_all(exp.Column) if key.table]
        for column, (kind, subtype) in columns:
            source = scope.sources.get(column.table)
            if isinstance(source, exp.Table) and source.name in self.inputs:
                found.add(ColumnSource(self.inputs[source.name], column.name, kind, subtype))
            elif isinstance(source, Scope):
                found |= {_along(kind, subtype, upstream) for upstream in self.trace(source, column.name)}
        return frozenset(found)


def _strongest(sources: frozenset[ColumnSource]) -> tuple[ColumnSource, ...]:
    """One edge per input column and type: of several paths, the strongest DIRECT subtype is kept."""
    kept: dict[tuple[str, str, str], ColumnSource] = {}
    for source in sorted(sources, key=lambda s: _rank(s.subtype)):
        kept[(source.table, source.column, source.type)] = source
    return tuple(sorted(kept.values()))


def _rank(subtype: str) -> int:
    return _DIRECT_ORDER.index(subtype) if subtype in _DIRECT_ORDER else 0


def _along(kind: EdgeType, subtype: str, upstream: ColumnSource) -> ColumnSource:
    """An upstream edge seen through this step: INDIRECT if either is; else the stronger DIRECT subtype."""
    if upstream.type == "INDIRECT":
        return upstream
    if kind == "INDIRECT":
        return ColumnSource(upstream.table, upstream.column, kind, subtype)
    stronger = max(subtype, upstream.subtype, key=_DIRECT_ORDER.index)
    return ColumnSource(upstream.table, upstream.column, "DIRECT", stronger)


def _columns_of(select: exp.Expr) -> Iterator[tuple[exp.Column, tuple[EdgeType, str]]]:
    for column in select.find_all(exp.Column):
        if column.table:
            yield column, _edge(column, select)


def _edge(column: exp.Column, root: exp.Expr) -> tuple[EdgeType, str]:
    """How ``column`` reaches the value of the select expression ``root`` (walking up its parents)."""
    subtype = "IDENTITY"
    node: exp.Expr = column
    while node is not root and node.parent is not None:
        parent, key = node.parent, node.arg_key or ""
        if isinstance(parent, exp.If | exp.Case) and key == "this":
            return "INDIRECT", "CONDITIONAL"
        if isinstance(parent, exp.Window) and key in ("partition_by", "order"):
            return "INDIRECT", "WINDOW"
        if isinstance(parent, exp.Filter) and key == "expression":
            return "INDIRECT", "FILTER"
        if isinstance(parent, exp.AggFunc):
            subtype = "AGGREGATION"
        elif subtype == "IDENTITY" and not _passes_value(parent, key):
            subtype = "TRANSFORMATION"
        node = parent
    return "DIRECT", subtype


def _passes_value(parent: exp.Expr, key: str) -> bool:
    """Whether ``parent`` hands the value at ``key`` on unchanged (an alias, parentheses, a branch of a
    CASE: silver's routing wraps every column in one, which copies it or gives NULL)."""
    if isinstance(parent, exp.Alias | exp.Paren):
        return True
    if isinstance(parent, exp.If):
        return key in ("true", "false")
    return isinstance(parent, exp.Case) and key in ("ifs", "default")
