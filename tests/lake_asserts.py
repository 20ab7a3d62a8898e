"""Comparing lake tables across engines and build modes."""

from __future__ import annotations

import pyarrow as pa


def _sorted(table: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    return table.sort_by([(key, "ascending") for key in keys])


def _close(x: float | None, y: float | None) -> bool:
    if x is None or y is None:
        return x is y
    return abs(x - y) <= max(0.0101, 1e-6 * abs(y))


def assert_same(spark_table: pa.Table, duck_table: pa.Table, keys: tuple[str, ...]) -> None:
    assert spark_table.num_rows == duck_table.num_rows
    left, right = _sorted(spark_table, keys), _sorted(duck_table.select(spark_table.column_names), keys)
    for name in spark_table.column_names:
        a, b = left.column(name).to_pylist(), right.column(name).to_pylist()
        if pa.types.is_floating(spark_table.schema.field(name).type):
            # Engines may round a half-cent differently (Spark rounds the exact decimal of the double).
            mismatched = [(x, y) for x, y in zip(a, b, strict=True) if not _close(x, y)]
            assert not mismatched, f"{name}: {len(mismatched)} values differ, e.g. {mismatched[:3]}"
        else:
            assert a == b, name
