"""Do two engines' outputs hold the same rows? Row counts, then every column after sorting on a key.

Floats are compared with a tolerance, and a difference of exactly one step of a rounded decimal
(0.01, 0.001, 0.0001) is counted apart as a *rounding flip* rather than a mismatch: the SQL rounds
with ``round(x, d)``, and Spark rounds the exact decimal expansion of a double half-up while DuckDB
rounds the double itself, so a value lying on a half step can land on either side. The same happens
when two engines sum the same doubles in a different order.

A flip in silver (``amount_usd``) then moves every gold aggregate over that row a little, so gold
built end to end from each engine's own silver is compared with a looser ``near`` tolerance as well;
gold built by both engines from the *same* silver must agree up to flips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from _duck_steps import BENCH_STEPS, read_snapshot

from mdslab.lakehouse import Lakehouse
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.engines import run_duckdb
from mdslab.workloads.pipeline.steps import PLANS

REL_TOLERANCE = 1e-9
ROUNDING_STEPS = (1e-2, 1e-3, 1e-4)
QUARANTINE_KEYS = ("payload", "source")  # quarantined rows have no key; a payload identifies them


@dataclass(frozen=True)
class Near:
    """Float differences accepted as "near": at most ``absolute``, or ``relative`` of the value."""

    absolute: float = 0.0101
    relative: float = 1e-3


@dataclass
class TableComparison:
    table: str
    rows: tuple[int, int]
    keys: tuple[str, ...]
    mismatches: dict[str, int] = field(default_factory=dict)
    rounding_flips: dict[str, int] = field(default_factory=dict)
    near: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[tuple[object, object]]] = field(default_factory=dict)

    @property
    def agree(self) -> bool:
        return self.rows[0] == self.rows[1] and not self.mismatches

    def as_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "rows": list(self.rows),
            "sorted_on": list(self.keys),
            "agree": self.agree,
            "mismatched_values": self.mismatches,
            "rounding_flips": self.rounding_flips,
            "near": self.near,
            "examples": {name: [[repr(a), repr(b)] for a, b in pairs] for name, pairs in self.examples.items()},
        }


def compare_tables(
    name: str, left: pa.Table, right: pa.Table, keys: tuple[str, ...], *, near: Near | None = None
) -> TableComparison:
    """Compare ``left`` and ``right`` row by row after sorting both on ``keys`` (all columns compared).

    With ``near``, float differences within it are counted as near rather than as mismatches."""
    result = TableComparison(name, (left.num_rows, right.num_rows), keys)
    if left.num_rows != right.num_rows:
        return result
    order = [(key, "ascending") for key in keys]
    left = left.sort_by(order).combine_chunks()
    right = right.select(left.column_names).cast(left.schema).sort_by(order).combine_chunks()
    for column in left.column_names:
        a, b = left.column(column), right.column(column)
        if pa.types.is_floating(a.type):
            mismatched, flips, close, examples = _compare_floats(a, b, near)
            if flips:
                result.rounding_flips[column] = flips
            if close:
                result.near[column] = close
        else:
            mismatched, examples = _compare_exact(a, b)
        if mismatched:
            result.mismatches[column] = mismatched
            result.examples[column] = examples
    return result


def _compare_floats(
    a: pa.ChunkedArray, b: pa.ChunkedArray, near: Near | None
) -> tuple[int, int, int, list[tuple[object, object]]]:
    a_null = pc.is_null(a, nan_is_null=True).to_numpy(zero_copy_only=False)
    b_null = pc.is_null(b, nan_is_null=True).to_numpy(zero_copy_only=False)
    x = pc.fill_null(a, 0.0).to_numpy(zero_copy_only=False).astype(np.float64)
    y = pc.fill_null(b, 0.0).to_numpy(zero_copy_only=False).astype(np.float64)
    both = ~a_null & ~b_null
    x, y = np.where(both, x, 0.0), np.where(both, y, 0.0)
    diff = np.abs(x - y)
    scale = np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))
    off = diff > REL_TOLERANCE * scale
    flip = np.zeros_like(off)
    for step in ROUNDING_STEPS:
        flip |= np.abs(diff - step) <= REL_TOLERANCE * scale
    flips = off & flip
    close = np.zeros_like(off)
    if near is not None:
        close = off & ~flip & ((diff <= near.absolute) | (diff <= near.relative * scale))
    bad = (a_null != b_null) | (off & ~flip & ~close)
    examples = [(x[i] if not a_null[i] else None, y[i] if not b_null[i] else None) for i in np.flatnonzero(bad)[:3]]
    return int(bad.sum()), int(flips.sum()), int(close.sum()), examples


def _compare_exact(a: pa.ChunkedArray, b: pa.ChunkedArray) -> tuple[int, list[tuple[object, object]]]:
    if a.equals(b):
        return 0, []
    if pa.types.is_list(a.type) or pa.types.is_large_list(a.type):
        pairs = [(x, y) for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True) if x != y]
        return len(pairs), pairs[:3]
    same = pc.fill_null(pc.equal(a, b), False)
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    bad = pc.invert(pc.or_(same, both_null)).to_numpy(zero_copy_only=False)
    indices = np.flatnonzero(bad)
    examples = [(a[int(i)].as_py(), b[int(i)].as_py()) for i in indices[:3]]
    return int(bad.sum()), examples


def check_engines(
    spark: Lakehouse, duck: Lakehouse, spark_out: dict[str, int], duck_out: dict[str, int]
) -> list[dict[str, Any]]:
    """Do the engines agree? Three ways: silver, each output value by value (the same bronze went in);
    gold from the same silver (DuckDB's gold SQL re-run on the silver versions Spark's gold was built
    from: isolates the gold logic from silver's rounding flips); gold end to end, each engine's own."""
    checks: list[dict[str, Any]] = []

    def read(lake: Lakehouse, table: str, version: int) -> pa.Table:
        # delta-rs's scan returns string_view, which Arrow cannot sort: back to the registered types
        schema = lake.spec(table).schema
        return read_snapshot(lake, table, version).select(schema.names).cast(schema)

    for table, version in spark_out.items():
        keys = spark.spec(table).key or QUARANTINE_KEYS
        gold = table.startswith("gold.")
        found = compare_tables(
            table, read(spark, table, version), read(duck, table, duck_out[table]), keys, near=Near() if gold else None
        )
        checks.append({"kind": "gold end to end" if gold else "silver", **found.as_dict()})
    for plan in (PLANS[name](DUCKDB) for name in BENCH_STEPS):
        first = next(iter(plan.outputs))
        if not first.startswith("gold."):
            continue
        versions = spark.commit_metadata(first, version=spark_out[first])["inputs"]
        inputs = {view: read_snapshot(spark, table, int(versions[table])) for view, table in plan.inputs.items()}
        for table, data in run_duckdb(plan, inputs).items():
            schema = spark.spec(table).schema
            rebuilt, built = data.select(schema.names).cast(schema), read(spark, table, spark_out[table])
            found = compare_tables(table, built, rebuilt, spark.spec(table).key, near=Near())
            checks.append({"kind": "gold from the same silver", **found.as_dict()})
    return checks
