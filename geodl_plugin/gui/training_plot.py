"""A live loss/accuracy plot fed with the per-epoch metrics a training task reports."""

from __future__ import annotations

from typing import Optional

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qgis.PyQt.QtWidgets import QSizePolicy, QVBoxLayout, QWidget


class TrainingPlot(QWidget):
    """Two small axes (loss, accuracy), training and validation lines. Each epoch updates the lines' data in
    place and asks for a repaint on the next event-loop turn: a full re-layout per epoch would cost the main
    thread ~80 ms."""

    _SERIES = (("loss", 0, "training"), ("val_loss", 0, "validation"),
               ("accuracy", 1, "training"), ("val_accuracy", 1, "validation"))

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.figure = Figure(figsize=(3.2, 2.4), dpi=72)
        self.figure.subplots_adjust(left=0.17, right=0.97, top=0.97, bottom=0.14, hspace=0.12)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.canvas.setMinimumHeight(160)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        loss_ax = self.figure.add_subplot(211)
        acc_ax = self.figure.add_subplot(212, sharex=loss_ax)
        self._axes = (loss_ax, acc_ax)
        loss_ax.set_ylabel("loss", fontsize=8)
        acc_ax.set_ylabel("accuracy", fontsize=8)
        acc_ax.set_xlabel("epoch", fontsize=8)
        loss_ax.tick_params(labelsize=7, labelbottom=False)
        acc_ax.tick_params(labelsize=7)
        self._lines = {}
        for key, ax_index, label in self._SERIES:
            (line,) = self._axes[ax_index].plot([], [], label=label,
                                                color="#1f77b4" if label == "training" else "#ff7f0e")
            self._lines[key] = line
        loss_ax.legend(fontsize=7, loc="upper right")
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.clear()

    def clear(self) -> None:
        self.history = {}
        self.epochs = []
        self._update()

    def add_epoch(self, values: dict) -> None:
        self.epochs.append(int(values.get("epoch", len(self.epochs) + 1)))
        for key, value in values.items():
            if key != "epoch":
                self.history.setdefault(key, []).append(float(value))
        self._update()

    def _update(self) -> None:
        for key, line in self._lines.items():
            values = self.history.get(key, [])
            line.set_data(self.epochs[-len(values):] if values else [], values)
        for ax in self._axes:
            ax.relim()
            ax.autoscale_view()
        self.canvas.draw_idle()  # paints on the next event-loop turn, never inside the task's signal
