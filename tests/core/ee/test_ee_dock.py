"""The dock's Imagery tab downloads an Earth Engine composite for the region (real client, fake transport)
and adds it as a chosen raster."""

from __future__ import annotations

import json

import numpy as np
import rasterio
from qgis.core import QgsCoordinateReferenceSystem, QgsGeometry, QgsRectangle
from qgis.PyQt.QtCore import QDate


def test_dock_downloads_a_composite_for_the_region(ee_session, qgis_iface, qgis_new_project, qgis_canvas, qtbot, tmp_path):
    from geodl_plugin.core.earthengine.composites import DEFAULT_BANDS
    from geodl_plugin.gui.dock import GeoDLDock

    dock = GeoDLDock(None, iface=qgis_iface, project=qgis_new_project, canvas=qgis_canvas)
    qtbot.addWidget(dock)
    dock.set_output_dir(str(tmp_path / "out"))
    panel = dock.ee_panel
    assert panel is not None
    assert panel.download() is None and "region" in dock.messageLabel.text()

    dock.region.set_region(QgsGeometry.fromRect(QgsRectangle(10.0, 45.0, 10.01, 45.006)), QgsCoordinateReferenceSystem("EPSG:4326"))
    panel.startEdit.setDate(QDate(2023, 6, 1))
    panel.endEdit.setDate(QDate(2023, 8, 1))
    task = panel.download()
    assert task is not None
    qtbot.waitUntil(lambda: panel.task is None, timeout=60000)
    chosen = dock.shared.selected_rasters()
    assert len(chosen) == 1, panel.statusLabel.text()
    assert chosen[0].bandCount() == len(DEFAULT_BANDS["sentinel2"])
    assert chosen[0].crs().authid() == "EPSG:32632"  # the region's UTM zone
    calls = ee_session.calls(":computePixels")
    assert calls and all(body["fileFormat"] == "NPY" for _m, _u, body in calls)
    expression = json.dumps(calls[0][2]["expression"])
    assert "CLOUD_SCORE_PLUS" in expression and "COPERNICUS/S2_SR_HARMONIZED" in expression
    dock.disconnect_project()


def test_dock_sends_the_classified_map_to_earth_engine(
    ee_session, gcs, monkeypatch, qgis_iface, qgis_new_project, qgis_canvas, qtbot, tmp_path
):
    """The Map tab's upload: the last full classification goes to the bucket, one ingestion task starts, and
    the panel waits until Earth Engine says the asset exists. A cancel while waiting cancels the ingestion."""
    from google.cloud import storage

    from geodl_plugin.gui.dock import GeoDLDock
    from tests.core.ee.test_ee_upload import class_map

    monkeypatch.setattr(storage, "Client", lambda *a, **k: gcs)
    dock = GeoDLDock(None, iface=qgis_iface, project=qgis_new_project, canvas=qgis_canvas)
    qtbot.addWidget(dock)
    panel = dock.ee_upload_panel
    assert panel is not None
    assert panel.upload() is None and "Classify" in dock.messageLabel.text()

    dock.mapping.last_map_path = str(class_map(tmp_path / "classified.tif"))
    panel.projectEdit.setText("test-project")
    panel.assetEdit.setText("geodl/dock_map")
    panel.bucketEdit.setText("gs://my-bucket/")
    assert panel.upload() is not None
    qtbot.waitUntil(lambda: panel.task is None, timeout=60000)
    assert panel.asset_name == "projects/test-project/assets/geodl/dock_map", panel.statusLabel.text()
    assert "The map is in Earth Engine" in dock.messageLabel.text()
    assert ("my-bucket", "geodl-upload/classified.tif") in gcs.objects
    (import_call,) = ee_session.calls("image:import")
    assert import_call[2]["imageManifest"]["pyramidingPolicy"] == "MODE"
    assert ee_session.calls("/operations/", "GET"), "the ingestion was watched"

    ee_session.default_operation_state = "RUNNING"  # a long ingestion, then the user cancels
    panel.assetEdit.setText("geodl/dock_map_2")
    assert panel.upload() is not None
    qtbot.waitUntil(lambda: len(ee_session.calls("image:import")) == 2, timeout=60000)
    qtbot.waitUntil(lambda: bool(ee_session.calls("/operations/", "GET")[1:]), timeout=60000)
    panel.cancel()
    qtbot.waitUntil(lambda: panel.task is None, timeout=60000)
    assert ee_session.calls(":cancel"), "cancelling in QGIS cancels the Earth Engine task"
    assert "cancelled" in panel.statusLabel.text()
    dock.disconnect_project()


