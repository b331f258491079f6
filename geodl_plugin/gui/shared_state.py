"""What one step of the dock chooses and the others read: the region, the chosen rasters (and whether they are
the dates of one series), the current model file and the last map's layers.

One step writes each fact (Region → the region layer, Imagery → the rasters and series, Train and Map → the
model file, Map → the result layers); the signals tell the others. Steps never read each other's widgets.
"""

from __future__ import annotations

from typing import Iterable, Optional

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsGeometry,
    QgsMapLayer,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QObject, pyqtSignal

from ..core.runtime.errors import GeoDLError

PREVIEW_GROUP = "GeoDL preview"  # the canvas preview's layer group: never a raster to learn from


def layer_alive(project: QgsProject, layer: Optional[QgsMapLayer]) -> bool:
    """``layer`` is still valid and in ``project`` (a removed layer's Python object outlives it)."""
    try:
        return layer is not None and layer.isValid() and project.mapLayer(layer.id()) is not None
    except RuntimeError:  # the C++ layer is gone
        return False


class SharedState(QObject):
    regionChanged = pyqtSignal()
    rastersChanged = pyqtSignal()  # the chosen rasters, or the layers they are chosen from
    seriesChanged = pyqtSignal(bool)  # the chosen rasters are (not) the dates of one series
    modelChanged = pyqtSignal(str)
    resultsChanged = pyqtSignal()  # the last map's layers (they are not offered as imagery)

    def __init__(self, project: QgsProject, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.project = project
        self.region_layer: Optional[QgsVectorLayer] = None
        self.raster_ids: list[str] = []  # in the order they were ticked: the bands are stacked in it
        self.series = False
        self.typed_dates: Optional[list[str]] = None  # one per chosen raster, or None: from the file names
        self.model_path = ""
        self.result_layers: list[QgsRasterLayer] = []

    def clear(self) -> None:
        """The project closed: nothing of it is chosen any more."""
        self.set_region_layer(None)
        self.set_raster_ids([])
        self.set_model_path("")
        self.set_result_layers([])

    # ----------------------------------------------------------------------------------------------- region
    def set_region_layer(self, layer: Optional[QgsVectorLayer]) -> None:
        self.region_layer = layer
        self.regionChanged.emit()

    def live_region_layer(self) -> Optional[QgsVectorLayer]:
        return self.region_layer if layer_alive(self.project, self.region_layer) else None

    def region_geometry(self, crs: QgsCoordinateReferenceSystem) -> Optional[QgsGeometry]:
        """The region in ``crs``, or None when there is none."""
        layer = self.live_region_layer()
        if layer is None:
            return None
        geoms = [f.geometry() for f in layer.getFeatures() if f.hasGeometry()]
        if not geoms:
            return None
        geom = QgsGeometry.unaryUnion(geoms)
        if crs != layer.crs():
            geom.transform(QgsCoordinateTransform(layer.crs(), crs, self.project))
        return geom

    # ---------------------------------------------------------------------------------------------- rasters
    def set_raster_ids(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids != self.raster_ids:
            self.raster_ids = ids
            self.rastersChanged.emit()

    def add_raster(self, layer_id: str) -> None:
        self.set_raster_ids([*self.raster_ids, layer_id])

    def selected_rasters(self) -> list[QgsRasterLayer]:
        layers = [self.project.mapLayer(i) for i in self.raster_ids]
        return [layer for layer in layers if isinstance(layer, QgsRasterLayer)]

    def set_series(self, on: bool) -> None:
        if bool(on) != self.series:
            self.series = bool(on)
            self.seriesChanged.emit(self.series)

    def set_typed_dates(self, dates: Optional[list[str]]) -> None:
        self.typed_dates = dates or None

    def check_series(self) -> list[str]:
        """The series' dates (ISO), one per chosen raster in their order, or GeoDLError naming the problem (no
        date in a file name, a repeated date…)."""
        from ..core.data.series import as_date, raster_date

        layers = self.selected_rasters()
        if not layers:
            raise GeoDLError("No raster chosen. Tick the dates of the series.")
        given = self.typed_dates
        if given and len(given) != len(layers):
            raise GeoDLError(f"{len(given)} dates typed for {len(layers)} ticked rasters; give one date per raster.")
        dates = [as_date(d) for d in given] if given else [raster_date(layer.source()) for layer in layers]
        missing = [layer.name() for layer, d in zip(layers, dates) if d is None]
        if missing:
            raise GeoDLError(f"No date in the file name or metadata of {', '.join(missing)}; type the dates.")
        if len(set(dates)) != len(dates):
            raise GeoDLError("Two ticked rasters have the same date; tick each date once.")
        return [d.isoformat() for d in dates if d is not None]

    # ---------------------------------------------------------------------------------------- model, results
    def set_model_path(self, path: str) -> None:
        if path != self.model_path:
            self.model_path = path
            self.modelChanged.emit(path)

    def set_result_layers(self, layers: list[QgsRasterLayer]) -> None:
        self.result_layers = list(layers)
        self.resultsChanged.emit()
