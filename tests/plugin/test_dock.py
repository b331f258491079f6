"""The dock end to end, offscreen: labels → train → map through tasks, bad input, cancel, heartbeat, state."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from qgis.core import QgsPalettedRasterRenderer, QgsProject, QgsRectangle
from qgis.PyQt.QtCore import QTimer

from geodl_plugin.gui.dock import GeoDLDock
from geodl_plugin.gui.map_panel import AREA_CANVAS, AREA_RASTER, AREA_REGION, PREVIEW_GROUP
from geodl_plugin.tasks import is_running

from .dock_support import ORIGIN, PIXEL, add_raster, click, raster_extent, setup_canvas, write_two_class_raster

pytestmark = pytest.mark.slow
SIZE = 60


class Heartbeat:
    """A 10 ms QTimer on the main thread; the largest gap between its ticks says how long the thread blocked."""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def __enter__(self) -> Heartbeat:
        self.ticks = [time.perf_counter()]
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.stop()

    @property
    def max_gap(self) -> float:
        return max((b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False)), default=0.0)

    def gaps(self, over: float = 0.05) -> list[tuple[float, float]]:
        """(seconds since start, gap) for every gap longer than ``over``: where to look when one is too long."""
        pairs = zip(self.ticks, self.ticks[1:], strict=False)
        return [(round(a - self.ticks[0], 3), round(b - a, 3)) for a, b in pairs if b - a > over]


@pytest.fixture
def dock(qgis_iface, qgis_new_project, qgis_canvas, qtbot, tmp_path):
    d = GeoDLDock(None, iface=qgis_iface, project=qgis_new_project, canvas=qgis_canvas)
    qtbot.addWidget(d)
    d.set_output_dir(str(tmp_path / "out"))
    d.training.epochsSpin.setValue(3)
    d.training.batchSpin.setValue(32)
    d.training.optionsForm.editors["hidden_units"].setText("16")
    yield d
    d.cancel_all()
    qtbot.waitUntil(lambda: not d.running_tasks(), timeout=60000)
    d.disconnect_project()


@pytest.fixture(scope="module")
def warm_keras():
    """Training and prediction run in the geodl worker process; nothing to warm in this one."""


def label_scene(dock, canvas, project, tmp_path, classes=("water", "field"), per_class=14):
    raster = add_raster(project, write_two_class_raster(tmp_path / "scene.tif", SIZE))
    setup_canvas(canvas, [raster], raster_extent(SIZE))
    dock.imagery.set_rasters([raster])
    for name in classes:
        dock.labels.add_class(name)
    dock.labels.labelToolButton.setChecked(True)
    x0, y0 = ORIGIN
    half = SIZE * PIXEL / 2
    for row in range(2):
        dock.labels.select_class(row)
        for i in range(per_class):
            # a scattered grid inside each half, away from the edge between them
            x = x0 + row * half + 25 + (i % 4) * 60 + (i // 4) * 7
            y = y0 - 25 - (i // 4) * 130 - (i % 4) * 9
            click(canvas, dock.labels.label_tool, x, y)
    dock.labels.labelToolButton.setChecked(False)
    return raster


def wait_done(qtbot, dock, task, timeout=180000):
    qtbot.waitUntil(lambda: not is_running(task), timeout=timeout)
    qtbot.wait(50)  # let finished() callbacks land


def test_bad_input_is_explained(dock, qgis_canvas, qgis_new_project, qtbot, tmp_path):
    assert dock.training.start_training() is None
    assert "No raster chosen" in dock.messageLabel.text()
    raster = add_raster(qgis_new_project, write_two_class_raster(tmp_path / "scene.tif", SIZE))
    dock.imagery.set_rasters([raster])
    assert dock.training.start_training() is None
    assert "No labels" in dock.messageLabel.text()
    label_scene(dock, qgis_canvas, qgis_new_project, tmp_path / "..", classes=("water", "field", "urban"), per_class=3)
    assert dock.training.start_training() is None
    assert "'urban' have no points" in dock.messageLabel.text()
    assert dock.mapping.predict(AREA_REGION) is None
    assert "No model file" in dock.messageLabel.text()
    # a region outside the raster
    dock.mapping.modelFileWidget.setFilePath(str(tmp_path / "fake.geodl"))
    Path(tmp_path / "fake.geodl").write_bytes(b"x")
    x0, y0 = ORIGIN
    from qgis.core import QgsGeometry

    dock.region.set_region(QgsGeometry.fromRect(QgsRectangle(x0 + 5000, y0 + 5000, x0 + 6000, y0 + 6000)), raster.crs())
    assert dock.mapping.predict(AREA_REGION) is None
    assert "outside the raster" in dock.messageLabel.text()
    # a broken model file: the task fails with a message, never a traceback dialog
    dock.region.set_region(QgsGeometry.fromRect(raster_extent(SIZE)), raster.crs())
    task = dock.mapping.predict(AREA_REGION)
    assert task is not None
    wait_done(qtbot, dock, task, timeout=60000)
    assert "not a geodl model file" in dock.messageLabel.text()


def test_train_and_map_through_the_dock(dock, qgis_canvas, qgis_new_project, qtbot, tmp_path, warm_keras):
    label_scene(dock, qgis_canvas, qgis_new_project, tmp_path)
    assert dock.session.counts() == {1: 14, 2: 14}
    epochs_seen = []
    with Heartbeat() as beat:
        t0 = time.perf_counter()
        task = dock.training.start_training()
        print("start_training main-thread seconds", time.perf_counter() - t0)
        assert task is not None
        task.metricsReported.connect(epochs_seen.append)
        wait_done(qtbot, dock, task)
    train_gap, train_gaps = beat.max_gap, beat.gaps()
    assert Path(dock.shared.model_path).is_file(), dock.messageLabel.text()
    assert [e["epoch"] for e in epochs_seen] == [1, 2, 3]
    assert dock.training.plot.epochs == [1, 2, 3] and "loss" in dock.training.plot.history
    assert "Overall accuracy" in dock.accuracy.accuracyLabel.text() and dock.accuracy.f1Table.rowCount() == 2
    assert dock.accuracy.confusionLabel.pixmap() is not None and not dock.accuracy.confusionLabel.pixmap().isNull()

    # predict over a drawn region
    x0, y0 = ORIGIN
    from qgis.core import QgsGeometry

    dock.region.set_region(
        QgsGeometry.fromRect(QgsRectangle(x0 + 50, y0 - 450, x0 + 550, y0 - 50)), qgis_canvas.mapSettings().destinationCrs()
    )
    with Heartbeat() as beat:
        task = dock.mapping.predict(AREA_REGION)
        wait_done(qtbot, dock, task)
    predict_gap, predict_gaps = beat.max_gap, beat.gaps()
    group = qgis_new_project.layerTreeRoot().findGroup("GeoDL map")
    assert group is not None, dock.messageLabel.text()
    layers = [node.layer() for node in group.findLayers()]
    assert len(layers) == 2
    assert isinstance(layers[0].renderer(), QgsPalettedRasterRenderer)
    assert [c.label for c in layers[0].renderer().classes()] == ["water", "field"]
    # exactly the region's window: 500 m × 400 m at 10 m
    assert (layers[0].width(), layers[0].height()) == (50, 40)

    # preview of the canvas view
    task = dock.mapping.preview()
    wait_done(qtbot, dock, task)
    assert qgis_new_project.layerTreeRoot().findGroup(PREVIEW_GROUP) is not None
    assert dock.mapping.last_preview_seconds is not None
    task = dock.mapping.preview()  # a second preview replaces the first
    wait_done(qtbot, dock, task)
    assert len([g for g in qgis_new_project.layerTreeRoot().children() if g.name() == PREVIEW_GROUP]) == 1
    print(f"gaps over 50 ms: training {train_gaps}, prediction {predict_gaps}")
    print(
        f"heartbeat max gap: training {train_gap * 1000:.0f} ms, prediction {predict_gap * 1000:.0f} ms; "
        f"preview {dock.mapping.last_preview_seconds:.2f} s"
    )
    # Work on the main thread would stall it for seconds (a training epoch, a block of the raster); what is
    # left are scheduling delays, which a machine shared with other jobs stretches. So this guards against the
    # work coming back onto the main thread; the figures themselves are printed above (and in the README).
    assert train_gap < 1.0 and predict_gap < 1.0


def test_second_training_refused_and_cancel(dock, qgis_canvas, qgis_new_project, qtbot, tmp_path, warm_keras):
    label_scene(dock, qgis_canvas, qgis_new_project, tmp_path)
    dock.training.epochsSpin.setValue(2000)
    task = dock.training.start_training()
    assert task is not None
    assert dock.training.start_training() is None
    assert "already running" in dock.messageLabel.text()
    qtbot.waitUntil(lambda: len(dock.training.plot.epochs) >= 1, timeout=120000)
    started = time.perf_counter()
    dock.training.cancelTrainButton.click()
    wait_done(qtbot, dock, task, timeout=10000)
    assert time.perf_counter() - started < 3.0
    assert "cancelled" in dock.messageLabel.text()
    assert not list(Path(dock.output_dir()).glob("*.geodl")) and not list(Path(dock.output_dir()).glob("*.tfrecord"))
    assert dock.training.trainButton.isEnabled()


def test_project_closed_while_training_cancels(dock, qgis_canvas, qgis_new_project, qtbot, tmp_path, warm_keras):
    label_scene(dock, qgis_canvas, qgis_new_project, tmp_path)
    out = Path(dock.output_dir())
    dock.training.epochsSpin.setValue(2000)
    task = dock.training.start_training()
    qtbot.waitUntil(lambda: len(dock.training.plot.epochs) >= 1, timeout=120000)
    qgis_new_project.clear()
    wait_done(qtbot, dock, task, timeout=10000)
    assert not list(out.glob("*.geodl"))
    assert len(dock.palette) == 0 and dock.session.layer is None


def test_saved_project_restores_the_dock(dock, qgis_canvas, qgis_new_project, qtbot, tmp_path):
    raster = label_scene(dock, qgis_canvas, qgis_new_project, tmp_path, per_class=2)
    dock.labels.recolour_class(0, "#123456")
    dock.labels.move_class(1, -1)  # field first
    dock.region.use_canvas_extent()
    dock.training.epochsSpin.setValue(7)
    dock.training.optionsForm.editors["hidden_units"].setText("32,16")
    dock.mapping.tilingForm.editors["size"].setValue(128)
    dock.mapping.predictAreaCombo.setCurrentIndex(dock.mapping.predictAreaCombo.findData(AREA_CANVAS))
    path = tmp_path / "session.qgz"
    assert qgis_new_project.write(str(path))
    labels_id, region_id, raster_id = dock.session.layer.id(), dock.shared.region_layer.id(), raster.id()

    qgis_new_project.clear()
    assert len(dock.palette) == 0 and dock.session.layer is None and dock.shared.selected_rasters() == []
    colours = None
    assert qgis_new_project.read(str(path))
    colours = [(c.name, c.color) for c in dock.palette]
    assert colours[0][0] == "field" and colours[1] == ("water", "#123456")
    assert dock.session.layer is not None and dock.session.layer.id() == labels_id
    assert dock.session.counts() == {1: 2, 2: 2}
    assert dock.shared.region_layer is not None and dock.shared.region_layer.id() == region_id
    assert [r.id() for r in dock.shared.selected_rasters()] == [raster_id]
    assert dock.training.epochsSpin.value() == 7 and dock.training.optionsForm.values().hidden_units == (32, 16)
    assert dock.mapping.tilingForm.values().size == 128
    assert dock.mapping.predictAreaCombo.currentData() == AREA_CANVAS
    assert QgsProject.instance() is qgis_new_project


def test_unet_trains_from_labelled_points_through_the_dock(dock, qgis_canvas, qgis_new_project, qtbot, tmp_path):
    label_scene(dock, qgis_canvas, qgis_new_project, tmp_path)
    dock.training.modelTypeCombo.setCurrentIndex(dock.training.modelTypeCombo.findData("unet"))
    assert dock.training.patchSizeSpin.isEnabled() and "hidden_units" not in dock.training.optionsForm.editors
    dock.training.optionsForm.editors["depth"].setValue(1)  # every U-Net option is in the dock, and reaches the model
    dock.training.optionsForm.editors["base_filters"].setValue(6)
    dock.training.optionsForm.editors["augment"].setChecked(False)
    dock.training.patchSizeSpin.setValue(9)
    dock.training.epochsSpin.setValue(2)
    dock.training.batchSpin.setValue(8)
    task = dock.training.start_training()
    assert task is not None
    wait_done(qtbot, dock, task)
    from geodl_plugin.core.models.model_file import read_manifest

    manifest = read_manifest(dock.shared.model_path)
    assert manifest["mlm:architecture"] == "unet" and manifest["patch_size"] == 8
    assert manifest["training"]["options"]["base_filters"] == 6 and manifest["training"]["network"]["depth"] == 1
    assert manifest["training"]["options"]["augment"] is False
    dock.mapping.tilingForm.editors["size"].setValue(32)  # the Map step's tiling options reach the tiled predictor
    dock.mapping.tilingForm.editors["overlap"].setValue(8)
    dock.mapping.tilingForm.editors["batch"].setValue(3)
    dock.mapping.predictAreaCombo.setCurrentIndex(dock.mapping.predictAreaCombo.findData(AREA_RASTER))
    task = dock.mapping.predict(AREA_RASTER)
    assert task is not None
    wait_done(qtbot, dock, task)
    assert dock.mapping.last_prediction.details == {"tile": 32, "overlap": 8, "batch": 3}


def test_dock_trains_and_maps_a_time_series(dock, qgis_canvas, qgis_new_project, qtbot, tmp_path):
    """The Imagery step takes the ticked rasters as the dates of a series; the temporal family trains on it and
    the Map step maps the whole series."""
    import sys

    from geodl_plugin.core.models.model_file import read_manifest
    from tests.conftest import REPO

    sys.path.insert(0, str(REPO / "scripts"))
    from make_synthetic_series import make_series_scene

    scene = make_series_scene(tmp_path / "series", size=40, n_points=1, seed=4, n_dates=6)
    layers = [add_raster(qgis_new_project, path, path.stem) for path in reversed(scene.rasters)]
    from qgis.core import QgsCoordinateReferenceSystem

    setup_canvas(qgis_canvas, layers[:1], layers[0].extent())
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32621"))  # the series' grid
    qgis_canvas.setExtent(layers[0].extent())
    dock.imagery.set_rasters(layers)
    dock.training.modelTypeCombo.setCurrentIndex(dock.training.modelTypeCombo.findData("temporal"))
    assert dock.imagery.is_series() and dock.training.patchSizeSpin.isEnabled()  # a series family switches the Imagery step
    assert "Time series of 6 dates" in dock.imagery.imageryLabel.text()
    dock.imagery.seriesDatesEdit.setText("2020-01-01, 2020-01-01")
    dock.imagery._describe_imagery()
    assert "2 dates typed for 6" in dock.imagery.imageryLabel.text()
    assert dock.training.start_training() is None  # refused with the reason, nothing started
    dock.imagery.seriesDatesEdit.setText("")
    dock.imagery._describe_imagery()
    for name in ("fastgreen", "water"):
        dock.labels.add_class(name)
    dock.labels.labelToolButton.setChecked(True)
    for r, c in [(r, c) for r in range(3, 37, 6) for c in range(3, 37, 6)]:
        cls = int(scene.truth_array[r, c] == 3)
        dock.labels.select_class(cls)
        click(qgis_canvas, dock.labels.label_tool, ORIGIN_S[0] + (c + 0.5) * 10, ORIGIN_S[1] - (r + 0.5) * 10)
    dock.labels.labelToolButton.setChecked(False)
    dock.training.optionsForm.editors["filters"].setValue(4)
    dock.training.patchSizeSpin.setValue(5)
    dock.training.epochsSpin.setValue(2)
    task = dock.training.start_training()
    assert task is not None
    wait_done(qtbot, dock, task)
    manifest = read_manifest(dock.shared.model_path)
    assert manifest["mlm:architecture"] == "temporal" and len(manifest["training"]["series"]["dates"]) == 6
    dock.mapping.predictAreaCombo.setCurrentIndex(dock.mapping.predictAreaCombo.findData(AREA_RASTER))
    task = dock.mapping.predict(AREA_RASTER)
    assert task is not None
    wait_done(qtbot, dock, task)
    assert dock.mapping.last_prediction.details["dates"] == 6


ORIGIN_S = (500000.0, 6000000.0)  # make_synthetic_series' grid: 10 m pixels from this corner
