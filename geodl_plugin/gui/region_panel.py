"""The dock's Region step: draw a rectangle or polygon, take a polygon layer or the canvas extent. The region is
kept as the one feature of a GeoPackage layer in the project; the step publishes that layer in the shared
state, where the Map step and the Earth Engine panels read the region in any CRS."""

from __future__ import annotations

from typing import Any, Optional

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsMapLayer,
    QgsMapLayerProxyModel,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import QCheckBox, QLabel, QPushButton, QWidget

from .dock_context import DockContext
from .forms import load_form
from .labelling import create_geopackage_layer
from .map_tools import RegionPolygonTool, RegionRectangleTool
from .project_state import DockState
from .shared_state import SharedState
from .step_panel import StepPanel

REGION_LAYER_NAME = "GeoDL region"


class RegionPanel(StepPanel):
    # ui/region_panel.ui
    drawRectangleButton: QPushButton
    drawPolygonButton: QPushButton
    canvasExtentButton: QPushButton
    regionLayerCombo: QgsMapLayerComboBox
    regionSelectedCheck: QCheckBox
    regionFromLayerButton: QPushButton
    regionLabel: QLabel

    def __init__(self, context: DockContext, shared: SharedState, parent: Optional[QWidget] = None) -> None:
        super().__init__(context, parent)
        load_form(self, "region_panel.ui")
        self.shared = shared
        self.regionLayerCombo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.regionLayerCombo.setAllowEmptyLayer(True)
        self.regionLayerCombo.setLayer(None)
        self.rectangle_tool: Optional[RegionRectangleTool] = None
        self.polygon_tool: Optional[RegionPolygonTool] = None
        self._setup_tools()
        self.canvasExtentButton.clicked.connect(self.use_canvas_extent)
        self.regionFromLayerButton.clicked.connect(
            lambda: self.use_region_layer(self.regionLayerCombo.currentLayer(), self.regionSelectedCheck.isChecked())
        )

    def _setup_tools(self) -> None:
        canvas = self.context.canvas
        if canvas is None:
            self.drawRectangleButton.setEnabled(False)
            self.drawPolygonButton.setEnabled(False)
            return
        self.rectangle_tool = RegionRectangleTool(canvas)
        self.polygon_tool = RegionPolygonTool(canvas)
        for tool, button in ((self.rectangle_tool, self.drawRectangleButton), (self.polygon_tool, self.drawPolygonButton)):
            tool.deactivated.connect(lambda b=button: b.setChecked(False))
            tool.regionDrawn.connect(self._region_drawn)
            tool.cancelled.connect(lambda: self.context.message("Region drawing cancelled."))
            button.toggled.connect(lambda on, t=tool: self._toggle_tool(t, on))

    def _toggle_tool(self, tool: Any, on: bool) -> None:
        canvas = self.context.canvas
        if canvas is None:
            return
        if on:
            canvas.setMapTool(tool)
            canvas.setFocus()
        elif canvas.mapTool() is tool:
            canvas.unsetMapTool(tool)

    def _region_drawn(self, geometry: QgsGeometry) -> None:
        canvas = self.context.canvas
        assert canvas is not None  # the tools exist only with a canvas
        self.set_region(geometry, canvas.mapSettings().destinationCrs())
        self.release_tools()

    def use_canvas_extent(self) -> None:
        canvas = self.context.canvas
        if canvas is None:
            self.context.warn("No map canvas.")
            return
        self.set_region(QgsGeometry.fromRect(canvas.extent()), canvas.mapSettings().destinationCrs())

    def use_region_layer(self, layer: Optional[QgsMapLayer], selected_only: bool = False) -> None:
        if not isinstance(layer, QgsVectorLayer) or layer.geometryType() != QgsWkbTypes.GeometryType.PolygonGeometry:
            self.context.warn("Choose a polygon layer for the region.")
            return
        features = layer.selectedFeatures() if selected_only else list(layer.getFeatures())
        geoms = [f.geometry() for f in features if f.hasGeometry()]
        if not geoms:
            self.context.warn(f"The layer '{layer.name()}' has no {'selected ' if selected_only else ''}polygon.")
            return
        self.set_region(QgsGeometry.unaryUnion(geoms), layer.crs())

    def set_region(self, geometry: QgsGeometry, crs: QgsCoordinateReferenceSystem) -> None:
        """Keep the region as the one feature of a GeoPackage layer in the project."""
        if geometry is None or geometry.isEmpty():
            self.context.warn("The region is empty; draw it again.")
            return
        project = self.context.project
        layer = self.shared.live_region_layer()
        if layer is None:
            layer = self._new_region_layer(crs)
            project.addMapLayer(layer)
        geom = QgsGeometry(geometry)
        if crs != layer.crs():
            geom.transform(QgsCoordinateTransform(crs, layer.crs(), project))
        geom.convertToMultiType()
        provider = layer.dataProvider()
        provider.deleteFeatures([f.id() for f in layer.getFeatures()])
        feature = QgsFeature(layer.fields())
        feature.setGeometry(geom)
        provider.addFeatures([feature])
        layer.updateExtents()
        layer.triggerRepaint()
        self.shared.set_region_layer(layer)
        box = geom.boundingBox()
        self.regionLabel.setText(
            f"Region: {box.width():.6g} × {box.height():.6g} map units ({layer.crs().authid() or 'custom CRS'}), layer '{layer.name()}'."
        )
        self.context.message("Region set.", Qgis.MessageLevel.Success)

    def _new_region_layer(self, crs: QgsCoordinateReferenceSystem) -> QgsVectorLayer:
        path = self.context.unique("region", ".gpkg")
        layer = create_geopackage_layer(path, "region", QgsWkbTypes.Type.MultiPolygon, crs, QgsFeature().fields(), REGION_LAYER_NAME)
        symbol = layer.renderer().symbol()
        symbol.setColor(QColor(0, 0, 0, 0))
        symbol.symbolLayer(0).setStrokeColor(QColor(220, 30, 30))
        symbol.symbolLayer(0).setStrokeWidth(0.6)
        return layer

    # -------------------------------------------------------------------------------------------- dock hooks
    def release_tools(self) -> None:
        self._release(self.rectangle_tool, self.polygon_tool)

    def project_cleared(self) -> None:
        self.regionLabel.setText("No region yet.")

    def write_state(self, state: DockState) -> None:
        layer = self.shared.live_region_layer()
        state.region_layer_id = layer.id() if layer is not None else ""

    def read_state(self, state: DockState) -> None:
        region = self.context.project.mapLayer(state.region_layer_id) if state.region_layer_id else None
        self.shared.set_region_layer(region if isinstance(region, QgsVectorLayer) else None)
        if isinstance(region, QgsVectorLayer):
            self.regionLabel.setText(f"Region: layer '{region.name()}'.")
