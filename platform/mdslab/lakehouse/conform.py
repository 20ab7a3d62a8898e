"""Schema enforcement on write: a batch must match its table's registered schema, or it is refused
before anything is committed, with every difference named."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeAlias

import pyarrow as pa

from mdslab.errors import MdslabError

Data: TypeAlias = pa.Table | pa.RecordBatchReader


class SchemaMismatchError(MdslabError):
    """The batch does not fit the table's schema; nothing was written."""


def schema_problems(expected: pa.Schema, actual: pa.Schema) -> list[str]:
    """Human-readable differences that a lossless cast cannot fix."""
    problems = []
    for field in expected:
        if field.name not in actual.names:
            problems.append(f"missing column '{field.name}' ({field.type})")
            continue
        got = actual.field(field.name).type
        if got != field.type and not _castable(got, field.type):
            problems.append(f"column '{field.name}' is {got}, table expects {field.type}")
    problems += [f"unexpected column '{name}'" for name in actual.names if name not in expected.names]
    return problems


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """Widening casts only (int32 -> int64, float -> double, string -> large_string, timestamp units up)."""
    if pa.types.is_null(source):
        return True
    if pa.types.is_integer(source) and pa.types.is_integer(target):
        return bool(source.bit_width <= target.bit_width)
    if pa.types.is_floating(source) and pa.types.is_floating(target):
        return bool(source.bit_width <= target.bit_width)
    if pa.types.is_integer(source) and pa.types.is_floating(target):
        return True
    if (pa.types.is_string(source) or pa.types.is_large_string(source)) and (
        pa.types.is_string(target) or pa.types.is_large_string(target)
    ):
        return True
    if pa.types.is_timestamp(source) and pa.types.is_timestamp(target):
        return bool(source.tz == target.tz)
    if pa.types.is_dictionary(source):
        return _castable(source.value_type, target)
    return False


def _check_nulls(expected: pa.Schema, batch: pa.RecordBatch | pa.Table) -> list[str]:
    return [
        f"column '{field.name}' has {batch.column(field.name).null_count} nulls but is not nullable"
        for field in expected
        if not field.nullable and batch.column(field.name).null_count
    ]


def conform(table_name: str, expected: pa.Schema, data: Data, *, version: int | None) -> Data:
    """Return ``data`` cast to ``expected`` (column order included), or raise :class:`SchemaMismatchError`."""
    where = f"table left at version {version}" if version is not None else "table not created"
    problems = schema_problems(expected, data.schema)
    if problems:
        raise SchemaMismatchError(f"{table_name}: batch rejected ({where}): " + "; ".join(problems))
    if isinstance(data, pa.Table):
        problems = _check_nulls(expected, data)
        if problems:
            raise SchemaMismatchError(f"{table_name}: batch rejected ({where}): " + "; ".join(problems))
        return data.select(expected.names).cast(expected)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in data:
            problems = _check_nulls(expected, batch)
            if problems:
                raise SchemaMismatchError(f"{table_name}: batch rejected ({where}): " + "; ".join(problems))
            yield batch.select(expected.names).cast(expected)

    return pa.RecordBatchReader.from_batches(expected, batches())
