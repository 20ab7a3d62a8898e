"""From numpy columns to Arrow strings: ids, UUIDs and the JSON payloads of events.

JSON payloads are rendered by DuckDB (``to_json`` over the Arrow table, multi-threaded, no Python per
row) from one SQL expression per contract field; ids are formatted by filling fixed-width byte buffers
with numpy. Both are exact and deterministic, so a configuration always yields the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mdslab.workloads.contracts import Contract

ISO_MILLIS_UTC = "%Y-%m-%dT%H:%M:%S.%gZ"
BATCH_ROWS = 262_144


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB used only as a fast, multi-threaded JSON renderer.

    Its progress bar is switched off: a library must not draw on the caller's terminal.
    """
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_DASHES = (8, 13, 18, 23)


def string_column(values: Sequence[str]) -> pa.StringArray:
    return pa.array(values, type=pa.string())


def _fixed_width(chars: npt.NDArray[np.uint8]) -> pa.StringArray:
    """Wrap an (n, width) ASCII byte matrix as an Arrow string array without copying per row."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars))]
    return pa.Array.from_buffers(pa.string(), n, buffers)


def fixed_width_ids(prefix: str, numbers: npt.NDArray[np.int64], digits: int) -> pa.StringArray:
    """``prefix`` + zero-padded ``numbers``, e.g. ("C", 123, 7) -> "C0000123"."""
    powers = 10 ** np.arange(digits - 1, -1, -1, dtype=np.int64)
    body = (np.asarray(numbers, dtype=np.int64)[:, None] // powers % 10 + ord("0")).astype(np.uint8)
    head = np.broadcast_to(np.frombuffer(prefix.encode(), dtype=np.uint8), (len(body), len(prefix)))
    return _fixed_width(np.hstack([head, body]))


def uuid4_strings(rng: np.random.Generator, n: int) -> pa.StringArray:
    """``n`` random version-4 UUIDs in canonical text form, drawn from ``rng`` (hence reproducible)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hex_chars = np.stack([_HEX[raw >> 4], _HEX[raw & 0x0F]], axis=2).reshape(n, 32)
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    parts = [
        hex_chars[:, 0:8],
        hex_chars[:, 8:12],
        hex_chars[:, 12:16],
        hex_chars[:, 16:20],
        hex_chars[:, 20:32],
    ]
    return _fixed_width(np.hstack([parts[0], dash, parts[1], dash, parts[2], dash, parts[3], dash, parts[4]]))


def enum_column(codes: npt.NDArray[np.int64], vocabulary: Sequence[str]) -> pa.DictionaryArray:
    """Codes into ``vocabulary`` as an Arrow dictionary column (rendered as plain strings in JSON)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int16)), pa.array([str(value) for value in vocabulary], type=pa.string())
    )


def nullable_float(values: npt.NDArray[np.float64]) -> pa.Array:
    """NaN means "no value" in the simulator's float columns; Arrow and JSON get a proper null."""
    return pa.array(values, mask=np.isnan(values))


@dataclass(frozen=True)
class PayloadSpec:
    """How to render one contract's JSON payload: a DuckDB SQL expression per contract field."""

    contract: type[Contract]
    fields: Mapping[str, str]

    def __post_init__(self) -> None:
        expected = list(self.contract.model_fields)
        if list(self.fields) != expected:
            raise ValueError(f"{self.contract.__name__} payload fields {list(self.fields)} != contract {expected}")

    def json_sql(self) -> str:
        pairs = ", ".join(f"{name} := {expression}" for name, expression in self.fields.items())
        return f"to_json(struct_pack({pairs}))"


def encode_payloads(con: duckdb.DuckDBPyConnection, table: pa.Table, spec: PayloadSpec) -> pa.Table:
    """Raw events: ``event_id`` (null where ``malformed``: no usable id) and ``payload``.

    ``payload`` is ``override`` where that column is not null (hand-broken payloads) and the rendered
    JSON document otherwise. Rows keep the input order.
    """
    con.register("events", table)
    try:
        query = f"""
            SELECT
                CASE WHEN malformed THEN NULL ELSE event_id END AS event_id,
                coalesce(override, CAST({spec.json_sql()} AS VARCHAR)) AS payload
            FROM events
        """
        return con.sql(query).to_arrow_reader(BATCH_ROWS).read_all()
    finally:
        con.unregister("events")


def render_json(con: duckdb.DuckDBPyConnection, table: pa.Table, spec: PayloadSpec) -> list[str]:
    """The JSON documents of a few rows as Python strings, for the defects that are broken by hand."""
    con.register("events", table)
    try:
        rows = con.sql(f"SELECT CAST({spec.json_sql()} AS VARCHAR) FROM events").fetchall()
    finally:
        con.unregister("events")
    return [str(row[0]) for row in rows]
