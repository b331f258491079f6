"""The Map tab's accuracy view of the current model: overall accuracy, kappa and per-class F1 with the
confusion matrix for a classifier; R², RMSE, MAE and bias with the predicted-vs-observed plot for a regression.
Fed by the Train step's ``accuracyChanged`` (the dock connects them)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QPixmap
from qgis.PyQt.QtWidgets import QGroupBox, QLabel, QTableWidget, QTableWidgetItem, QWidget

from ..core.evaluate.reports import RegressionReport, Report
from .forms import load_form


class AccuracyPanel(QGroupBox):
    # ui/accuracy_panel.ui
    accuracyLabel: QLabel
    f1Table: QTableWidget
    confusionLabel: QLabel

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        load_form(self, "accuracy_panel.ui")
        self.setObjectName("accuracyGroup")
        self.metrics: Optional[Report] = None  # the last held-out report shown (None before a training)
        self.f1Table.setColumnCount(4)
        self.f1Table.setHorizontalHeaderLabels(["Class", "F1", "Precision", "Recall"])
        self.f1Table.verticalHeader().setVisible(False)

    def clear(self) -> None:
        self.show_accuracy(None, "")

    def show_accuracy(self, metrics: Optional[Report], png: str) -> None:
        self.metrics = metrics
        self.f1Table.setRowCount(0)
        self.confusionLabel.clear()
        if not metrics:
            self.accuracyLabel.setText("Train a model to see its accuracy.")
            return
        if isinstance(metrics, RegressionReport):  # its scores, and the predicted-vs-observed plot
            self.accuracyLabel.setText(
                f"R² {metrics.r2:.3f} · RMSE {metrics.rmse:.4g} · MAE {metrics.mae:.4g}"
                f" · bias {metrics.bias:+.3g} · {metrics.n} held-out samples ({metrics.split} split)"
            )
            self._show_plot(png)
            return
        self.accuracyLabel.setText(
            f"Overall accuracy {metrics.overall_accuracy:.3f} · kappa {metrics.kappa:.3f}"
            f" · {metrics.n_samples} held-out {metrics.unit} ({metrics.split} split)"
        )
        self.f1Table.setRowCount(len(metrics.per_class))
        for r, (name, v) in enumerate(metrics.per_class.items()):
            for c, text in enumerate((name, f"{v.f1:.3f}", f"{v.precision:.3f}", f"{v.recall:.3f}")):
                self.f1Table.setItem(r, c, QTableWidgetItem(text))
        self.f1Table.resizeColumnsToContents()
        self._show_plot(png)

    def _show_plot(self, png: str) -> None:
        if png and Path(png).exists():
            pixmap = QPixmap(png)
            self.confusionLabel.setPixmap(pixmap.scaledToWidth(min(320, pixmap.width()), Qt.TransformationMode.FastTransformation))
