"""The dock's Imagery step: which raster layers (ticked) the model trains on and classifies; or, with "Time
series" ticked, the dates of one series (one raster per date, dates from the file names or typed in).

The choice lives in the shared state (the Train and Map steps read it there); this step shows and edits it.
Optional sections (the Earth Engine composite) are added below the list by the dock (``add_section``)."""

from __future__ import annotations

from typing import Iterable, Optional

from qgis.core import QgsRasterLayer
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QCheckBox, QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from ..core.runtime.errors import GeoDLError
from .dock_context import DockContext
from .forms import load_form
from .project_state import DockState
from .shared_state import PREVIEW_GROUP, SharedState
from .step_panel import StepPanel


class ImageryPanel(StepPanel):
    # ui/imagery_panel.ui
    imageryLayout: QVBoxLayout
    rasterTree: QTreeWidget
    seriesCheck: QCheckBox
    seriesDatesEdit: QLineEdit
    imageryLabel: QLabel

    def __init__(self, context: DockContext, shared: SharedState, parent: Optional[QWidget] = None) -> None:
        super().__init__(context, parent)
        load_form(self, "imagery_panel.ui")
        self.shared = shared
        self.rasterTree.itemChanged.connect(self._raster_item_changed)
        self.seriesCheck.setChecked(shared.series)
        self.seriesCheck.toggled.connect(shared.set_series)
        self.seriesDatesEdit.textChanged.connect(lambda _text: shared.set_typed_dates(self.series_dates()))
        self.seriesDatesEdit.editingFinished.connect(self._describe_imagery)
        shared.rastersChanged.connect(self._rasters_changed)
        shared.resultsChanged.connect(self.refresh_rasters)
        shared.seriesChanged.connect(self._series_changed)
        self.refresh_rasters()

    def add_section(self, widget: QWidget) -> None:
        """Another way to get imagery, under the list (the dock adds the Earth Engine panel here)."""
        self.imageryLayout.addWidget(widget)

    # ----------------------------------------------------------------------------------------------- series
    def is_series(self) -> bool:
        return self.shared.series

    def series_dates(self) -> Optional[list[str]]:
        """The typed dates (one per ticked raster), or None: dates from the file names."""
        text = self.seriesDatesEdit.text().replace(";", ",").strip()
        return [d.strip() for d in text.split(",") if d.strip()] or None

    def _series_changed(self, on: bool) -> None:
        if self.seriesCheck.isChecked() != on:  # set by another step (a time-series family was chosen)
            self.seriesCheck.setChecked(on)
        self._describe_imagery()

    # ---------------------------------------------------------------------------------------------- rasters
    def refresh_rasters(self) -> None:
        """The project's GDAL rasters, the chosen ones ticked (not the dock's own results)."""
        project, shared = self.context.project, self.shared
        checked = set(shared.raster_ids)
        self.rasterTree.blockSignals(True)
        self.rasterTree.clear()
        for layer in project.mapLayers().values():
            if not isinstance(layer, QgsRasterLayer) or layer.providerType() != "gdal":
                continue
            if layer.name().startswith(("GeoDL ", PREVIEW_GROUP)) or layer in shared.result_layers:
                continue
            item = QTreeWidgetItem([f"{layer.name()}  ({layer.width()}×{layer.height()}, {layer.crs().authid()})"])
            item.setData(0, Qt.ItemDataRole.UserRole, layer.id())
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked if layer.id() in checked else Qt.CheckState.Unchecked)
            for b in range(1, layer.bandCount() + 1):
                QTreeWidgetItem(item, [layer.bandName(b)])
            self.rasterTree.addTopLevelItem(item)
        self.rasterTree.blockSignals(False)
        shared.set_raster_ids([i for i in shared.raster_ids if project.mapLayer(i) is not None])
        self._describe_imagery()

    def _ticked_ids(self) -> set[str]:
        items = (self.rasterTree.topLevelItem(i) for i in range(self.rasterTree.topLevelItemCount()))
        return {item.data(0, Qt.ItemDataRole.UserRole) for item in items if item.checkState(0) == Qt.CheckState.Checked}

    def _rasters_changed(self) -> None:
        if self._ticked_ids() == set(self.shared.raster_ids):
            self._describe_imagery()  # ticked here: the list is right (and must not be rebuilt under its own signal)
        else:
            self.refresh_rasters()

    def _raster_item_changed(self, item: QTreeWidgetItem, _column: int) -> None:
        layer_id = item.data(0, Qt.ItemDataRole.UserRole)
        if not layer_id:
            return
        ids = list(self.shared.raster_ids)
        if item.checkState(0) == Qt.CheckState.Checked and layer_id not in ids:
            ids.append(layer_id)
        elif item.checkState(0) != Qt.CheckState.Checked and layer_id in ids:
            ids.remove(layer_id)
        self.shared.set_raster_ids(ids)

    def set_rasters(self, layers: Iterable[QgsRasterLayer]) -> None:
        self.shared.set_raster_ids([layer.id() for layer in layers])
        self.refresh_rasters()

    def selected_rasters(self) -> list[QgsRasterLayer]:
        return self.shared.selected_rasters()

    def _describe_imagery(self) -> None:
        layers = self.shared.selected_rasters()
        bands = sum(layer.bandCount() for layer in layers)
        if layers and self.is_series():
            try:
                dates = self.shared.check_series()
                self.imageryLabel.setText(
                    f"Time series of {len(dates)} dates ({min(dates)} … {max(dates)}), {layers[0].bandCount()} band(s) per date."
                )
            except GeoDLError as exc:
                self.imageryLabel.setText(str(exc))
            return
        self.imageryLabel.setText(f"{len(layers)} raster(s), {bands} band(s) chosen." if layers else "No raster chosen yet.")

    # -------------------------------------------------------------------------------------------- dock hooks
    def write_state(self, state: DockState) -> None:
        state.raster_layer_ids = list(self.shared.raster_ids)

    def read_state(self, state: DockState) -> None:
        project = self.context.project
        self.shared.set_raster_ids([i for i in state.raster_layer_ids if project.mapLayer(i) is not None])
        self.refresh_rasters()
