"""A labelling session: point labels in a GeoPackage layer, styled by class, with undo/redo.

Edits go straight to the data provider (each click is saved at once, so a crash loses nothing) and every
edit is a QUndoCommand on the session's QUndoStack. Fields: ``class_name`` (text, what the core's
``read_labels`` reads) and ``class_id`` (integer, what the renderer uses).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional, Sequence, TypeVar

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureRequest,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsMarkerSymbol,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsRendererCategory,
    QgsVectorFileWriter,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QObject, QVariant, pyqtSignal
from qgis.PyQt.QtWidgets import QUndoCommand, QUndoStack

from ..core.data.classes import ClassTable
from ..core.runtime.errors import GeoDLError
from .class_palette import ClassPalette

T = TypeVar("T")

CLASS_NAME_FIELD = "class_name"
CLASS_ID_FIELD = "class_id"
LABELS_LAYER_NAME = "GeoDL labels"


def create_geopackage_layer(
    path: str, layer_name: str, geometry_type: int, crs: QgsCoordinateReferenceSystem, fields: QgsFields, display_name: str
) -> QgsVectorLayer:
    """Create an empty GeoPackage layer (replacing the file) and open it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = layer_name
    writer = QgsVectorFileWriter.create(path, fields, geometry_type, crs, QgsProject.instance().transformContext(), options)
    if writer.hasError() != QgsVectorFileWriter.WriterError.NoError:
        message = writer.errorMessage()
        del writer
        raise GeoDLError(f"Cannot create the GeoPackage '{path}': {message}")
    del writer  # closes the file
    layer = QgsVectorLayer(f"{path}|layername={layer_name}", display_name, "ogr")
    if not layer.isValid():
        raise GeoDLError(f"QGIS cannot open the new GeoPackage layer '{path}'.")
    return layer


def label_fields() -> QgsFields:
    fields = QgsFields()
    fields.append(QgsField(CLASS_NAME_FIELD, QVariant.String))
    fields.append(QgsField(CLASS_ID_FIELD, QVariant.Int))
    return fields


def layer_file_path(layer: QgsVectorLayer) -> tuple[str, Optional[str]]:
    """(file path, layer name or None) of an OGR layer's source."""
    parts = layer.source().split("|")
    name = None
    for part in parts[1:]:
        if part.startswith("layername="):
            name = part.split("=", 1)[1]
    return parts[0], name


class _AddPoints(QUndoCommand):
    def __init__(self, session: LabelSession, points: Sequence[tuple[QgsPointXY, int]], text: str) -> None:
        super().__init__(text)
        self._session = session
        self._points = list(points)
        self._fids: list[int] = []

    def redo(self) -> None:
        self._fids = self._session._add_features(self._points)

    def undo(self) -> None:
        self._session._delete_features(self._fids)
        self._fids = []


class _RemovePoint(QUndoCommand):
    def __init__(self, session: LabelSession, fid: int, point: QgsPointXY, class_id: int) -> None:
        super().__init__("remove label point")
        self._session = session
        self._fid = fid
        self._point = (point, class_id)

    def redo(self) -> None:
        self._session._delete_features([self._fid])

    def undo(self) -> None:
        self._fid = self._session._add_features([self._point])[0]


class _PaletteEdit(QUndoCommand):
    """A palette edit (add, rename, recolour, reorder, remove) as the tables before and after it. Undoing a
    rename renames the class's points back too."""

    def __init__(self, session: LabelSession, before: ClassTable, after: ClassTable, text: str) -> None:
        super().__init__(text)
        self._session, self._before, self._after = session, before, after

    def redo(self) -> None:
        self._session._set_palette(self._after, self._before)

    def undo(self) -> None:
        self._session._set_palette(self._before, self._after)


