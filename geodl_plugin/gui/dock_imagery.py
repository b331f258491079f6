"""The dock's Imagery step: which raster layers (ticked) the model trains on and classifies.

A mixin of :class:`GeoDLDock`: it uses the dock's widgets (from ``ui/dock.ui``) and helpers."""

from __future__ import annotations

from typing import Iterable

from qgis.core import QgsRasterLayer
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QTreeWidgetItem

from .dock_map import PREVIEW_GROUP


class ImageryStep:
    def refresh_rasters(self) -> None:
        checked = set(self._checked_rasters)
        self.rasterTree.blockSignals(True)
        self.rasterTree.clear()
        for layer in self.project.mapLayers().values():
            if not isinstance(layer, QgsRasterLayer) or layer.providerType() != "gdal":
                continue
            if layer.name().startswith(("GeoDL ", PREVIEW_GROUP)) or layer in self.last_result_layers:
                continue
            item = QTreeWidgetItem([f"{layer.name()}  ({layer.width()}×{layer.height()}, {layer.crs().authid()})"])
            item.setData(0, Qt.ItemDataRole.UserRole, layer.id())
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked if layer.id() in checked else Qt.CheckState.Unchecked)
            for b in range(1, layer.bandCount() + 1):
                QTreeWidgetItem(item, [layer.bandName(b)])
            self.rasterTree.addTopLevelItem(item)
        self.rasterTree.blockSignals(False)
        self._checked_rasters = [i for i in self._checked_rasters if self.project.mapLayer(i) is not None]
        self._describe_imagery()

    def _raster_item_changed(self, item: QTreeWidgetItem, _column: int) -> None:
        layer_id = item.data(0, Qt.ItemDataRole.UserRole)
        if not layer_id:
            return
        if item.checkState(0) == Qt.CheckState.Checked and layer_id not in self._checked_rasters:
            self._checked_rasters.append(layer_id)
        elif item.checkState(0) != Qt.CheckState.Checked and layer_id in self._checked_rasters:
            self._checked_rasters.remove(layer_id)
        self._describe_imagery()

    def set_rasters(self, layers: Iterable[QgsRasterLayer]) -> None:
        self._checked_rasters = [layer.id() for layer in layers]
        self.refresh_rasters()

    def selected_rasters(self) -> list[QgsRasterLayer]:
        layers = [self.project.mapLayer(i) for i in self._checked_rasters]
        return [layer for layer in layers if isinstance(layer, QgsRasterLayer)]

    def _describe_imagery(self) -> None:
        layers = self.selected_rasters()
        bands = sum(layer.bandCount() for layer in layers)
        self.imageryLabel.setText(f"{len(layers)} raster(s), {bands} band(s) chosen." if layers else
                                  "No raster chosen yet.")
