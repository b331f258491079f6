"""The regression family from the dock: a numeric field of a point layer → train (worker) → R² and the
predicted-vs-observed plot in the Train tab → map the raster → value and spread layers on colour ramps."""

from __future__ import annotations

import pytest
from qgis.core import QgsSingleBandPseudoColorRenderer, QgsVectorLayer

from geodl_plugin.gui.dock import AREA_RASTER
from tests.core.synthetic import regression_scene

from .dock_support import add_raster
from .test_dock import dock, wait_done  # noqa: F401 - the dock fixture

pytestmark = pytest.mark.slow


def test_regression_trains_and_maps_from_the_dock(dock, qgis_new_project, qtbot, tmp_path):  # noqa: F811
    image, points, _ = regression_scene(tmp_path / "scene", size=48, n_points=300, seed=3)
    raster = add_raster(qgis_new_project, image)
    dock.set_rasters([raster])
    targets = QgsVectorLayer(str(points), "roof points", "ogr")
    qgis_new_project.addMapLayer(targets)
    dock.modelTypeCombo.setCurrentIndex(dock.modelTypeCombo.findData("rf_regression"))
    assert not dock.targetGroup.isHidden() and "n_trees" in dock.optionsForm.editors
    assert dock.start_training() is None and "Choose the points or polygons" in dock.messageLabel.text()
    dock.targetLayerCombo.setLayer(targets)
    dock.targetFieldCombo.setField("roof_pct")
    dock.optionsForm.editors["n_trees"].setValue(40)
    task = dock.start_training()
    wait_done(qtbot, dock, task)
    assert dock.last_metrics is not None and dock.last_metrics.r2 >= 0.9, dock.messageLabel.text()
    assert dock.accuracyLabel.text().startswith("R² ") and not dock.confusionLabel.pixmap().isNull()

    task = dock.predict(AREA_RASTER)
    wait_done(qtbot, dock, task)
    value, spread = dock.last_result_layers
    assert isinstance(value.renderer(), QgsSingleBandPseudoColorRenderer)
    assert isinstance(spread.renderer(), QgsSingleBandPseudoColorRenderer)
    assert value.dataProvider().dataType(1) == 6  # Qgis.DataType.Float32
    dock.modelTypeCombo.setCurrentIndex(dock.modelTypeCombo.findData("dnn"))
    assert dock.targetGroup.isHidden()
