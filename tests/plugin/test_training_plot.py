"""The dock's live training plot: painted with QPainter from the reported epochs, cheap enough for the
main thread."""

from __future__ import annotations

import time

import pytest
from qgis.PyQt.QtGui import QColor, QImage

from geodl_plugin.gui.training_plot import TRAINING_COLOUR, VALIDATION_COLOUR, TrainingPlot, nice_ticks


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0.0, 1.0) == pytest.approx([0.0, 0.5, 1.0])
    assert nice_ticks(0.12, 0.93) == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert nice_ticks(1, 10, 4) == pytest.approx([2, 4, 6, 8, 10])
    assert nice_ticks(3.0, 3.0) == [3.0]
    assert nice_ticks(float("nan"), 1.0) == []


def _colours(image: QImage) -> set[str]:
    return {QColor(image.pixel(x, y)).name() for x in range(0, image.width(), 1) for y in range(0, image.height(), 2)}


def test_plot_draws_training_and_validation_lines(qtbot):
    plot = TrainingPlot()
    qtbot.addWidget(plot)
    plot.resize(320, 240)
    empty = plot.grab().toImage()
    for epoch in range(1, 31):
        plot.add_epoch(
            {"epoch": epoch, "loss": 1.0 / epoch, "val_loss": 1.2 / epoch, "accuracy": 1 - 0.5 / epoch, "val_accuracy": 1 - 0.6 / epoch}
        )
    assert plot.epochs == list(range(1, 31)) and len(plot.history["val_accuracy"]) == 30
    started = time.perf_counter()
    drawn = plot.grab().toImage()
    paint_seconds = time.perf_counter() - started
    colours = _colours(drawn)
    assert TRAINING_COLOUR in colours and VALIDATION_COLOUR in colours
    assert drawn != empty
    print(f"plot repaint with 30 epochs: {paint_seconds * 1000:.1f} ms")
    plot.clear()
    assert plot.epochs == [] and plot.history == {}


def test_plot_survives_odd_values(qtbot):
    plot = TrainingPlot()
    qtbot.addWidget(plot)
    plot.resize(60, 40)  # too small to draw: nothing, no error
    plot.add_epoch({"epoch": 1, "loss": float("nan"), "accuracy": 0.5})
    plot.grab()
    plot.resize(300, 200)
    plot.add_epoch({"epoch": 2, "loss": float("inf"), "accuracy": 0.5})  # one finite value, flat series
    assert plot.grab().toImage().width() == 300
