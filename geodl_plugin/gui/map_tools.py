"""Canvas map tools: draw a region (rectangle or polygon) and place label points.

The tools only report what the analyst did (signals with map-CRS geometry/points); the dock decides what
to store. Esc cancels a drawing, right-click or double-click finishes a polygon.
"""

from __future__ import annotations

from typing import Optional

from qgis.core import QgsGeometry, QgsPointXY, QgsRectangle, QgsWkbTypes
from qgis.gui import QgsMapCanvas, QgsMapMouseEvent, QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QKeyEvent

_FILL = QColor(255, 0, 0, 40)
_EDGE = QColor(220, 30, 30)


def _band(canvas: QgsMapCanvas) -> QgsRubberBand:
    band = QgsRubberBand(canvas, QgsWkbTypes.GeometryType.PolygonGeometry)
    band.setFillColor(_FILL)
    band.setStrokeColor(_EDGE)
    band.setWidth(2)
    return band


class RegionRectangleTool(QgsMapTool):
    """Press, drag, release: a rectangle. Esc cancels."""

    regionDrawn = pyqtSignal(QgsGeometry)  # in the canvas CRS
    cancelled = pyqtSignal()

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self._band = _band(canvas)
        self._start: Optional[QgsPointXY] = None

    def canvasPressEvent(self, e: QgsMapMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self._start = e.mapPoint()
            self._band.reset(QgsWkbTypes.GeometryType.PolygonGeometry)

    def canvasMoveEvent(self, e: QgsMapMouseEvent) -> None:
        if self._start is not None:
            self._band.setToGeometry(QgsGeometry.fromRect(QgsRectangle(self._start, e.mapPoint())), None)

    def canvasReleaseEvent(self, e: QgsMapMouseEvent) -> None:
        if self._start is None or e.button() != Qt.MouseButton.LeftButton:
            return
        rect = QgsRectangle(self._start, e.mapPoint())
        self._start = None
        self._band.reset(QgsWkbTypes.GeometryType.PolygonGeometry)
        if rect.width() > 0 and rect.height() > 0:
            self.regionDrawn.emit(QgsGeometry.fromRect(rect))

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() == Qt.Key.Key_Escape:
            self._start = None
            self._band.reset(QgsWkbTypes.GeometryType.PolygonGeometry)
            self.cancelled.emit()
            e.accept()

    def deactivate(self) -> None:
        self._start = None
        self._band.reset(QgsWkbTypes.GeometryType.PolygonGeometry)
        super().deactivate()


class RegionPolygonTool(QgsMapTool):
    """Left-click adds a vertex; right-click or double-click finishes; Esc cancels."""

    regionDrawn = pyqtSignal(QgsGeometry)
    cancelled = pyqtSignal()

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self._band = _band(canvas)
        self._points: list[QgsPointXY] = []

    @property
    def points(self) -> list[QgsPointXY]:
        return list(self._points)

    def _redraw(self, hover: Optional[QgsPointXY] = None) -> None:
        pts = self._points + ([hover] if hover is not None else [])
        self._band.reset(QgsWkbTypes.GeometryType.PolygonGeometry)
        for p in pts:
            self._band.addPoint(p, False)
        self._band.updatePosition()
        self._band.update()

    def canvasReleaseEvent(self, e: QgsMapMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self._points.append(e.mapPoint())
            self._redraw()
        elif e.button() == Qt.MouseButton.RightButton:
            self.finish()

    def canvasDoubleClickEvent(self, e: QgsMapMouseEvent) -> None:
        # The release before the double-click already added this vertex.
        self.finish()

    def canvasMoveEvent(self, e: QgsMapMouseEvent) -> None:
        if self._points:
            self._redraw(e.mapPoint())

    def finish(self) -> None:
        pts = self._points
        self._points = []
        self._band.reset(QgsWkbTypes.GeometryType.PolygonGeometry)
        if len(pts) >= 3:
            geom = QgsGeometry.fromPolygonXY([pts + [pts[0]]])
            if not geom.isEmpty() and geom.area() > 0:
                self.regionDrawn.emit(geom)
                return
        self.cancelled.emit()

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() == Qt.Key.Key_Escape:
            self._points = []
            self._band.reset(QgsWkbTypes.GeometryType.PolygonGeometry)
            self.cancelled.emit()
            e.accept()

    def deactivate(self) -> None:
        self._points = []
        self._band.reset(QgsWkbTypes.GeometryType.PolygonGeometry)
        super().deactivate()


class LabelPointTool(QgsMapTool):
    """Left-click: add a point of the active class. Right-click: remove the nearest point. Keys 1-9: pick
    the class; Ctrl+Z / Ctrl+Shift+Z: undo / redo."""

    addRequested = pyqtSignal(QgsPointXY)  # canvas CRS
    removeRequested = pyqtSignal(QgsPointXY, float)  # point, search tolerance in map units
    classKeyPressed = pyqtSignal(int)  # 0-based palette row
    undoRequested = pyqtSignal()
    redoRequested = pyqtSignal()

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)

    def canvasReleaseEvent(self, e: QgsMapMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self.addRequested.emit(e.mapPoint())
        elif e.button() == Qt.MouseButton.RightButton:
            # 12 screen pixels: near enough to mean "that point", far enough to hit it by hand.
            self.removeRequested.emit(e.mapPoint(), 12 * self.canvas().mapUnitsPerPixel())

    def keyPressEvent(self, e: QKeyEvent) -> None:
        key = e.key()
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.classKeyPressed.emit(int(key - Qt.Key.Key_1))
            e.accept()
        elif key == Qt.Key.Key_Z and e.modifiers() & Qt.KeyboardModifier.ControlModifier:
            if e.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.redoRequested.emit()
            else:
                self.undoRequested.emit()
            e.accept()
        else:
            e.ignore()
