"""Accuracy of a regression: RMSE, MAE, R², bias, and the predicted-vs-observed scatter plot."""

from __future__ import annotations

import math
import os

import numpy as np

from ..io.atomic import atomic_path
from ..runtime.errors import GeoDLError
from .reports import RegressionReport


def regression_report(observed: np.ndarray, predicted: np.ndarray, target: str = "") -> RegressionReport:
    """RMSE, MAE, R² (1 − SSres/SStot), bias (mean of predicted − observed) and n, as plain floats."""
    obs = np.asarray(observed, dtype=np.float64).ravel()
    pred = np.asarray(predicted, dtype=np.float64).ravel()
    if obs.shape != pred.shape:
        raise GeoDLError(f"{len(pred)} predictions for {len(obs)} observations.")
    if not len(obs):
        raise GeoDLError("No held-out sample to score the regression on.")
    err = pred - obs
    ss_tot = float(((obs - obs.mean()) ** 2).sum())
    r2 = 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return RegressionReport(
        rmse=math.sqrt(float((err**2).mean())),
        mae=float(np.abs(err).mean()),
        r2=r2,
        bias=float(err.mean()),
        n=int(len(obs)),
        observed_mean=float(obs.mean()),
        observed_std=float(obs.std()),
        target=target,
    )


def plot_predicted_vs_observed(observed: np.ndarray, predicted: np.ndarray, png_path: str | os.PathLike, target: str = "target") -> None:
    """Scatter of predicted against observed with the 1:1 line and the metrics in the title."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    report = regression_report(observed, predicted)
    obs, pred = np.asarray(observed, np.float64), np.asarray(predicted, np.float64)
    low, high = float(min(obs.min(), pred.min())), float(max(obs.max(), pred.max()))
    fig = Figure(figsize=(4.6, 4.4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(obs, pred, s=10, alpha=0.6, color="#2b8cbe", edgecolors="none")
    ax.plot([low, high], [low, high], color="#333333", linewidth=1, label="1:1")
    ax.set_xlabel(f"observed {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_title(
        f"RMSE {report.rmse:.3g}, MAE {report.mae:.3g}, R² {report.r2:.3f}, bias {report.bias:+.3g} (n={report.n})",
        fontsize=8,
    )
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")


def save_regression_report(report: RegressionReport, json_path: str | os.PathLike, png_path: str | os.PathLike | None = None) -> None:
    """The report as JSON; the scatter plot from its per-sample ``observed``/``predicted`` lists if asked."""
    import json

    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    if png_path:
        plot_predicted_vs_observed(np.array(report.observed), np.array(report.predicted), png_path, report.target or "target")
