"""Too little data to train is refused with the counts, before any session or run starts."""

from __future__ import annotations

import pandas as pd
import pytest

from mdslab.ml.features import CLAIMS, NotTrainableError, TrainingFrame, check_trainable


def _frame(labels: list[bool]) -> TrainingFrame:
    times = pd.date_range("2024-01-01", periods=len(labels), freq="h", tz="UTC")
    return TrainingFrame(CLAIMS, pd.DataFrame({CLAIMS.time_column: times, CLAIMS.label: labels}), 7)


def test_positives_only_in_the_training_rows_are_refused_with_the_counts() -> None:
    with pytest.raises(NotTrainableError) as raised:
        check_trainable(_frame([True, False] * 40 + [False] * 20))  # the latest 20%: no positive
    message = str(raised.value)
    assert "gold.claims_features@7" in message and "100 labelled rows" in message
    assert "positives: 40 to train on, 0 to validate on" in message


def test_both_classes_on_both_sides_pass() -> None:
    check_trainable(_frame([True, False] * 50))
