"""The dock's Labels step: the class palette (add, rename, recolour, reorder, remove) and the labelling session
(click to add points of the active class, right-click to remove, undo/redo), or points sampled inside
labelled polygons; and the class-separability check (``summary_panel.py``).

The palette and the session are the dock's (the Train step and the active-learning panel use them too); this
step edits them. The chosen rasters come from the shared state."""

from __future__ import annotations

from typing import Any, Optional

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsMapLayerProxyModel,
    QgsPointXY,
    QgsVectorLayer,
)
from qgis.gui import QgsFieldComboBox, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor, QIcon, QPixmap
from qgis.PyQt.QtWidgets import (
    QColorDialog,
    QDoubleSpinBox,
    QGroupBox,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.data.classes import ClassTable
from ..core.runtime.errors import GeoDLError
from ..tasks import GeoDLTask, is_running
from .dock_context import DockContext
from .forms import load_form
from .labelling import CLASS_NAME_FIELD, LabelSession, layer_file_path
from .map_tools import LabelPointTool
from .project_state import DockState
from .shared_state import SharedState, layer_alive
from .step_panel import StepPanel
from .summary_panel import SummaryPanel


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class LabelsPanel(StepPanel):
    # ui/labels_panel.ui
    labelsLayout: QVBoxLayout
    classList: QListWidget
    newClassEdit: QLineEdit
    addClassButton: QPushButton
    renameClassButton: QPushButton
    colourClassButton: QPushButton
    removeClassButton: QPushButton
    classUpButton: QPushButton
    classDownButton: QPushButton
    labelToolButton: QPushButton
    undoButton: QPushButton
    redoButton: QPushButton
    labelsLayerLabel: QLabel
    samplingGroup: QGroupBox
    polygonLayerCombo: QgsMapLayerComboBox
    classFieldCombo: QgsFieldComboBox
    perClassSpin: QSpinBox
    minDistanceSpin: QDoubleSpinBox
    sampleButton: QPushButton

    def __init__(self, context: DockContext, shared: SharedState, session: LabelSession, parent: Optional[QWidget] = None) -> None:
        super().__init__(context, parent)
        load_form(self, "labels_panel.ui")
        self.shared, self.session, self.palette = shared, session, session.palette
        self.sample_task: Optional[GeoDLTask] = None
        self.polygonLayerCombo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.polygonLayerCombo.setAllowEmptyLayer(True)
        self.polygonLayerCombo.setLayer(None)
        self.polygonLayerCombo.layerChanged.connect(self.classFieldCombo.setLayer)
        self.summary_panel = SummaryPanel(
            self,
            self._summary_labels,
            lambda: [r.source() for r in self.shared.selected_rasters()],
            context.unique,
            context.run_task,
            context.warn,
        )
        self.labelsLayout.insertWidget(self.labelsLayout.indexOf(self.samplingGroup) + 1, self.summary_panel)
        self.label_tool: Optional[LabelPointTool] = None
        self._setup_tool()
        self._connect()
        self._refresh_classes()

    def _setup_tool(self) -> None:
        canvas = self.context.canvas
        if canvas is None:
            self.labelToolButton.setEnabled(False)
            return
        self.label_tool = tool = LabelPointTool(canvas)
        tool.deactivated.connect(lambda: self.labelToolButton.setChecked(False))
        tool.addRequested.connect(self._label_add)
        tool.removeRequested.connect(self._label_remove)
        tool.classKeyPressed.connect(self.select_class)
        tool.undoRequested.connect(self.session.undo_stack.undo)
        tool.redoRequested.connect(self.session.undo_stack.redo)

    def _connect(self) -> None:
        self.labelToolButton.toggled.connect(self._toggle_label_tool)
        self.addClassButton.clicked.connect(lambda: self.add_class(self.newClassEdit.text()))
        self.newClassEdit.returnPressed.connect(lambda: self.add_class(self.newClassEdit.text()))
        self.renameClassButton.clicked.connect(self._rename_clicked)
        self.colourClassButton.clicked.connect(self._colour_clicked)
        self.removeClassButton.clicked.connect(lambda: self.remove_class(self.classList.currentRow()))
        self.classUpButton.clicked.connect(lambda: self.move_class(self.classList.currentRow(), -1))
        self.classDownButton.clicked.connect(lambda: self.move_class(self.classList.currentRow(), 1))
        undo_stack = self.session.undo_stack
        self.undoButton.clicked.connect(undo_stack.undo)
        self.redoButton.clicked.connect(undo_stack.redo)
        undo_stack.canUndoChanged.connect(self.undoButton.setEnabled)
        undo_stack.canRedoChanged.connect(self.redoButton.setEnabled)
        self.undoButton.setEnabled(False)
        self.redoButton.setEnabled(False)
        self.palette.changed.connect(self._refresh_classes)
        self.session.countsChanged.connect(lambda _c: self._refresh_classes())
        self.sampleButton.clicked.connect(self.sample_from_polygons)

    def _summary_labels(self) -> Optional[tuple[str, Optional[str], str]]:
        """The chosen labelled polygons (more pixels per class), else the labelling session's points."""
        layer = self.polygonLayerCombo.currentLayer()
        field = self.classFieldCombo.currentField()
        if isinstance(layer, QgsVectorLayer) and layer.providerType() == "ogr" and field:
            path, name = layer_file_path(layer)
            return path, name, field
        labels = self._labels_layer()
        if labels is not None and sum(self.session.counts().values()) > 0:
            path, name = layer_file_path(labels)
            return path, name, CLASS_NAME_FIELD
        return None

    def _labels_layer(self) -> Optional[QgsVectorLayer]:
        layer = self.session.layer
        return layer if layer is not None and layer_alive(self.context.project, layer) else None

    # --------------------------------------------------------------------------------------------- palette
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
            self.context.message(f"Labelling '{self.palette.at(row).name}'.")

    def add_class(self, name: str, color: Optional[str] = None) -> None:
        try:
            self.session.edit_palette(lambda p: p.add(name, color), f"add class '{name.strip()}'")
        except GeoDLError as exc:
            self.context.warn(str(exc))
            return
        self.newClassEdit.clear()
        self.classList.setCurrentRow(len(self.palette) - 1)

    def rename_class(self, row: int, name: str) -> None:
        if not 0 <= row < len(self.palette):
            self.context.warn("Select the class to rename.")
            return
        try:  # the class's points are renamed with it, and back on undo
            self.session.edit_palette(lambda p: p.rename(row, name), f"rename class to '{name.strip()}'")
        except GeoDLError as exc:
            self.context.warn(str(exc))

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
            self.context.warn("Select the class to recolour.")
            return
        colour = QColorDialog.getColor(QColor(self.palette.at(row).color), self, "Class colour")
        if colour.isValid():
            self.recolour_class(row, colour.name())

    def remove_class(self, row: int) -> None:
        if not 0 <= row < len(self.palette):
            self.context.warn("Select the class to remove.")
            return
        info = self.palette.at(row)
        n = self.session.counts().get(info.id, 0)
        if n:
            self.context.warn(f"Class '{info.name}' still has {n} point(s); remove them (right-click) before the class.")
            return
        self.session.edit_palette(lambda p: p.remove(row), f"remove class '{info.name}'")

    def move_class(self, row: int, offset: int) -> None:
        if 0 <= row < len(self.palette):
            self.classList.setCurrentRow(self.session.edit_palette(lambda p: p.move(row, offset), "reorder classes"))

    # ------------------------------------------------------------------------------------------- labelling
    def ensure_labels_layer(self) -> QgsVectorLayer:
        existing = self._labels_layer()
        if existing is not None:
            return existing
        canvas, project = self.context.canvas, self.context.project
        crs = canvas.mapSettings().destinationCrs() if canvas is not None else project.crs()
        if not crs.isValid():
            rasters = self.shared.selected_rasters()
            crs = rasters[0].crs() if rasters else QgsCoordinateReferenceSystem("EPSG:4326")
        layer = self.session.create_layer(self.context.unique("labels", ".gpkg"), crs)
        project.addMapLayer(layer)
        return layer

    def _toggle_label_tool(self, on: bool) -> None:
        canvas, tool = self.context.canvas, self.label_tool
        if tool is None or canvas is None:
            return
        if not on:
            if canvas.mapTool() is tool:
                canvas.unsetMapTool(tool)
            return
        if not len(self.palette):
            self.context.warn("Add a class to the palette first, then label.")
            self.labelToolButton.setChecked(False)
            return
        try:
            self.ensure_labels_layer()
        except GeoDLError as exc:
            self.context.warn(str(exc))
            self.labelToolButton.setChecked(False)
            return
        canvas.setMapTool(tool)
        canvas.setFocus()

    def _canvas_crs(self) -> Optional[QgsCoordinateReferenceSystem]:
        canvas = self.context.canvas
        return canvas.mapSettings().destinationCrs() if canvas is not None else None

    def _label_add(self, point: QgsPointXY) -> None:
        class_id = self.active_class_id()
        if class_id is None:
            self.context.warn("Pick a class first (add one to the palette).")
            return
        try:
            self.session.add_point(point, class_id, self._canvas_crs())
        except GeoDLError as exc:
            self.context.warn(str(exc))

    def _label_remove(self, point: QgsPointXY, tolerance: float) -> None:
        try:
            if not self.session.remove_nearest(point, tolerance, self._canvas_crs()):
                self.context.message("No label point near the click.")
        except GeoDLError as exc:
            self.context.warn(str(exc))

    def sample_from_polygons(self) -> None:
        """geodl:samplepoints on a polygon layer; the points join the labelling session (one undo step)."""
        if is_running(self.sample_task):
            self.context.warn("Sampling is already running; wait for it or cancel it in the task bar.")
            return
        layer = self.polygonLayerCombo.currentLayer()
        field = self.classFieldCombo.currentField()
        if not isinstance(layer, QgsVectorLayer) or layer.providerType() != "ogr":
            self.context.warn("Choose a polygon layer saved in a file (GeoPackage, shapefile…) to sample from.")
            return
        if not field:
            self.context.warn("Choose the field that holds the class of each polygon.")
            return
        try:
            target = self.ensure_labels_layer()
        except GeoDLError as exc:
            self.context.warn(str(exc))
            return
        path, name = layer_file_path(layer)
        crs_wkt = target.crs().toWkt(QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED_GDAL)
        per_class, min_distance = self.perClassSpin.value(), self.minDistanceSpin.value()

        def work(progress: Any) -> Any:
            from ..core.data.labels import read_labels
            from ..core.data.point_sampling import sample_points_in_polygons

            polygons = read_labels(path, field, layer=name, target_crs_wkt=crs_wkt)
            return sample_points_in_polygons(polygons, per_class, min_distance, seed=0, progress=progress)

        guard = self.context.guard
        self.sample_task = self.context.run_task(
            GeoDLTask(
                "GeoDL: sample points in polygons",
                work,
                on_done=guard(self, self._sampled),
                on_error=guard(self, self.context.warn),
                on_cancelled=guard(self, lambda: self.context.message("Sampling cancelled.")),
            )
        )
        self.context.message("Sampling points in the polygons…")

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
            self.context.warn(w)
        self.context.message(f"Added {len(points)} sampled points.", Qgis.MessageLevel.Success)

    # -------------------------------------------------------------------------------------------- dock hooks
    def tasks(self) -> list[Optional[GeoDLTask]]:
        return [self.sample_task]

    def cancel(self) -> None:
        super().cancel()
        summary = self.summary_panel.task
        if summary is not None and is_running(summary):
            summary.cancel()

    def release_tools(self) -> None:
        self._release(self.label_tool)

    def project_cleared(self) -> None:
        self.session.set_layer(None)
        self.palette.set_table(ClassTable([]))

    def write_state(self, state: DockState) -> None:
        state.classes = self.palette.table().to_json()
        state.active_class = self.classList.currentRow()
        labels = self._labels_layer()
        state.labels_layer_id = labels.id() if labels is not None else ""

    def read_state(self, state: DockState) -> None:
        try:
            self.palette.set_table(ClassTable.from_json(state.classes))
        except GeoDLError as exc:
            self.context.warn(f"The project's GeoDL classes could not be restored: {exc}")
        labels = self.context.project.mapLayer(state.labels_layer_id) if state.labels_layer_id else None
        if isinstance(labels, QgsVectorLayer):
            try:
                self.session.set_layer(labels)
            except GeoDLError as exc:
                self.context.warn(str(exc))
        if 0 <= state.active_class < len(self.palette):
            self.classList.setCurrentRow(state.active_class)
