"""Accuracy assessment: confusion matrix, overall accuracy, Cohen's kappa, per-class precision, recall, F1
and IoU; area-adjusted estimates after Olofsson et al. (2014), *Good practices for estimating area and
assessing accuracy of land change*, Remote Sensing of Environment 148: 42-57."""

from __future__ import annotations

import json
import os
from typing import Optional, Sequence

import numpy as np

from ..data.classes import ClassTable
from .reports import AccuracyReport, AreaAdjusted, AreaEstimate, ClassScores


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, class_ids: Sequence[int]) -> np.ndarray:
    """Rows = reference class, columns = predicted class, in ``class_ids`` order."""
    index = {c: i for i, c in enumerate(class_ids)}
    cm = np.zeros((len(class_ids), len(class_ids)), dtype=np.int64)
    for t, p in zip(np.asarray(y_true).tolist(), np.asarray(y_pred).tolist()):
        if t in index and p in index:
            cm[index[t], index[p]] += 1
    return cm


def report_from_confusion(cm: np.ndarray, classes: ClassTable, unit: str = "samples") -> AccuracyReport:
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    diag = np.diag(cm)
    oa = float(diag.sum() / total) if total else 0.0
    expected = float((cm.sum(0) * cm.sum(1)).sum() / total**2) if total else 0.0
    kappa = float((oa - expected) / (1 - expected)) if expected < 1 else 1.0
    per_class = {}
    for i, c in enumerate(classes):
        tp = diag[i]
        pred = cm[:, i].sum()
        ref = cm[i, :].sum()
        precision = tp / pred if pred else 0.0
        recall = tp / ref if ref else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        union = pred + ref - tp
        per_class[c.name] = ClassScores(float(precision), float(recall), float(f1), float(tp / union) if union else 0.0, int(ref))
    return AccuracyReport(
        classes=classes.names,
        class_ids=classes.ids,
        confusion_matrix=cm.astype(int).tolist(),
        overall_accuracy=oa,
        kappa=kappa,
        macro_f1=float(np.mean([v.f1 for v in per_class.values()])) if per_class else 0.0,
        mean_iou=float(np.mean([v.iou for v in per_class.values()])) if per_class else 0.0,
        per_class=per_class,
        n_samples=int(total),
        unit=unit,
    )


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: ClassTable) -> AccuracyReport:
    return report_from_confusion(confusion_matrix(y_true, y_pred, classes.ids), classes)


def area_adjusted_estimates(
    map_vs_reference: np.ndarray, map_pixel_counts: Sequence[int], pixel_area: float, classes: ClassTable
) -> AreaAdjusted:
    """Stratified estimators of Olofsson et al. (2014). ``map_vs_reference``: sample counts with rows = map
    class, columns = reference class; ``map_pixel_counts``: mapped pixels per class (the strata sizes)."""
    n = np.asarray(map_vs_reference, dtype=np.float64)
    counts = np.asarray(map_pixel_counts, dtype=np.float64)
    total_area = counts.sum() * pixel_area
    w = counts / counts.sum()
    n_i = n.sum(axis=1)
    safe = np.where(n_i > 0, n_i, 1)
    p = w[:, None] * n / safe[:, None]  # estimated area proportions, cell by cell
    p_j = p.sum(axis=0)
    frac = n / safe[:, None]
    var_terms = np.where((n_i > 1)[:, None], w[:, None] ** 2 * frac * (1 - frac) / np.maximum(n_i - 1, 1)[:, None], 0)
    se_p_j = np.sqrt(var_terms.sum(axis=0))
    users = np.divide(np.diag(p), p.sum(axis=1), out=np.zeros(len(w)), where=p.sum(axis=1) > 0)
    producers = np.divide(np.diag(p), p_j, out=np.zeros(len(w)), where=p_j > 0)
    oa = float(np.trace(p))
    out = {
        c.name: AreaEstimate(
            mapped_area=float(counts[i] * pixel_area),
            estimated_area=float(p_j[i] * total_area),
            estimated_area_ci95=float(1.96 * se_p_j[i] * total_area),
            users_accuracy=float(users[i]),
            producers_accuracy=float(producers[i]),
        )
        for i, c in enumerate(classes)
    }
    return AreaAdjusted(overall_accuracy=oa, total_area=float(total_area), per_class=out)


def save_report(report: AccuracyReport, json_path: str | os.PathLike, png_path: Optional[str | os.PathLike] = None) -> None:
    from ..io.atomic import atomic_path

    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    if png_path:
        plot_confusion_matrix(report, png_path)


def plot_confusion_matrix(report: AccuracyReport, png_path: str | os.PathLike) -> None:
    """Confusion matrix as a PNG (counts, row-normalised colour), with OA and kappa in the title."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from ..io.atomic import atomic_path

    cm = np.asarray(report.confusion_matrix, dtype=np.float64)
    names = report.classes
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig = Figure(figsize=(1.2 * len(names) + 2.5, 1.0 * len(names) + 2.2), dpi=110)
    ax = fig.add_subplot(111)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), labels=names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), labels=names)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("Reference")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(f"OA {report.overall_accuracy:.3f}   kappa {report.kappa:.3f}")
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
