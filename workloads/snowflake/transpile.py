"""The pipeline's SQL plans as Snowflake SQL, and that SQL read back as DuckDB's to check it.

The plans' DuckDB text is the source (:mod:`mdslab.workloads.pipeline.dialect`); sqlglot transpiles it and
:data:`REWRITES` mends the few constructs sqlglot carries over unchanged although Snowflake spells them
differently (DuckDB's multi-path JSON extract, ``regexp_full_match``, ``json_valid``...). The check runs
the other way: the Snowflake text, parsed as Snowflake by sqlglot and written as DuckDB, must give the same
rows as the plan on the same inputs (:func:`duckdb_from_snowflake`). Only one function needs a rewrite
on the way back (``IS_OBJECT``, which sqlglot does not translate): see :data:`BACK_REWRITES`.

What the round trip cannot prove is what sqlglot and Snowflake disagree on; docs/deep-dives/snowflake.md
lists what was checked by reading Snowflake's reference instead (e.g. ``REGEXP_LIKE`` matches the whole
text, which is why every contract pattern is anchored).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import exp

from mdslab.errors import MdslabError
from mdslab.workloads.pipeline.plan import SqlPlan

SOURCE_DIALECT = "duckdb"
TARGET_DIALECT = "snowflake"


class TranspileError(MdslabError, ValueError):
    """A plan's SQL that could not be written as Snowflake SQL (the message names the output)."""


def plan_statement(plan: SqlPlan, output: str) -> str:
    """One output of ``plan`` as a single SELECT: its stages become common table expressions."""
    stages = ", ".join(f"{name} AS ({sql})" for name, sql in plan.stages)
    return (f"WITH {stages} " if stages else "") + plan.outputs[output]


def _from_snowflake(template: str, **values: exp.Expr) -> exp.Expr:
    """A Snowflake expression with ``:name`` placeholders replaced by the given subtrees."""
    return exp.replace_placeholders(sqlglot.parse_one(template, read=TARGET_DIALECT), **values)


def _args(node: exp.Anonymous) -> list[exp.Expr]:
    return list(node.expressions)


def _anonymous(name: str) -> Callable[[exp.Expr], bool]:
    return lambda node: isinstance(node, exp.Anonymous) and node.name.lower() == name


def _multi_path_extracts(tree: exp.Expr) -> exp.Expr:
    """DuckDB's ``json_extract_string(payload, [path, ...])`` parses the payload once for all fields, and
    the plan reads field ``i`` as ``_v[i]``; Snowflake has no multi-path form, so each ``_v[i]`` becomes
    its own single-path extract (under the same condition) and the list column goes away."""
    lists: dict[str, tuple[exp.Expr, exp.JSONExtractScalar]] = {}
    for alias in list(tree.find_all(exp.Alias)):
        extract = alias.this.find(exp.JSONExtractScalar)
        if extract is not None and isinstance(extract.expression, exp.Array):
            lists[alias.alias] = (alias.this, extract)
            alias.pop()
    if not lists:
        return tree

    def single(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.Bracket) and isinstance(node.this, exp.Column) and node.this.name in lists):
            return node
        wrapper, extract = lists[node.this.name]
        index = int(node.expressions[0].name)  # sqlglot holds indexes from 0, whatever the dialect writes
        path = extract.expression.expressions[index].sql(dialect=SOURCE_DIALECT)
        one = sqlglot.parse_one(f"json_extract_string(:document, {path})", read=SOURCE_DIALECT)
        copied = wrapper.copy()
        target = copied.find(exp.JSONExtractScalar)
        assert target is not None
        target.replace(exp.replace_placeholders(one, document=extract.this.copy()))
        return copied

    return tree.transform(single)


def _rewrite(node: exp.Expr) -> exp.Expr:
    """One node of the DuckDB tree in the form Snowflake spells it (unchanged when it needs nothing)."""
    if isinstance(node, exp.RegexpFullMatch):
        # Snowflake's REGEXP_LIKE matches the whole text, as regexp_full_match does
        return exp.RegexpLike(this=node.this, expression=node.expression)
    if _anonymous("json_valid")(node):
        return _from_snowflake("TRY_PARSE_JSON(:text) IS NOT NULL", text=_args(node)[0])  # type: ignore[arg-type]
    if isinstance(node, exp.EQ) and isinstance(node.this, exp.JSONType) and node.expression.name == "OBJECT":
        return _from_snowflake("IS_OBJECT(TRY_PARSE_JSON(:text))", text=node.this.this)
    if isinstance(node, exp.JSONKeys):
        return _from_snowflake("OBJECT_KEYS(TRY_PARSE_JSON(:text))", text=node.this)
    if _anonymous("timezone")(node):
        zone, timestamp = _args(node)  # type: ignore[arg-type]
        return _from_snowflake("CONVERT_TIMEZONE(:zone, :ts)", zone=zone, ts=timestamp)
    if _anonymous("epoch_us")(node):
        return _from_snowflake("DATE_PART(EPOCH_MICROSECOND, :ts)", ts=_args(node)[0])  # type: ignore[arg-type]
    if isinstance(node, exp.TryCast):
        # the plans only TRY_CAST raw text; Snowflake's TRY_CAST takes text only, and sqlglot writes a
        # plain CAST (an error on bad input, not NULL) unless it knows the operand is text
        node.this.type = exp.DataType.build("VARCHAR")
    return node


def to_snowflake(duckdb_sql: str, tables: dict[str, str], *, pretty: bool = True) -> str:
    """``duckdb_sql`` as Snowflake SQL, with the plan's input views (``tables``: view -> lake table,
    ``<layer>.<table>``) read from the Snowflake tables of the same names."""
    tree = sqlglot.parse_one(duckdb_sql, read=SOURCE_DIALECT)
    tree = _multi_path_extracts(tree).transform(_rewrite)
    for table in tree.find_all(exp.Table):
        if not table.db and table.name in tables:
            layer, _, name = tables[table.name].partition(".")
            table.replace(exp.table_(name, db=layer, alias=table.alias or table.name))
    return tree.sql(dialect=TARGET_DIALECT, pretty=pretty, unsupported_level=sqlglot.ErrorLevel.RAISE)


def snowflake_select(plan: SqlPlan, output: str) -> str:
    """The SELECT that computes ``output`` of ``plan`` in Snowflake, reading the lab's tables."""
    try:
        return to_snowflake(plan_statement(plan, output), plan.inputs)
    except sqlglot.errors.SqlglotError as exc:
        raise TranspileError(f"cannot write {output} as Snowflake SQL: {str(exc).splitlines()[0]}") from None


# Snowflake functions sqlglot's DuckDB writer leaves as they are, and their DuckDB form.
BACK_REWRITES: dict[str, str] = {"is_object": "coalesce(json_type(:value) = 'OBJECT', false)"}


def _rewrite_back(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Anonymous) and node.name.lower() in BACK_REWRITES:
        template = sqlglot.parse_one(BACK_REWRITES[node.name.lower()], read=SOURCE_DIALECT)
        return exp.replace_placeholders(template, value=node.expressions[0])
    return node


def duckdb_from_snowflake(snowflake_sql: str) -> str:
    """Snowflake SQL as DuckDB runs it: what the tests and `mdslab run snowflake` execute to check it."""
    tree = sqlglot.parse_one(snowflake_sql, read=TARGET_DIALECT).transform(_rewrite_back)
    return tree.sql(dialect=SOURCE_DIALECT)
