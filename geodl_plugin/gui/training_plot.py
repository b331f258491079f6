"""A live loss/accuracy plot fed with the per-epoch metrics a training task reports.

Drawn with QPainter, not matplotlib: a matplotlib canvas re-renders its whole figure (axes, ticks, text) on
the main thread at every epoch, about 70 ms each time here, which is a visible stutter of the map canvas
when epochs come quickly. Painting two panels of polylines costs about a millisecond.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from qgis.PyQt.QtCore import QPointF, QRectF, Qt
from qgis.PyQt.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen, QPolygonF
from qgis.PyQt.QtWidgets import QSizePolicy, QWidget

TRAINING_COLOUR = "#1f77b4"
VALIDATION_COLOUR = "#ff7f0e"


def nice_ticks(low: float, high: float, count: int = 3) -> list[float]:
    """About ``count`` round values (1, 2 or 5 × 10^k apart) covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    base = 10 ** math.floor(math.log10(raw))
    step = min((m * base for m in (1, 2, 5, 10)), key=lambda s: abs(math.log(s / raw)))
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


class TrainingPlot(QWidget):
    """Two panels (loss above, accuracy below), each with a training and a validation line over the epochs.
    ``add_epoch`` stores the values and schedules a repaint; nothing is drawn inside the task's signal."""

    PANELS = (("loss", ("loss", "val_loss")), ("accuracy", ("accuracy", "val_accuracy")))

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(160)
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []

    def clear(self) -> None:
        self.history = {}
        self.epochs = []
        self.update()

    def add_epoch(self, values: dict) -> None:
        self.epochs.append(int(values.get("epoch", len(self.epochs) + 1)))
        for key, value in values.items():
            if key != "epoch":
                self.history.setdefault(key, []).append(float(value))
        self.update()

    # --- painting ---------------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.fillRect(self.rect(), self.palette().base())
            font = QFont(self.font())
            font.setPointSizeF(max(6.5, font.pointSizeF() * 0.8))
            painter.setFont(font)
            metrics = painter.fontMetrics()
            left = metrics.horizontalAdvance("0.000") + 28
            bottom = metrics.height() + 6
            top, right, gap = 6, 8, 8
            height = (self.height() - top - bottom - gap) / 2
            width = self.width() - left - right
            if width < 20 or height < 20:
                return
            for i, (label, keys) in enumerate(self.PANELS):
                frame = QRectF(left, top + i * (height + gap), width, height)
                self._panel(painter, frame, label, keys, x_labels=i == len(self.PANELS) - 1)
            self._legend(painter, QRectF(left, top, width, height))
        finally:
            painter.end()

    def _x_range(self) -> tuple[float, float]:
        if not self.epochs:
            return 1.0, 10.0
        return float(min(self.epochs)), float(max(max(self.epochs), min(self.epochs) + 1))

    def _panel(self, painter: QPainter, frame: QRectF, label: str, keys: Sequence[str], x_labels: bool) -> None:
        text = self.palette().text().color()
        grid = QColor(text)
        grid.setAlpha(40)
        values = [v for k in keys for v in self.history.get(k, []) if math.isfinite(v)]
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        pad = 0.05 * (high - low)
        low, high = low - pad, high + pad
        x0, x1 = self._x_range()

        def to_point(x: float, y: float) -> QPointF:
            return QPointF(frame.left() + (x - x0) / (x1 - x0) * frame.width(), frame.bottom() - (y - low) / (high - low) * frame.height())

        metrics = painter.fontMetrics()
        for tick in nice_ticks(low, high):
            y = to_point(x0, tick).y()
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(frame.left(), y), QPointF(frame.right(), y))
            painter.setPen(text)
            painter.drawText(
                QRectF(0, y - metrics.height() / 2, frame.left() - 4, metrics.height()),
                int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                f"{tick:g}",
            )
        if x_labels:
            for tick in nice_ticks(x0, x1, 4):
                if tick == int(tick):
                    x = to_point(tick, low).x()
                    painter.drawText(
                        QRectF(x - 30, frame.bottom() + 2, 60, metrics.height()),
                        int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop),
                        f"{int(tick)}",
                    )
        painter.save()
        painter.translate(10, frame.center().y())
        painter.rotate(-90)
        painter.drawText(
            QRectF(-frame.height() / 2, -metrics.height() / 2, frame.height(), metrics.height()), int(Qt.AlignmentFlag.AlignCenter), label
        )
        painter.restore()
        painter.setPen(QPen(grid, 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(frame)
        for key, colour in zip(keys, (TRAINING_COLOUR, VALIDATION_COLOUR)):
            series = self.history.get(key, [])
            epochs = self.epochs[-len(series) :] if series else []
            points = [to_point(x, y) for x, y in zip(epochs, series) if math.isfinite(y)]
            painter.setPen(QPen(QColor(colour), 1.6))
            if len(points) == 1:
                painter.drawEllipse(points[0], 2.0, 2.0)
            elif points:
                painter.drawPolyline(QPolygonF(points))

    def _legend(self, painter: QPainter, frame: QRectF) -> None:
        metrics = painter.fontMetrics()
        y = frame.top() + metrics.height() * 0.5 + 4
        x = frame.right() - metrics.horizontalAdvance("validation") - 26
        for name, colour in (("training", TRAINING_COLOUR), ("validation", VALIDATION_COLOUR)):
            painter.setPen(QPen(QColor(colour), 2))
            painter.drawLine(QPointF(x, y), QPointF(x + 14, y))
            painter.setPen(self.palette().text().color())
            painter.drawText(QPointF(x + 18, y + metrics.ascent() / 2 - 1), name)
            y += metrics.height()
