"""Turn a frame of generated events into the raw stream a source would send, defects included.

Order of work: give every event a UUID, break the chosen rows (typed defects in the frame, the rest in
their JSON), interleave re-sent duplicates, then render all payloads in one DuckDB pass. The result
records exactly which raw rows are defective and why, for the pipeline's tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from mdslab.workloads.simulator.config import DefectKind, SimulationConfig
from mdslab.workloads.simulator.defects import (
    DefectRecipe,
    break_payload,
    defects_table,
    duplicate_positions,
)
from mdslab.workloads.simulator.encode import (
    PayloadSpec,
    connect,
    encode_payloads,
    render_json,
    uuid4_strings,
)
from mdslab.workloads.simulator.frame import Frame, frame_length
from mdslab.workloads.simulator.sampling import BoolArray, IntArray

HAND_BROKEN = (DefectKind.BAD_TYPE, DefectKind.MISSING_FIELD, DefectKind.MALFORMED_JSON)


@dataclass(frozen=True)
class EventType:
    """Everything the assembly needs to know about one event type."""

    name: str
    payload: PayloadSpec
    columns: Callable[[Frame], Mapping[str, pa.Array]]  # the SQL-visible columns of a frame
    defects: DefectRecipe


@dataclass(frozen=True)
class RawEvents:
    raw: pa.Table  # event_id, payload
    defects: pa.Table
    event_ids: pa.StringArray  # per frame row
    valid: BoolArray  # per frame row: rendered unbroken (duplicates are extra raw rows, not frame rows)


def assemble(
    frame: Frame,
    event_type: EventType,
    counts: Mapping[DefectKind, int],
    *,
    eligible: BoolArray,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> RawEvents:
    """Raw events for ``frame`` with ``counts`` defects; only ``eligible`` rows may be broken."""
    n = frame_length(frame)
    event_ids = uuid4_strings(rng, n)
    broken_kinds = [kind for kind in DefectKind if kind is not DefectKind.DUPLICATE]
    n_broken = sum(counts[kind] for kind in broken_kinds)
    candidates = np.flatnonzero(eligible)
    if n_broken > len(candidates):
        raise ValueError(
            f"{event_type.name}: {n_broken} defects requested but only {len(candidates)} rows can be broken"
        )
    chosen = rng.choice(candidates, size=n_broken, replace=False)
    kind_of = np.repeat(
        np.array([kind.value for kind in broken_kinds], dtype=object), [counts[k] for k in broken_kinds]
    )
    field_of: dict[int, str | None] = {}

    recipe = event_type.defects
    for kind, mutate in (
        (DefectKind.OUT_OF_RANGE, recipe.out_of_range),
        (DefectKind.UNKNOWN_REFERENCE, recipe.unknown_reference),
    ):
        rows = chosen[kind_of == kind.value]
        field_of.update(zip(rows.tolist(), mutate(frame, rows, rng, config), strict=True))

    valid = np.ones(n, dtype=bool)
    valid[chosen] = False
    malformed = np.zeros(n, dtype=bool)
    malformed[chosen[kind_of == DefectKind.MALFORMED_JSON.value]] = True
    base = pa.table(
        {
            "event_id": event_ids,
            "malformed": pa.array(malformed),
            **event_type.columns(frame),
        }
    )
    valid_rows = np.flatnonzero(valid)
    sources = np.sort(rng.choice(valid_rows, size=counts[DefectKind.DUPLICATE], replace=False))
    order = duplicate_positions(sources, n, rng)
    is_copy = order >= n
    frame_row = order.copy()
    frame_row[is_copy] = sources[order[is_copy] - n]
    with connect() as con:
        override = _hand_broken(con, base, chosen, kind_of, event_type, rng, field_of)
        base = base.append_column("override", override)
        base = base.take(pa.array(frame_row))  # raw order; the frame-ordered copy can go
        raw = encode_payloads(con, base, event_type.payload)

    position = np.empty(n, dtype=np.int64)
    position[frame_row[~is_copy]] = np.flatnonzero(~is_copy)
    defect_rows = position[chosen].tolist() + np.flatnonzero(is_copy).tolist()
    defect_ids = [
        None if malformed[r] else event_id
        for r, event_id in zip(chosen, event_ids.take(pa.array(chosen)).to_pylist(), strict=True)
    ]
    defect_ids += event_ids.take(pa.array(frame_row[is_copy])).to_pylist()
    kinds = list(kind_of) + [DefectKind.DUPLICATE.value] * int(is_copy.sum())
    fields = [field_of.get(int(r)) for r in chosen] + [None] * int(is_copy.sum())
    return RawEvents(
        raw=raw,
        defects=defects_table(event_type.name, defect_ids, defect_rows, kinds, fields),
        event_ids=event_ids,
        valid=valid,
    )


def _hand_broken(
    con: duckdb.DuckDBPyConnection,
    base: pa.Table,
    chosen: IntArray,
    kind_of: np.ndarray,
    event_type: EventType,
    rng: np.random.Generator,
    field_of: dict[int, str | None],
) -> pa.Array:
    """The ``override`` column: hand-broken payloads at their rows, null everywhere else."""
    hand = np.isin(kind_of, [kind.value for kind in HAND_BROKEN])
    rows = chosen[hand]
    payloads = render_json(con, base.take(pa.array(rows)), event_type.payload) if len(rows) else []
    broken: list[str] = []
    for row, kind, payload in zip(rows.tolist(), kind_of[hand], payloads, strict=True):
        text, field_of[row] = break_payload(payload, DefectKind(kind), event_type.defects, rng)
        broken.append(text)
    slot = np.full(base.num_rows, -1, dtype=np.int64)
    slot[rows] = np.arange(len(rows))
    return pa.array(broken, type=pa.string()).take(pa.array(slot, mask=slot < 0))
