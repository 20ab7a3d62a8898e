"""A step's logic as SQL, independent of the engine that runs it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

OUTPUT_COLUMN = "_output"


@dataclass(frozen=True)
class Route:
    """One output of a routed plan: the last stage's rows whose ``_output`` is ``table``, with
    ``columns`` as (stage column, output column) pairs."""

    table: str
    columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SqlPlan:
    """``inputs``: view name -> lake table; ``stages``: views materialized in order (so that outputs
    sharing work do not recompute it); ``outputs``: lake table -> SQL over inputs and stages.

    ``routes`` is set when the outputs share out the rows of the last stage (see :func:`routed_plan`):
    an engine may then compute that stage once and hand each row to its output, which is how Spark runs
    it; ``outputs`` still holds the equivalent SQL, one filtered query per output.
    """

    inputs: dict[str, str]
    stages: tuple[tuple[str, str], ...]
    outputs: dict[str, str]
    routes: tuple[Route, ...] = ()


def routed_plan(inputs: dict[str, str], stages: tuple[tuple[str, str], ...], routes: Iterable[Route]) -> SqlPlan:
    """A plan whose last stage holds every row once, with an ``_output`` column naming its output.

    Why: Spark does not keep a view's result, so outputs that read the same view recompute it, and a
    filter on a computed column is pushed below the projection that computes it, where it evaluates
    those expressions a second time. One pass that routes rows avoids both without caching anything.
    """
    last = stages[-1][0]
    routes = tuple(routes)
    outputs = {
        route.table: f"SELECT {', '.join(f'{source} AS {name}' for source, name in route.columns)} "
        f"FROM {last} WHERE {OUTPUT_COLUMN} = '{route.table}'"
        for route in routes
    }
    return SqlPlan(inputs, stages, outputs, routes)
