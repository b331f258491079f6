"""The regression family from the dock: a numeric field of a point layer → train (worker) → R² and the
predicted-vs-observed plot in the Train tab → map the raster → value and spread layers on colour ramps."""

from __future__ import annotations

import pytest
from qgis.core import QgsSingleBandPseudoColorRenderer, QgsVectorLayer

from geodl_plugin.gui.map_panel import AREA_RASTER
from tests.core.synthetic import regression_scene

from .dock_support import add_raster
from .test_dock import dock, wait_done  # noqa: F401 - the dock fixture

pytestmark = pytest.mark.slow


def test_regression_trains_and_maps_from_the_dock(dock, qgis_new_project, qtbot, tmp_path):  # noqa: F811
    image, points, _ = regression_scene(tmp_path / "scene", size=48, n_points=300, seed=3)
    raster = add_raster(qgis_new_project, image)
    dock.imagery.set_rasters([raster])
    targets = QgsVectorLayer(str(points), "roof points", "ogr")
    qgis_new_project.addMapLayer(targets)
    dock.training.modelTypeCombo.setCurrentIndex(dock.training.modelTypeCombo.findData("rf_regression"))
    assert not dock.training.targetGroup.isHidden() and "n_trees" in dock.training.optionsForm.editors
    assert dock.training.start_training() is None and "Choose the points or polygons" in dock.messageLabel.text()
    dock.training.targetLayerCombo.setLayer(targets)
    dock.training.targetFieldCombo.setField("roof_pct")
    dock.training.optionsForm.editors["n_trees"].setValue(40)
    task = dock.training.start_training()
    wait_done(qtbot, dock, task)
    assert dock.accuracy.metrics is not None and dock.accuracy.metrics.r2 >= 0.9, dock.messageLabel.text()
    assert dock.accuracy.accuracyLabel.text().startswith("R² ") and not dock.accuracy.confusionLabel.pixmap().isNull()

    task = dock.mapping.predict(AREA_RASTER)
    wait_done(qtbot, dock, task)
    value, spread = dock.mapping.last_result_layers
    assert isinstance(value.renderer(), QgsSingleBandPseudoColorRenderer)
    assert isinstance(spread.renderer(), QgsSingleBandPseudoColorRenderer)
    assert value.dataProvider().dataType(1) == 6  # Qgis.DataType.Float32
    dock.training.modelTypeCombo.setCurrentIndex(dock.training.modelTypeCombo.findData("dnn"))
    assert dock.training.targetGroup.isHidden()
