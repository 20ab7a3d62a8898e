"""Planting defects: how many of each kind, and how a payload is broken by hand.

Defects that are still well-typed values (an amount out of range, an unknown customer) are written
into the numpy frame before rendering, so they go through the same vectorised JSON path as valid
events. Only defects that no typed column can hold (a number sent as "12,50", a missing key, text
that is not JSON) are produced here, in Python, for the few rows concerned.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mdslab.workloads.simulator.config import DefectKind, DefectMix, SimulationConfig
from mdslab.workloads.simulator.frame import Frame
from mdslab.workloads.simulator.sampling import IntArray

TypedMutation = Callable[[Frame, IntArray, np.random.Generator, SimulationConfig], list[str]]
BadValue = Callable[[Any, np.random.Generator], object]

#: Bodies that gateways and half-written files put where JSON was expected.
NOT_JSON = (
    "<html><head><title>502 Bad Gateway</title></head><body>upstream timed out</body></html>",
    "Internal Server Error",
    "",
)
DEFECTS_SCHEMA = pa.schema(
    [
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("event_id", pa.string()),
        pa.field("row_index", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("field", pa.string()),
    ]
)


@dataclass(frozen=True)
class DefectRecipe:
    """How to break one event type: typed mutations, bad values per field, removable fields."""

    out_of_range: TypedMutation
    unknown_reference: TypedMutation
    bad_values: Mapping[str, tuple[BadValue, ...]]
    missing_fields: tuple[str, ...]


def allocate(total: int, mix: DefectMix) -> dict[DefectKind, int]:
    """Split ``total`` defects over the kinds by weight (largest remainder).

    Every kind with a positive weight gets at least one defect when ``total`` allows it, so small runs
    still exercise every quarantine reason.
    """
    weights = mix.weights()
    positive = [kind for kind, weight in weights.items() if weight > 0]
    share = {kind: total * weights[kind] / sum(weights.values()) for kind in DefectKind}
    counts = {kind: int(share[kind]) for kind in DefectKind}
    by_remainder = sorted(DefectKind, key=lambda kind: (-(share[kind] - counts[kind]), list(DefectKind).index(kind)))
    for kind in by_remainder[: total - sum(counts.values())]:
        counts[kind] += 1
    if total >= len(positive):
        for kind in positive:
            if counts[kind] == 0:
                donor = max(DefectKind, key=lambda k: counts[k])
                counts[donor] -= 1
                counts[kind] = 1
    return counts


def break_payload(
    payload: str, kind: DefectKind, recipe: DefectRecipe, rng: np.random.Generator
) -> tuple[str, str | None]:
    """A broken copy of a valid JSON payload and the field that was broken (None if not one field)."""
    if kind is DefectKind.MALFORMED_JSON:
        variant = int(rng.integers(0, 3))
        if variant == 0:  # cut off mid-document, as by a dropped connection
            return payload[: int(rng.integers(10, len(payload) - 2))], None
        if variant == 1:  # a Python dict printed instead of serialised
            return str(json.loads(payload)), None
        return NOT_JSON[int(rng.integers(0, len(NOT_JSON)))], None
    document = json.loads(payload)
    if kind is DefectKind.MISSING_FIELD:
        field = recipe.missing_fields[int(rng.integers(0, len(recipe.missing_fields)))]
        del document[field]
    elif kind is DefectKind.BAD_TYPE:
        field = sorted(recipe.bad_values)[int(rng.integers(0, len(recipe.bad_values)))]
        makers = recipe.bad_values[field]
        document[field] = makers[int(rng.integers(0, len(makers)))](document[field], rng)
    else:
        raise ValueError(f"{kind} defects are planted in the typed frame, not in the payload")
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")), field


def duplicate_positions(sources: IntArray, n_base: int, rng: np.random.Generator) -> IntArray:
    """Raw-stream order of base rows plus re-sent copies of ``sources``, each after its original.

    Most copies are producer retries a few dozen events later; the rest are replays much later.
    """
    retry = rng.random(len(sources)) < 0.7
    gap = np.where(
        retry,
        rng.geometric(0.03, len(sources)),
        (rng.random(len(sources)) * (n_base - sources)).astype(np.int64) + 1,
    )
    keys = np.concatenate([np.arange(n_base, dtype=np.float64), np.minimum(sources + gap, n_base) - 0.5])
    return np.argsort(keys, kind="stable").astype(np.int64)


def defects_table(
    event_type: str, event_ids: list[str | None], rows: list[int], kinds: list[str], fields: list[str | None]
) -> pa.Table:
    order = np.argsort(np.asarray(rows, dtype=np.int64), kind="stable")
    return pa.table(
        {
            "event_type": pa.array([event_type] * len(rows), type=pa.string()),
            "event_id": pa.array([event_ids[i] for i in order], type=pa.string()),
            "row_index": pa.array(np.asarray(rows, dtype=np.int64)[order]),
            "kind": pa.array([kinds[i] for i in order], type=pa.string()),
            "field": pa.array([fields[i] for i in order], type=pa.string()),
        },
        schema=DEFECTS_SCHEMA,
    )
