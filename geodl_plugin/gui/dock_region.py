"""The dock's Region step: draw a rectangle or polygon, take a polygon layer or the canvas extent; the
region is kept as a memory layer in the project and handed to the Map step in any CRS.

A mixin of :class:`GeoDLDock`: it uses the dock's widgets (from ``ui/dock.ui``) and helpers."""

from __future__ import annotations

from typing import Any, Optional

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsMapLayer,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QColor

from .labelling import create_geopackage_layer

REGION_LAYER_NAME = "GeoDL region"


class RegionStep:
    def _toggle_tool(self, tool: Any, on: bool) -> None:
        if tool is None:
            return
        if on:
            self.canvas.setMapTool(tool)
            self.canvas.setFocus()
        elif self.canvas.mapTool() is tool:
            self.canvas.unsetMapTool(tool)

    def _region_drawn(self, geometry: QgsGeometry) -> None:
        self.set_region(geometry, self.canvas.mapSettings().destinationCrs())
        for tool in (self.rectangle_tool, self.polygon_tool):
            if self.canvas.mapTool() is tool:
                self.canvas.unsetMapTool(tool)

    def use_canvas_extent(self) -> None:
        if self.canvas is None:
            self._warn("No map canvas.")
            return
        self.set_region(QgsGeometry.fromRect(self.canvas.extent()), self.canvas.mapSettings().destinationCrs())

    def use_region_layer(self, layer: Optional[QgsMapLayer], selected_only: bool = False) -> None:
        if not isinstance(layer, QgsVectorLayer) or layer.geometryType() != QgsWkbTypes.GeometryType.PolygonGeometry:
            self._warn("Choose a polygon layer for the region.")
            return
        features = layer.selectedFeatures() if selected_only else list(layer.getFeatures())
        geoms = [f.geometry() for f in features if f.hasGeometry()]
        if not geoms:
            self._warn(f"The layer '{layer.name()}' has no {'selected ' if selected_only else ''}polygon.")
            return
        self.set_region(QgsGeometry.unaryUnion(geoms), layer.crs())

    def set_region(self, geometry: QgsGeometry, crs: QgsCoordinateReferenceSystem) -> None:
        """Keep the region as the one feature of a GeoPackage layer in the project."""
        if geometry is None or geometry.isEmpty():
            self._warn("The region is empty; draw it again.")
            return
        layer = self.region_layer if self._layer_alive(self.region_layer) else None
        if layer is None:
            path = self._unique("region", ".gpkg")
            layer = create_geopackage_layer(path, "region", QgsWkbTypes.Type.MultiPolygon, crs, QgsFeature().fields(), REGION_LAYER_NAME)
            layer.renderer().symbol().setColor(QColor(0, 0, 0, 0))
            layer.renderer().symbol().symbolLayer(0).setStrokeColor(QColor(220, 30, 30))
            layer.renderer().symbol().symbolLayer(0).setStrokeWidth(0.6)
            self.project.addMapLayer(layer)
            self.region_layer = layer
        geom = QgsGeometry(geometry)
        if crs != layer.crs():
            geom.transform(QgsCoordinateTransform(crs, layer.crs(), self.project))
        geom.convertToMultiType()
        provider = layer.dataProvider()
        provider.deleteFeatures([f.id() for f in layer.getFeatures()])
        feature = QgsFeature(layer.fields())
        feature.setGeometry(geom)
        provider.addFeatures([feature])
        layer.updateExtents()
        layer.triggerRepaint()
        box = geom.boundingBox()
        self.regionLabel.setText(
            f"Region: {box.width():.6g} × {box.height():.6g} map units ({layer.crs().authid() or 'custom CRS'}), layer '{layer.name()}'."
        )
        self.show_message("Region set.", Qgis.MessageLevel.Success)

    def _layer_alive(self, layer: Optional[QgsMapLayer]) -> bool:
        try:
            return layer is not None and layer.isValid() and self.project.mapLayer(layer.id()) is not None
        except RuntimeError:
            return False

    def region_geometry(self, crs: QgsCoordinateReferenceSystem) -> Optional[QgsGeometry]:
        if not self._layer_alive(self.region_layer):
            return None
        geoms = [f.geometry() for f in self.region_layer.getFeatures() if f.hasGeometry()]
        if not geoms:
            return None
        geom = QgsGeometry.unaryUnion(geoms)
        if crs != self.region_layer.crs():
            geom.transform(QgsCoordinateTransform(self.region_layer.crs(), crs, self.project))
        return geom
