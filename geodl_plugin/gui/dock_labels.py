"""The dock's Labels step: the class palette (add, rename, recolour, reorder, remove) and the labelling
session (click to add points of the active class, right-click to remove, undo/redo), or points sampled
inside labelled polygons.

A mixin of :class:`GeoDLDock`: it uses the dock's widgets (from ``ui/dock.ui``) and helpers."""

from __future__ import annotations

import logging
from typing import Any, Optional

from qgis.core import Qgis, QgsCoordinateReferenceSystem, QgsPointXY, QgsVectorLayer
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor, QIcon, QPixmap
from qgis.PyQt.QtWidgets import QColorDialog, QInputDialog, QListWidgetItem

from ..core.runtime.errors import GeoDLError
from ..tasks import GeoDLTask
from .labelling import layer_file_path

log = logging.getLogger("geodl")


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class LabelsStep:
    def _setup_summary_panel(self) -> None:
        """The class-separability panel, below the sampling group (before the tab's spacer)."""
        from .summary_panel import SummaryPanel

        self.summary_panel = SummaryPanel(
            self.labelsPage,
            self._summary_labels,
            lambda: [r.source() for r in self.selected_rasters()],
            self._unique,
            self._run,
            self._warn,
        )
        self.labelsLayout.insertWidget(self.labelsLayout.indexOf(self.samplingGroup) + 1, self.summary_panel)

    def _summary_labels(self) -> Optional[tuple[str, Optional[str], str]]:
        """The chosen labelled polygons (more pixels per class), else the labelling session's points."""
        layer = self.polygonLayerCombo.currentLayer()
        field = self.classFieldCombo.currentField()
        if isinstance(layer, QgsVectorLayer) and layer.providerType() == "ogr" and field:
            path, name = layer_file_path(layer)
            return path, name, field
        if self.session.layer is not None and self._layer_alive(self.session.layer) and sum(self.session.counts().values()):
            from .labelling import CLASS_NAME_FIELD

            path, name = layer_file_path(self.session.layer)
            return path, name, CLASS_NAME_FIELD
        return None

    def _refresh_classes(self) -> None:
        counts = self.session.counts()
        row = self.classList.currentRow()
        self.classList.blockSignals(True)
        self.classList.clear()
        for i, c in enumerate(self.palette):
            key = f"{i + 1}  " if i < 9 else "    "
            item = QListWidgetItem(_swatch(c.color), f"{key}{c.name}  ({counts.get(c.id, 0)} points)")
            item.setData(Qt.ItemDataRole.UserRole, c.id)
            self.classList.addItem(item)
        self.classList.blockSignals(False)
        if len(self.palette):
            self.classList.setCurrentRow(min(max(row, 0), len(self.palette) - 1))
        layer = self.session.layer
        total = sum(counts.values())
        self.labelsLayerLabel.setText(
            f"Labels layer '{layer.name()}': {total} points in {layer_file_path(layer)[0]}"
            if layer is not None
            else "No labels layer yet: it is created when you start labelling."
        )

    def active_class_id(self) -> Optional[int]:
        row = self.classList.currentRow()
        return self.palette.at(row).id if 0 <= row < len(self.palette) else None

    def select_class(self, row: int) -> None:
        if 0 <= row < len(self.palette):
            self.classList.setCurrentRow(row)
            self.show_message(f"Labelling '{self.palette.at(row).name}'.")

    def add_class(self, name: str, color: Optional[str] = None) -> None:
        try:
            self.session.edit_palette(lambda p: p.add(name, color), f"add class '{name.strip()}'")
        except GeoDLError as exc:
            self._warn(str(exc))
            return
        self.newClassEdit.clear()
        self.classList.setCurrentRow(len(self.palette) - 1)

    def rename_class(self, row: int, name: str) -> None:
        if not 0 <= row < len(self.palette):
            self._warn("Select the class to rename.")
            return
        try:  # the class's points are renamed with it, and back on undo
            self.session.edit_palette(lambda p: p.rename(row, name), f"rename class to '{name.strip()}'")
        except GeoDLError as exc:
            self._warn(str(exc))

    def _rename_clicked(self) -> None:
        row = self.classList.currentRow()
        name = self.newClassEdit.text().strip()
        if not name and 0 <= row < len(self.palette):
            name, ok = QInputDialog.getText(self, "Rename class", "New name:", text=self.palette.at(row).name)
            if not ok:
                return
        self.rename_class(row, name)
        self.newClassEdit.clear()

    def recolour_class(self, row: int, color: str) -> None:
        if 0 <= row < len(self.palette):
            self.session.edit_palette(lambda p: p.recolour(row, QColor(color).name()), "recolour class")

    def _colour_clicked(self) -> None:
        row = self.classList.currentRow()
        if not 0 <= row < len(self.palette):
            self._warn("Select the class to recolour.")
            return
        colour = QColorDialog.getColor(QColor(self.palette.at(row).color), self, "Class colour")
        if colour.isValid():
            self.recolour_class(row, colour.name())

    def remove_class(self, row: int) -> None:
        if not 0 <= row < len(self.palette):
            self._warn("Select the class to remove.")
            return
        info = self.palette.at(row)
        n = self.session.counts().get(info.id, 0)
        if n:
            self._warn(f"Class '{info.name}' still has {n} point(s); remove them (right-click) before the class.")
            return
        self.session.edit_palette(lambda p: p.remove(row), f"remove class '{info.name}'")

    def move_class(self, row: int, offset: int) -> None:
        if 0 <= row < len(self.palette):
            self.classList.setCurrentRow(self.session.edit_palette(lambda p: p.move(row, offset), "reorder classes"))

    # ------------------------------------------------------------------------------------------- labelling
    def ensure_labels_layer(self) -> QgsVectorLayer:
        if self.session.layer is not None and self._layer_alive(self.session.layer):
            return self.session.layer
        crs = self.canvas.mapSettings().destinationCrs() if self.canvas is not None else self.project.crs()
        if not crs.isValid():
            rasters = self.selected_rasters()
            crs = rasters[0].crs() if rasters else QgsCoordinateReferenceSystem("EPSG:4326")
        layer = self.session.create_layer(self._unique("labels", ".gpkg"), crs)
        self.project.addMapLayer(layer)
        return layer

    def _toggle_label_tool(self, on: bool) -> None:
        if self.label_tool is None:
            return
        if not on:
            if self.canvas.mapTool() is self.label_tool:
                self.canvas.unsetMapTool(self.label_tool)
            return
        if not len(self.palette):
            self._warn("Add a class to the palette first, then label.")
            self.labelToolButton.setChecked(False)
            return
        try:
            self.ensure_labels_layer()
        except GeoDLError as exc:
            self._warn(str(exc))
            self.labelToolButton.setChecked(False)
            return
        self.canvas.setMapTool(self.label_tool)
        self.canvas.setFocus()

    def _label_add(self, point: QgsPointXY) -> None:
        class_id = self.active_class_id()
        if class_id is None:
            self._warn("Pick a class first (add one to the palette).")
            return
        try:
            self.session.add_point(point, class_id, self.canvas.mapSettings().destinationCrs())
        except GeoDLError as exc:
            self._warn(str(exc))

    def _label_remove(self, point: QgsPointXY, tolerance: float) -> None:
        try:
            if not self.session.remove_nearest(point, tolerance, self.canvas.mapSettings().destinationCrs()):
                self.show_message("No label point near the click.")
        except GeoDLError as exc:
            self._warn(str(exc))

    def sample_from_polygons(self) -> None:
        """geodl:samplepoints on a polygon layer; the points join the labelling session (one undo step)."""
        if self._running(self.sample_task):
            self._warn("Sampling is already running; wait for it or cancel it in the task bar.")
            return
        layer = self.polygonLayerCombo.currentLayer()
        field = self.classFieldCombo.currentField()
        if not isinstance(layer, QgsVectorLayer) or layer.providerType() != "ogr":
            self._warn("Choose a polygon layer saved in a file (GeoPackage, shapefile…) to sample from.")
            return
        if not field:
            self._warn("Choose the field that holds the class of each polygon.")
            return
        try:
            target = self.ensure_labels_layer()
        except GeoDLError as exc:
            self._warn(str(exc))
            return
        path, name = layer_file_path(layer)
        crs_wkt = target.crs().toWkt(QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED_GDAL)
        per_class, min_distance = self.perClassSpin.value(), self.minDistanceSpin.value()

        def work(progress):
            from ..core.data.labels import read_labels
            from ..core.data.point_sampling import sample_points_in_polygons

            polygons = read_labels(path, field, layer=name, target_crs_wkt=crs_wkt)
            return sample_points_in_polygons(polygons, per_class, min_distance, seed=0, progress=progress)

        generation = self._generation
        self.sample_task = self._run(
            GeoDLTask(
                "GeoDL: sample points in polygons",
                work,
                on_done=self._guard(generation, self._sampled),
                on_error=self._guard(generation, self._warn),
                on_cancelled=self._guard(generation, lambda: self.show_message("Sampling cancelled.")),
            )
        )
        self.show_message("Sampling points in the polygons…")

    def _sampled(self, labels: Any) -> None:
        from osgeo import ogr

        id_map = {}
        for c in labels.classes:
            existing = self.palette.by_name(c.name)
            id_map[c.id] = (existing or self.palette.add(c.name, c.color)).id
        points = []
        for wkb, cid in zip(labels.geometries_wkb, labels.class_ids, strict=True):
            g = ogr.CreateGeometryFromWkb(wkb)
            points.append((QgsPointXY(g.GetX(), g.GetY()), id_map[int(cid)]))
        self.ensure_labels_layer()
        self.session.add_points(points, f"sample {len(points)} points")
        for w in labels.warnings:
            self._warn(w)
        self.show_message(f"Added {len(points)} sampled points.", Qgis.MessageLevel.Success)