def test_dock_downloads_satellite_embeddings_for_a_year(ee_session, qgis_iface, qgis_new_project, qgis_canvas, qtbot, tmp_path):
    """The Imagery panel's Satellite Embedding source: a year and the region → 64 float bands on the region's
    UTM grid, pixels without an embedding as nodata (the stand-in serves the dataset's layout)."""
    import numpy as np
    import rasterio

    from geodl_plugin.core.earthengine.grid import NODATA
    from geodl_plugin.gui.dock import GeoDLDock
    from tests.core.ee.embedding_standin import BANDS, EmbeddingStandIn

    EmbeddingStandIn(seed=4).install(ee_session)
    ee_session.masked = lambda grid: EmbeddingStandIn.centres(grid)[0] < 587030  # a strip on the west edge
    dock = GeoDLDock(None, iface=qgis_iface, project=qgis_new_project, canvas=qgis_canvas)
    qtbot.addWidget(dock)
    dock.set_output_dir(str(tmp_path / "out"))
    panel = dock.ee_panel
    dock.region.set_region(QgsGeometry.fromRect(QgsRectangle(10.1, 45.0, 10.106, 45.004)), QgsCoordinateReferenceSystem("EPSG:4326"))
    panel.sensorCombo.setCurrentIndex(2)
    assert panel.sensorCombo.currentData()[0] == "embedding"
    assert panel.yearSpin.isEnabled() and not panel.startEdit.isEnabled() and panel.scaleSpin.value() == 10.0
    assert "CC-BY 4.0" in panel.statusLabel.text()
    panel.yearSpin.setValue(2022)
    assert panel.download() is not None
    qtbot.waitUntil(lambda: panel.task is None, timeout=60000)
    (layer,) = dock.shared.selected_rasters()
    assert layer.bandCount() == 64 and layer.crs().authid() == "EPSG:32632", panel.statusLabel.text()
    with rasterio.open(layer.source()) as src:
        assert src.nodata == NODATA and list(src.descriptions) == BANDS
        assert src.transform.c % 10 == 0 and src.transform.f % 10 == 0
        data = src.read()
        cols = src.transform.c + (np.arange(src.width) + 0.5) * 10
    west = cols < 587030
    assert west.any() and (~west).any()
    assert (data[:, :, west] == NODATA).all() and (data[:, :, ~west] != NODATA).all()
    np.testing.assert_allclose(np.linalg.norm(data[:, :, ~west], axis=0), 1.0, atol=1e-5)
    body = ee_session.calls(":computePixels")[0][2]
    text = json.dumps(body["expression"])
    assert "GOOGLE/SATELLITE_EMBEDDING/V1/ANNUAL" in text and "2022-01-01" in text and "2023-01-01" in text
    dock.disconnect_project()


def test_dock_downloads_a_monthly_series_as_the_dates_of_a_series(ee_session, qgis_iface, qgis_new_project, qgis_canvas, qtbot, tmp_path):
    """Time series ticked: one composite per month of the span, each date a chosen raster named by its
    window's middle day, the series switched on, and the month without a scene said to be nodata."""
    from geodl_plugin.core.earthengine.grid import NODATA
    from geodl_plugin.gui.dock import GeoDLDock
    from tests.core.ee.test_ee_series import answer_counts

    answer_counts(ee_session, [2, 0, 3])

    def served(_method, uri, body):
        if not uri.split("?")[0].endswith("image:computePixels"):
            return None
        grid = body["grid"]["dimensions"]
        array = np.zeros((grid["height"], grid["width"]), dtype=[(b, "<f4") for b in body["bandIds"]])
        for i, band in enumerate(body["bandIds"]):
            array[band] = 100.0 + i
        return 200, ee_session.npy_bytes(array)

    ee_session.handlers.append(served)
    dock = GeoDLDock(None, iface=qgis_iface, project=qgis_new_project, canvas=qgis_canvas)
    qtbot.addWidget(dock)
    dock.set_output_dir(str(tmp_path / "out"))
    panel = dock.ee_panel
    dock.region.set_region(QgsGeometry.fromRect(QgsRectangle(10.0, 45.0, 10.004, 45.003)), QgsCoordinateReferenceSystem("EPSG:4326"))
    panel.sensorCombo.setCurrentIndex(0)
    panel.startEdit.setDate(QDate(2023, 4, 1))
    panel.endEdit.setDate(QDate(2023, 7, 1))
    assert not panel.monthsSpin.isEnabled()
    panel.seriesBox.setChecked(True)
    assert panel.monthsSpin.isEnabled() and panel.monthsSpin.value() == 1
    assert panel.download() is not None
    qtbot.waitUntil(lambda: panel.task is None, timeout=60000)

    chosen = dock.shared.selected_rasters()
    assert [layer.name().rsplit("_", 1)[1] for layer in chosen] == ["20230416", "20230516", "20230616"], panel.statusLabel.text()
    assert dock.shared.series and dock.imagery.seriesCheck.isChecked()
    assert dock.shared.check_series() == ["2023-04-16", "2023-05-16", "2023-06-16"]
    assert "2023-05-01…2023-06-01" in panel.statusLabel.text() and "nodata" in panel.statusLabel.text()
    with rasterio.open(chosen[1].source()) as empty, rasterio.open(chosen[0].source()) as full:
        assert (empty.read() == NODATA).all() and (full.read(1) == 100.0).all()
    assert len(ee_session.calls(":computePixels")) == 2  # the empty month costs no request
    panel.sensorCombo.setCurrentIndex(2)  # the embeddings are one image a year: no series of them
    assert not panel.seriesBox.isEnabled() and not panel.seriesBox.isChecked()
    dock.disconnect_project()
