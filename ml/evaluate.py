"""Metrics and plots of a binary classifier on validation data.

The plots are plain matplotlib ``Figure`` objects, never pyplot's: a library that picks pyplot's
backend (``matplotlib.use("Agg")``) takes inline plots away from the notebook that imported it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, precision_recall_curve, roc_auc_score

Scores = npt.NDArray[np.float64]


CALIBRATION_BINS = 10  # score deciles: equal-mass bins, so a rare positive class still gets ten points


@dataclass(frozen=True)
class Calibration:
    """Observed positive rate against mean score, per non-empty score bin, with the rows in each."""

    observed: Scores
    predicted: Scores
    rows: npt.NDArray[np.int64]

    @property
    def error(self) -> float:
        """Expected calibration error: mean |observed - predicted| over the bins, weighted by rows."""
        return float(np.sum(self.rows * np.abs(self.observed - self.predicted)) / np.sum(self.rows))


def calibration(y: npt.NDArray[np.bool_], scores: Scores, bins: int = CALIBRATION_BINS) -> Calibration:
    """scikit-learn's calibration curve over score deciles; the ECE and the plot read the same bins.
    The rows per bin come from the edges ``calibration_curve`` uses (``strategy="quantile"``)."""
    observed, predicted = calibration_curve(y, scores, n_bins=bins, strategy="quantile")
    edges = np.percentile(scores, np.linspace(0, 100, bins + 1))
    rows = np.bincount(np.searchsorted(edges[1:-1], scores), minlength=bins)
    return Calibration(observed, predicted, rows[rows > 0])


def expected_calibration_error(y: npt.NDArray[np.bool_], scores: Scores, bins: int = CALIBRATION_BINS) -> float:
    return calibration(y, scores, bins).error


def binary_metrics(y: npt.NDArray[np.bool_], scores: Scores) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), Brier score and expected calibration error."""
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
        "brier": float(brier_score_loss(y, scores)),
        "ece": expected_calibration_error(y, scores),
        "positives": float(y.sum()),
        "rows": float(len(y)),
    }


def pr_curve_figure(y: npt.NDArray[np.bool_], curves: dict[str, Scores]) -> Figure:
    figure = Figure(figsize=(6, 4.5))
    axes = figure.subplots()
    for name, scores in curves.items():
        precision, recall, _ = precision_recall_curve(y, scores)
        axes.plot(recall, precision, label=f"{name} (AP {average_precision_score(y, scores):.3f})")
    axes.axhline(float(y.mean()), color="grey", linestyle=":", label=f"base rate {y.mean():.3%}")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall on the validation period", ylim=(0, 1.02))
    axes.legend(loc="lower left")  # a PR curve starts high on the left: lower left is the empty corner
    figure.tight_layout()
    return figure


def calibration_figure(y: npt.NDArray[np.bool_], curves: dict[str, Scores], bins: int = CALIBRATION_BINS) -> Figure:
    figure = Figure(figsize=(5, 4.5))
    axes = figure.subplots()
    points = {name: calibration(y, scores, bins) for name, scores in curves.items()}
    # zoomed to the points: with a rare positive class they all sit near the origin of a 0-1 square
    top = max([0.01, *(max(c.predicted.max(), c.observed.max()) for c in points.values())]) * 1.08
    axes.plot([0, top], [0, top], color="grey", linestyle=":", label="perfect")
    for name, curve in points.items():
        axes.plot(curve.predicted, curve.observed, marker="o", label=f"{name} (ECE {curve.error:.4f})")
    axes.set(xlabel="mean predicted probability", ylabel="observed fraud rate", title="Calibration (score deciles)",
             xlim=(0, top), ylim=(0, top))  # fmt: skip
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure


def importance_figure(names: list[str], importance: Any, top: int = 20) -> Figure:
    order = np.argsort(importance)[::-1][:top][::-1]
    figure = Figure(figsize=(6, 0.3 * len(order) + 1.2))
    axes = figure.subplots()
    axes.barh([names[i] for i in order], np.asarray(importance)[order])
    axes.set(xlabel="total gain", title="Feature importance (LightGBM, gain)")
    figure.tight_layout()
    return figure
