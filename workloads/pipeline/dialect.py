"""The few spellings that differ between Spark SQL and DuckDB.

Silver and gold are written once, as SQL text with these hooks, and run by Spark (the pipeline) and by
DuckDB (the benchmark's baseline and the tests' cross-check), so both engines compute the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

EngineName = Literal["spark", "duckdb"]


@dataclass(frozen=True)
class Dialect:
    name: EngineName

    @property
    def spark(self) -> bool:
        return self.name == "spark"

    def string_literal(self, value: str) -> str:
        """A SQL string literal. Spark unescapes backslashes and does not know '' for a quote."""
        if self.spark:
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + value.replace("'", "''") + "'"

    def regex(self, column: str, pattern: str) -> str:
        literal = self.string_literal(pattern)
        return f"({column} RLIKE {literal})" if self.spark else f"regexp_full_match({column}, {literal})"

    def try_cast(self, column: str, type_name: str) -> str:
        # Spark (ANSI off, its default) yields NULL for a failed cast, as TRY_CAST does in DuckDB.
        return f"CAST({column} AS {type_name})" if self.spark else f"TRY_CAST({column} AS {type_name})"

    @property
    def timestamp_type(self) -> str:
        return "TIMESTAMP" if self.spark else "TIMESTAMPTZ"

    @property
    def string_type(self) -> str:
        return "STRING" if self.spark else "VARCHAR"

    def timestamp_literal(self, value: datetime) -> str:
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'" if self.spark else f"TIMESTAMPTZ '{value.isoformat()}'"

    def date_literal(self, value: date) -> str:
        return f"DATE '{value.isoformat()}'"

    def array(self, items: list[str]) -> str:
        return f"array({', '.join(items)})" if self.spark else f"[{', '.join(items)}]"

    def compact(self, array: str) -> str:
        """The array without its NULL elements."""
        return (
            f"filter({array}, x -> x IS NOT NULL)" if self.spark else f"list_filter({array}, lambda x: x IS NOT NULL)"
        )

    def transform(self, array: str, body: str) -> str:
        return f"transform({array}, x -> {body})" if self.spark else f"list_transform({array}, lambda x: {body})"

    def size(self, array: str) -> str:
        # array_length, not len: sqlglot reads len() as a string's length when it transpiles the plans
        return f"size({array})" if self.spark else f"array_length({array})"

    def join(self, array: str, separator: str) -> str:
        sep = self.string_literal(separator)
        return f"array_join({array}, {sep})" if self.spark else f"array_to_string({array}, {sep})"

    def object_keys(self, payload: str) -> str:
        """The keys of a JSON object (Spark: NULL when the text is not one)."""
        return f"json_object_keys({payload})" if self.spark else f"json_keys({payload})"

    def keys_outside(self, keys: str, allowed: list[str]) -> str:
        """The ``keys`` (an array, see :meth:`object_keys`) that are not in ``allowed``."""
        names = self.array([self.string_literal(name) for name in allowed])
        if self.spark:
            return f"array_except({keys}, {names})"
        return f"list_filter({keys}, lambda k: NOT list_contains({names}, k))"

    def local_hour(self, timestamp: str, zone: str) -> str:
        return (
            f"hour(from_utc_timestamp({timestamp}, {zone}))" if self.spark else f"hour(timezone({zone}, {timestamp}))"
        )

    def epoch_micros(self, timestamp: str) -> str:
        return f"unix_micros({timestamp})" if self.spark else f"epoch_us({timestamp})"

    def days_between(self, start: str, end: str) -> str:
        return f"datediff({end}, {start})" if self.spark else f"date_diff('day', {start}, {end})"

    def distinct_count_over(self, column: str, window: str) -> str:
        # Spark has no DISTINCT window aggregates; the set's size is the same number.
        return (
            f"size(collect_set({column}) OVER ({window}))"
            if self.spark
            else f"count(DISTINCT {column}) OVER ({window})"
        )

    def last_non_null_over(self, column: str, window: str) -> str:
        return (
            f"last({column}, true) OVER ({window})"
            if self.spark
            else f"last_value({column} IGNORE NULLS) OVER ({window})"
        )


SPARK = Dialect("spark")
DUCKDB = Dialect("duckdb")
