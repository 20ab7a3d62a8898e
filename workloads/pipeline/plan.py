"""A step's logic as SQL, independent of the engine that runs it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SqlPlan:
    """``inputs``: view name -> lake table; ``stages``: views materialized in order (so that outputs
    sharing work do not recompute it); ``outputs``: lake table -> SQL over inputs and stages."""

    inputs: dict[str, str]
    stages: tuple[tuple[str, str], ...]
    outputs: dict[str, str]
