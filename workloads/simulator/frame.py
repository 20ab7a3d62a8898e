"""A frame is a dict of equally long numpy columns: the simulator's working form of a batch of events.

Plain arrays (not DataFrames) because every generator step is a vectorised numpy expression, and
mutating a handful of rows in place for a planted defect is trivial. Nulls are NaN in float columns
and -1 in id-like integer columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Frame = dict[str, npt.NDArray[Any]]


def frame_length(frame: Frame) -> int:
    lengths = {len(column) for column in frame.values()}
    if len(lengths) != 1:
        raise ValueError(f"frame columns differ in length: { {k: len(v) for k, v in frame.items()} }")
    return lengths.pop()


def concat_frames(frames: Sequence[Frame]) -> Frame:
    """Row-wise concatenation; every frame must have the same columns."""
    columns = list(frames[0])
    for frame in frames[1:]:
        if list(frame) != columns:
            raise ValueError(f"cannot concatenate frames with columns {list(frame)} and {columns}")
    return {name: np.concatenate([frame[name] for frame in frames]) for name in columns}


def take(frame: Frame, rows: npt.NDArray[np.int64]) -> Frame:
    return {name: column[rows] for name, column in frame.items()}


def narrowed(frame: Frame, dtypes: Mapping[str, type[np.generic]]) -> Frame:
    """``frame`` with the named columns cast to smaller types: millions of rows, every byte counts."""
    return {name: column.astype(dtypes.get(name, column.dtype), copy=False) for name, column in frame.items()}
