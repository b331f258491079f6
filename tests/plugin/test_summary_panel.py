"""The Labels tab's separability check: labels + chosen imagery → a background task → the plot in the panel."""

from __future__ import annotations

from .test_dock import dock, label_scene, wait_done  # noqa: F401 - the dock fixture


def test_summary_panel_shows_the_class_plot(dock, qgis_canvas, qgis_new_project, qtbot, tmp_path):  # noqa: F811
    panel = dock.labels.summary_panel
    assert dock.labels.labelsLayout.indexOf(panel) == dock.labels.labelsLayout.indexOf(dock.labels.samplingGroup) + 1
    panel.summarize()
    assert "Label some points" in dock.messageLabel.text() and panel.task is None
    label_scene(dock, qgis_canvas, qgis_new_project, tmp_path, per_class=12)
    panel.summarize()
    wait_done(qtbot, dock, panel.task, timeout=60000)
    assert panel.report["classes"]["water"]["pixels"] == 12
    assert panel.report["separability"]["min_jeffries_matusita"] > 1.9
    assert "Least separable: field / water" in panel.statusLabel.text()
    assert not panel.plotLabel.pixmap().isNull() and panel.summarizeButton.isEnabled()