class LabelSession(QObject):
    """Owns the labels layer and its undo stack; knows the palette for names and colours."""

    countsChanged = pyqtSignal(dict)  # class id -> number of points

    def __init__(self, palette: ClassPalette, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.palette = palette
        self.layer: Optional[QgsVectorLayer] = None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.indexChanged.connect(self._index_changed)
        palette.changed.connect(self._palette_changed)

    # --- layer ---------------------------------------------------------------------------------------------
    def create_layer(self, path: str, crs: QgsCoordinateReferenceSystem) -> QgsVectorLayer:
        layer = create_geopackage_layer(path, "labels", QgsWkbTypes.Type.Point, crs, label_fields(), LABELS_LAYER_NAME)
        self.set_layer(layer)
        return layer

    def set_layer(self, layer: Optional[QgsVectorLayer]) -> None:
        if layer is not None:
            names = layer.fields().names()
            if CLASS_NAME_FIELD not in names or CLASS_ID_FIELD not in names:
                raise GeoDLError(
                    f"The layer '{layer.name()}' is not a GeoDL labels layer (it lacks the fields {CLASS_NAME_FIELD} and {CLASS_ID_FIELD})."
                )
            if layer.geometryType() != QgsWkbTypes.GeometryType.PointGeometry:
                raise GeoDLError(f"The layer '{layer.name()}' does not hold points.")
        self.undo_stack.clear()
        self.layer = layer
        if layer is not None:
            layer.willBeDeleted.connect(self._layer_deleted)
            self.apply_style()
        self._emit_counts()

    def _layer_deleted(self) -> None:
        self.layer = None
        self.undo_stack.clear()
        self._emit_counts()

    def file_path(self) -> Optional[str]:
        return layer_file_path(self.layer)[0] if self.layer is not None else None

    def apply_style(self) -> None:
        if self.layer is None:
            return
        categories = []
        for c in self.palette:
            symbol = QgsMarkerSymbol.createSimple({"name": "circle", "color": c.color, "outline_color": "#202020", "size": "2.6"})
            categories.append(QgsRendererCategory(c.id, symbol, c.name))
        self.layer.setRenderer(QgsCategorizedSymbolRenderer(CLASS_ID_FIELD, categories))
        self.layer.triggerRepaint()

    def _palette_changed(self) -> None:
        self.apply_style()
        self._emit_counts()

    # --- edits (undoable) ----------------------------------------------------------------------------------
    def _require_layer(self) -> QgsVectorLayer:
        if self.layer is None:
            raise GeoDLError("Start a labelling session first (Labels tab).")
        return self.layer

    def _to_layer(self, point: QgsPointXY, crs: Optional[QgsCoordinateReferenceSystem]) -> QgsPointXY:
        layer = self._require_layer()
        if crs is None or not crs.isValid() or crs == layer.crs():
            return point
        return QgsCoordinateTransform(crs, layer.crs(), QgsProject.instance()).transform(point)

    def add_point(self, point: QgsPointXY, class_id: int, crs: Optional[QgsCoordinateReferenceSystem] = None) -> None:
        if self.palette.by_id(class_id) is None:
            raise GeoDLError("Pick a class first (add one to the palette).")
        self.undo_stack.push(_AddPoints(self, [(self._to_layer(point, crs), class_id)], "add label point"))

    def add_points(self, points: Sequence[tuple[QgsPointXY, int]], text: str = "add sampled points") -> None:
        self._require_layer()
        if points:
            self.undo_stack.push(_AddPoints(self, points, text))

    def remove_nearest(self, point: QgsPointXY, tolerance: float, crs: Optional[QgsCoordinateReferenceSystem] = None) -> bool:
        """Remove the point nearest ``point`` within ``tolerance`` (map units of ``crs``). False if none."""
        layer = self._require_layer()
        p = self._to_layer(point, crs)
        if crs is not None and crs.isValid() and crs != layer.crs():
            edge = self._to_layer(QgsPointXY(point.x() + tolerance, point.y()), crs)
            tolerance = math.hypot(edge.x() - p.x(), edge.y() - p.y())
        rect = QgsRectangle(p.x() - tolerance, p.y() - tolerance, p.x() + tolerance, p.y() + tolerance)
        best = None
        for f in layer.getFeatures(QgsFeatureRequest().setFilterRect(rect)):
            q = f.geometry().asPoint()
            d = math.hypot(q.x() - p.x(), q.y() - p.y())
            if d <= tolerance and (best is None or d < best[0]):
                best = (d, f.id(), q, int(f[CLASS_ID_FIELD]))
        if best is None:
            return False
        self.undo_stack.push(_RemovePoint(self, best[1], best[2], best[3]))
        return True

    def _add_features(self, points: Sequence[tuple[QgsPointXY, int]]) -> list[int]:
        layer = self._require_layer()
        features = []
        for point, class_id in points:
            info = self.palette.by_id(class_id)
            f = QgsFeature(layer.fields())
            f.setGeometry(QgsGeometry.fromPointXY(point))
            f[CLASS_NAME_FIELD] = info.name if info is not None else str(class_id)
            f[CLASS_ID_FIELD] = int(class_id)
            features.append(f)
        ok, added = layer.dataProvider().addFeatures(features)
        if not ok:
            raise GeoDLError(f"Cannot write to the labels layer: {layer.dataProvider().lastError()}")
        layer.triggerRepaint()
        return [f.id() for f in added]

    def _delete_features(self, fids: Sequence[int]) -> None:
        layer = self._require_layer()
        layer.dataProvider().deleteFeatures(list(fids))
        layer.triggerRepaint()

    def edit_palette(self, change: Callable[[ClassPalette], T], text: str) -> T:
        """Apply ``change`` to the palette as one step on the undo stack (beside the point edits, so Ctrl+Z
        undoes both in order). A change that raises leaves the palette and the stack as they were."""
        before = self.palette.table()
        result = change(self.palette)
        after = self.palette.table()
        if list(after) != list(before):
            self.undo_stack.push(_PaletteEdit(self, before, after, text))  # push runs redo: the same table
        return result

    def _set_palette(self, table: ClassTable, previous: ClassTable) -> None:
        self.palette.set_table(table)
        old_names = {c.id: c.name for c in previous}
        for info in table:
            if info.id in old_names and old_names[info.id] != info.name:
                self.rename_class_points(info.id)

    def rename_class_points(self, class_id: int) -> None:
        """Keep ``class_name`` in step with the palette after a rename (and after undoing one)."""
        if self.layer is None:
            return
        info = self.palette.by_id(class_id)
        if info is None:
            return
        idx = self.layer.fields().indexOf(CLASS_NAME_FIELD)
        changes = {
            f.id(): {idx: info.name}
            for f in self.layer.getFeatures(QgsFeatureRequest().setFilterExpression(f'"{CLASS_ID_FIELD}" = {class_id}'))
        }
        if changes:
            self.layer.dataProvider().changeAttributeValues(changes)

    # --- counts --------------------------------------------------------------------------------------------
    def counts(self) -> dict[int, int]:
        out = {c.id: 0 for c in self.palette}
        if self.layer is None:
            return out
        request = (
            QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([CLASS_ID_FIELD], self.layer.fields())
        )
        for f in self.layer.getFeatures(request):
            cid = f[CLASS_ID_FIELD]
            if cid is not None:
                out[int(cid)] = out.get(int(cid), 0) + 1
        return out

    def _index_changed(self, _index: int) -> None:
        self._emit_counts()

    def _emit_counts(self) -> None:
        self.countsChanged.emit(self.counts())
