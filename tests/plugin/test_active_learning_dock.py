"""The dock's active-learning loop, driven like a user: train → map → Suggest points → walk through them with
the keys (the map pans to each; 1–9 labels, S skips, N/P move) → labelled points join the training points →
Retrain (one click: train with the same settings, map again) → the rounds table shows both rounds with
held-out and reference accuracy. Also the Map step's ONNX export button."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qgis.core import QgsPointXY, QgsVectorLayer
from qgis.PyQt.QtCore import Qt

from geodl_plugin.gui.dock import GeoDLDock
from geodl_plugin.gui.map_panel import AREA_RASTER
from geodl_plugin.tasks import is_running
from tests.core.synthetic import write_points
from tests.plugin.dock_support import ORIGIN, PIXEL, add_raster, raster_extent, setup_canvas, write_two_class_raster

SIZE = 60
HALF_X = ORIGIN[0] + SIZE * PIXEL / 2  # left of it: water (class row 0); right: field (row 1)


@pytest.fixture
def dock(qgis_iface, qgis_new_project, qgis_canvas, qtbot, tmp_path):
    d = GeoDLDock(None, iface=qgis_iface, project=qgis_new_project, canvas=qgis_canvas)
    qtbot.addWidget(d)
    d.set_output_dir(str(tmp_path / "out"))
    yield d
    d.cancel_all()
    qtbot.waitUntil(lambda: not d.running_tasks(), timeout=60000)
    d.disconnect_project()


def _wait(qtbot, dock, task, timeout=180000):
    assert task is not None, dock.messageLabel.text()
    qtbot.waitUntil(lambda: not is_running(task), timeout=timeout)
    qtbot.wait(50)


def _reference_points(path: Path) -> QgsVectorLayer:
    xy, names = [], []
    for r in range(3, SIZE, 6):
        for c in range(3, SIZE, 6):
            x, y = ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL
            xy.append((x, y))
            names.append("water" if x < HALF_X else "field")
    write_points(path, xy, names, field="class_name", epsg=32633)
    return QgsVectorLayer(str(path), "reference", "ogr")


def _labelled_scene(dock, qgis_canvas, qgis_new_project, tmp_path) -> None:
    """Two classes, four labels each far from the edge between the halves; the forest (fast); the raster's
    extent as the map area; reference points on a grid."""
    panel = dock.active_learning
    raster = add_raster(qgis_new_project, write_two_class_raster(tmp_path / "scene.tif", SIZE))
    setup_canvas(qgis_canvas, [raster], raster_extent(SIZE))
    dock.imagery.set_rasters([raster])
    for name in ("water", "field"):
        dock.labels.add_class(name)
    dock.labels.ensure_labels_layer()
    crs = raster.crs()
    for i in range(4):
        dock.session.add_point(QgsPointXY(ORIGIN[0] + 40 + 10 * i, ORIGIN[1] - 60 - 120 * i), 1, crs)
        dock.session.add_point(QgsPointXY(ORIGIN[0] + 560 - 10 * i, ORIGIN[1] - 60 - 120 * i), 2, crs)
    dock.training.modelTypeCombo.setCurrentIndex(dock.training.modelTypeCombo.findData("rf"))
    dock.mapping.predictAreaCombo.setCurrentIndex(dock.mapping.predictAreaCombo.findData(AREA_RASTER))
    reference = _reference_points(tmp_path / "reference.gpkg")
    qgis_new_project.addMapLayer(reference)
    panel.referenceCombo.setLayer(reference)
    panel.referenceFieldCombo.setField("class_name")


@pytest.mark.slow
def test_suggest_label_retrain_loop(dock, qgis_canvas, qgis_new_project, qtbot, tmp_path):
    panel = dock.active_learning
    _labelled_scene(dock, qgis_canvas, qgis_new_project, tmp_path)

    # round 1: train, map (the map writes the uncertainty rasters)
    assert panel.suggest() is None and "Classify or preview first" in dock.messageLabel.text()
    _wait(qtbot, dock, dock.training.start_training())
    assert len(panel.rounds) == 1 and panel.rounds[0].labels == 8
    _wait(qtbot, dock, dock.mapping.predict(AREA_RASTER))
    assert panel.last_map is not None and Path(panel.last_map.margin_output).exists()
    assert panel.rounds[0].reference is not None  # scored against the reference points once the map arrived

    # Suggest points → the ranked "to label" layer
    panel.countSpin.setValue(6)
    task = panel.suggest()
    qtbot.waitUntil(lambda: panel.layer is not None, timeout=60000)
    assert panel.layer.featureCount() == 6 and len(panel.order) == 6
    ranks = [panel.layer.getFeature(fid)["rank"] for fid in panel.order]
    assert ranks == sorted(ranks)
    assert not is_running(task)  # ended (QGIS' task manager may already have deleted it)

    # walk with the keys: the map pans to each point
    panel.walkButton.setChecked(True)
    assert qgis_canvas.mapTool() is panel.tool

    def centred_on_current():
        p = panel.current().geometry().asPoint()
        c = qgis_canvas.center()
        return abs(p.x() - c.x()) < 1e-6 and abs(p.y() - c.y()) < 1e-6

    assert panel.position == 0 and centred_on_current()
    qtbot.keyClick(qgis_canvas, Qt.Key.Key_N)
    assert panel.position == 1 and centred_on_current()
    qtbot.keyClick(qgis_canvas, Qt.Key.Key_P)
    assert panel.position == 0 and centred_on_current()
    skipped = panel.order[0]
    qtbot.keyClick(qgis_canvas, Qt.Key.Key_S)
    assert panel.layer.getFeature(skipped)["status"] == "skipped" and panel.position == 1
    before = dict(dock.session.counts())
    truth_labelled = []
    for _ in range(4):  # label four with their true class (the oracle: which half they lie in)
        p = panel.current().geometry().asPoint()
        row = 0 if p.x() < HALF_X else 1
        truth_labelled.append(row + 1)
        qtbot.keyClick(qgis_canvas, Qt.Key.Key_1 if row == 0 else Qt.Key.Key_2)
    after = dock.session.counts()
    assert sum(after.values()) == sum(before.values()) + 4
    assert after[1] - before[1] == truth_labelled.count(1) and after[2] - before[2] == truth_labelled.count(2)
    assert panel.layer.featureCount() == 2 and skipped in panel.order  # labelled ones moved out; the skipped stays
    qtbot.keyClick(qgis_canvas, Qt.Key.Key_Escape)
    assert qgis_canvas.mapTool() is not panel.tool

    # Retrain: one click, same settings, then the map again (this time showing both uncertainty layers);
    # round 2 recorded with both accuracies
    panel.showUncertaintyCheck.setChecked(True)
    assert panel.retrain() is not None
    qtbot.waitUntil(lambda: not panel.pending_retrain, timeout=240000)
    assert len(panel.rounds) == 2 and panel.rounds[1].labels == 12
    assert panel.rounds[1].held_out is not None and panel.rounds[1].reference is not None
    assert panel.roundsTable.rowCount() == 2
    assert panel.roundsTable.item(1, 1).text() == "12"
    names = [n.layer().name() for n in qgis_new_project.layerTreeRoot().findGroup("GeoDL map").findLayers()]
    assert names == [
        "GeoDL map — classes",
        "GeoDL map — confidence",
        "GeoDL map — entropy (uncertainty)",
        "GeoDL map — margin (uncertainty)",
    ]
    print("rounds:", [(r.labels, r.held_out, r.reference) for r in panel.rounds])
    assert panel.rounds[1].reference >= 0.9


def test_onnx_button_runs_the_export_task_and_reports(dock, qtbot, tmp_path):
    """The button's task reaches the worker's export and reports its verdict in the dock (a forest: refused
    with the reason). The export itself is tested in tests/core/models and through geodl:exportonnx."""
    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.models.model_file import make_manifest, save_model_file
    from geodl_plugin.core.models.networks import fit_random_forest

    assert dock.onnx_button.export(str(tmp_path / "none.geodl"), str(tmp_path / "x.txt")) is None
    assert ".onnx" in dock.messageLabel.text()
    rng = np.random.default_rng(0)
    forest = fit_random_forest(rng.normal(size=(40, 3)), rng.integers(0, 2, 40), 2, n_trees=3, max_depth=3)
    manifest = make_manifest(
        name="m",
        architecture="rf",
        model=forest,
        bands=["blue", "green", "red"],
        classes=ClassTable.from_names(["water", "field"]),
        mean=[0] * 3,
        std=[1] * 3,
        source_dtype="uint16",
        nodata=None,
        pixel_size=[10.0, 10.0],
        crs_wkt="",
        crs_units="metre",
    )
    model = save_model_file(tmp_path / "m.geodl", forest, manifest)
    _wait(qtbot, dock, dock.onnx_button.export(str(model), str(tmp_path / "m.onnx")))
    assert "not a neural network" in dock.messageLabel.text() and dock.onnx_button.isEnabled()
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.stac.json").exists()
