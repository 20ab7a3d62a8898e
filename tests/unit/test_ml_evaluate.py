"""The calibration figures: one binning (scikit-learn's, score deciles) for the ECE and the plot."""

from __future__ import annotations

import numpy as np
import pytest

from mdslab.ml.evaluate import calibration, calibration_figure, expected_calibration_error


def _labels(scores: np.ndarray, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).random(len(scores)) < scores


def test_the_bins_are_scikit_learns_and_weight_the_error() -> None:
    scores = np.random.default_rng(1).beta(0.5, 20, 20_000)  # a rare positive class, as fraud is
    y = _labels(scores)
    curve = calibration(y, scores)
    assert len(curve.rows) == 10 and curve.rows.sum() == len(scores)
    # the row counts belong to calibration_curve's own bins: they recover the overall means exactly
    assert np.sum(curve.rows * curve.predicted) / len(scores) == pytest.approx(scores.mean())
    assert np.sum(curve.rows * curve.observed) / len(scores) == pytest.approx(y.mean())


def test_a_calibrated_model_scores_a_small_error_and_an_overconfident_one_a_large_one() -> None:
    scores = np.random.default_rng(2).beta(0.5, 20, 50_000)
    y = _labels(scores)
    calibrated = expected_calibration_error(y, scores)
    overconfident = expected_calibration_error(y, np.clip(scores * 3, 0, 1))
    assert calibrated < 0.005
    assert overconfident > 5 * calibrated


def test_the_plot_shows_the_same_bins_and_their_error() -> None:
    scores = np.random.default_rng(3).beta(0.5, 20, 5_000)
    y = _labels(scores)
    figure = calibration_figure(y, {"model": scores})
    (line,) = [line for line in figure.axes[0].get_lines() if line.get_label().startswith("model")]
    curve = calibration(y, scores)
    assert np.allclose(line.get_xdata(), curve.predicted) and np.allclose(line.get_ydata(), curve.observed)
    assert f"ECE {curve.error:.4f}" in line.get_label()
