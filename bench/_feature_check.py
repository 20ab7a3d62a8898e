"""How bench/train.py checks the pandas features against gold.fraud_features: value by value per
event_id, exact or within a tolerance that allows the SQL's rounding, so the baseline is known to
compute the same thing it is timed against.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mdslab.ml.features import FRAUD

# The feature check: a value matches exactly (floats to 1e-9 relative) or within the tolerance, which
# takes one step of the coarsest rounding in the SQL (km to 0.001) or 0.1% of the value: a half-step
# tie rounded the other way, or a 30-day mean off by such a flip feeding amount_to_avg_30d.
EXACT_REL = 1e-9
TOLERANCE_ABS = 1.01e-3
TOLERANCE_REL = 1e-3
CHECKED_COLUMNS = [*FRAUD.features, FRAUD.label]


def compare_features(mine: pd.DataFrame, gold: pd.DataFrame) -> dict[str, Any]:
    """Share of rows and values of the pandas features equal to gold's (see EXACT_REL, TOLERANCE_*)."""
    joined = gold[["event_id", *CHECKED_COLUMNS]].merge(
        mine[["event_id", *CHECKED_COLUMNS]], on="event_id", how="outer", suffixes=("_gold", "_pandas"), indicator=True
    )
    both = joined["_merge"] == "both"
    result: dict[str, Any] = {
        "rows_gold": len(gold),
        "rows_pandas": len(mine),
        "rows_only_in_gold": int((joined["_merge"] == "left_only").sum()),
        "rows_only_in_pandas": int((joined["_merge"] == "right_only").sum()),
        "tolerance": f"|diff| <= {TOLERANCE_ABS} or <= {TOLERANCE_REL:.1%} of the value",
        "columns": {},
    }
    joined = joined[both]
    all_exact = np.ones(len(joined), dtype=bool)
    all_close = np.ones(len(joined), dtype=bool)
    for column in CHECKED_COLUMNS:
        a, b = joined[f"{column}_gold"], joined[f"{column}_pandas"]
        a_null, b_null = a.isna().to_numpy(), b.isna().to_numpy()
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            x = a.to_numpy(np.float64, na_value=0.0)
            y = b.to_numpy(np.float64, na_value=0.0)
            diff = np.abs(x - y)
            scale = np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))
            exact = (a_null & b_null) | (~a_null & ~b_null & (diff <= EXACT_REL * scale))
            close = exact | (~a_null & ~b_null & ((diff <= TOLERANCE_ABS) | (diff <= TOLERANCE_REL * scale)))
            flips = ~exact & ~a_null & ~b_null & (np.abs(diff - 1e-4) <= EXACT_REL * scale)
            flips |= ~exact & ~a_null & ~b_null & (np.abs(diff - 1e-3) <= EXACT_REL * scale)
        else:
            same = (a.astype(object).to_numpy() == b.astype(object).to_numpy()) & ~a_null & ~b_null
            exact = close = same | (a_null & b_null)
            flips = np.zeros(len(exact), dtype=bool)
        all_exact &= exact
        all_close &= close
        bad = np.flatnonzero(~close)[:3]
        result["columns"][column] = {
            "exact_share": round(float(exact.mean()), 6) if len(exact) else None,
            "within_tolerance_share": round(float(close.mean()), 6) if len(close) else None,
            "one_step_rounding_flips": int(flips.sum()),
            "outside_tolerance": int((~close).sum()),
            "examples": [
                {"event_id": joined["event_id"].iloc[i], "gold": repr(a.iloc[i]), "pandas": repr(b.iloc[i])}
                for i in bad
            ],
        }
    result["rows_compared"] = len(joined)
    result["rows_all_exact_share"] = round(float(all_exact.mean()), 6) if len(joined) else None
    result["rows_all_within_tolerance_share"] = round(float(all_close.mean()), 6) if len(joined) else None
    result["values_within_tolerance_share"] = (
        round(float(np.mean([c["within_tolerance_share"] for c in result["columns"].values()])), 6)
        if len(joined)
        else None
    )
    return result
