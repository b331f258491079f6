"""The dock's Imagery step: which raster layers (ticked) the model trains on and classifies; or, with "Time
series" ticked, the dates of one series (one raster per date, dates from the file names or typed in).

A mixin of :class:`GeoDLDock`: it uses the dock's widgets (from ``ui/dock.ui``) and helpers."""

from __future__ import annotations

from typing import Iterable, Optional

from qgis.core import QgsRasterLayer
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QCheckBox, QLineEdit, QTreeWidgetItem

from ..core.runtime.errors import GeoDLError
from .dock_map import PREVIEW_GROUP


class ImageryStep:
    def _setup_series_widgets(self) -> None:
        """A "Time series" switch and the dates, under the raster list (built here: two widgets)."""
        self.seriesCheck = QCheckBox("Time series: the ticked rasters are the dates of one series", self.imageryPage)
        self.seriesDatesEdit = QLineEdit(self.imageryPage)
        self.seriesDatesEdit.setPlaceholderText("Dates, e.g. 2020-05-18, 2020-06-18 (empty: from the file names)")
        index = self.imageryLayout.indexOf(self.imageryLabel)
        self.imageryLayout.insertWidget(index, self.seriesCheck)
        self.imageryLayout.insertWidget(index + 1, self.seriesDatesEdit)
        self.seriesCheck.toggled.connect(lambda _on: self._describe_imagery())
        self.seriesDatesEdit.editingFinished.connect(self._describe_imagery)

    def is_series(self) -> bool:
        return self.seriesCheck.isChecked()

    def series_dates(self) -> Optional[list[str]]:
        """The typed dates (one per ticked raster), or None: dates from the file names."""
        text = self.seriesDatesEdit.text().replace(";", ",").strip()
        return [d.strip() for d in text.split(",") if d.strip()] or None

    def check_series(self) -> list[str]:
        """The series' dates (ISO), one per ticked raster in their order, or GeoDLError naming the problem (no
        date in a file name, a repeated date…)."""
        from ..core.data.series import as_date, parse_date

        layers = self.selected_rasters()
        if not layers:
            raise GeoDLError("No raster chosen. Tick the dates of the series.")
        given = self.series_dates()
        if given and len(given) != len(layers):
            raise GeoDLError(f"{len(given)} dates typed for {len(layers)} ticked rasters; give one date per raster.")
        dates = [as_date(d) for d in given] if given else [parse_date(layer.source()) for layer in layers]
        missing = [layer.name() for layer, d in zip(layers, dates) if d is None]
        if missing:
            raise GeoDLError(f"No date in the file name of {', '.join(missing)}; type the dates.")
        if len(set(dates)) != len(dates):
            raise GeoDLError("Two ticked rasters have the same date; tick each date once.")
        return [d.isoformat() for d in dates]  # type: ignore[union-attr]

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
        if layers and self.is_series():
            try:
                dates = self.check_series()
                self.imageryLabel.setText(
                    f"Time series of {len(dates)} dates ({min(dates)} … {max(dates)}), {layers[0].bandCount()} band(s) per date."
                )
            except GeoDLError as exc:
                self.imageryLabel.setText(str(exc))
            return
        self.imageryLabel.setText(f"{len(layers)} raster(s), {bands} band(s) chosen." if layers else "No raster chosen yet.")
