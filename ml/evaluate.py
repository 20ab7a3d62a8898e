"""Metrics and plots of a binary classifier on validation data."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures go to files and MLflow
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, brier_score_loss, precision_recall_curve, roc_auc_score

Scores = npt.NDArray[np.float64]


def expected_calibration_error(y: npt.NDArray[np.bool_], scores: Scores, bins: int = 10) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by bin size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            error += members.mean() * abs(float(y[members].mean()) - float(scores[members].mean()))
    return error


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
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for name, scores in curves.items():
        precision, recall, _ = precision_recall_curve(y, scores)
        axes.plot(recall, precision, label=f"{name} (AP {average_precision_score(y, scores):.3f})")
    axes.axhline(float(y.mean()), color="grey", linestyle=":", label=f"base rate {y.mean():.3%}")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall on the validation period", ylim=(0, 1.02))
    axes.legend(loc="upper right")
    figure.tight_layout()
    return figure


def calibration_figure(y: npt.NDArray[np.bool_], curves: dict[str, Scores], bins: int = 10) -> Figure:
    figure, axes = plt.subplots(figsize=(5, 4.5))
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, scores in curves.items():
        edges = np.quantile(scores, np.linspace(0, 1, bins + 1))
        index = np.clip(np.searchsorted(edges[1:-1], scores, side="right"), 0, bins - 1)
        means = [(scores[index == b].mean(), y[index == b].mean()) for b in range(bins) if (index == b).any()]
        axes.plot(*zip(*means, strict=True), marker="o", label=name)
    axes.set(xlabel="mean predicted probability", ylabel="observed fraud rate", title="Calibration (score deciles)")
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure


def importance_figure(names: list[str], importance: Any, top: int = 20) -> Figure:
    order = np.argsort(importance)[::-1][:top][::-1]
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(order) + 1.2))
    axes.barh([names[i] for i in order], np.asarray(importance)[order])
    axes.set(xlabel="total gain", title="Feature importance (LightGBM, gain)")
    figure.tight_layout()
    return figure
