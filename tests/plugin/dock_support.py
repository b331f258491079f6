"""Shared helpers for the dock tests: a synthetic two-class GeoTIFF, a dock fixture, simulated clicks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsRasterLayer, QgsRectangle
from qgis.gui import QgsMapCanvas, QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt

ORIGIN = (500000.0, 4100000.0)  # UTM 33N
PIXEL = 10.0


def write_two_class_raster(path: Path, size: int = 60, seed: int = 0) -> Path:
    """3 bands, uint16: the left half dark ("water"), the right half bright ("field"), with noise."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    data = np.empty((3, size, size), dtype=np.uint16)
    left = np.arange(size) < size // 2
    for b, (dark, bright) in enumerate(((300, 1800), (400, 2200), (200, 2600))):
        base = np.where(left[None, :], dark, bright).repeat(size, axis=0)
        data[b] = (base + rng.normal(0, 60, (size, size))).clip(0, 65535).astype(np.uint16)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": from_origin(ORIGIN[0], ORIGIN[1], PIXEL, PIXEL),
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        for b, name in enumerate(("blue", "green", "red"), start=1):
            ds.set_band_description(b, name)
    return path


def raster_extent(size: int = 60) -> QgsRectangle:
    x0, y0 = ORIGIN
    return QgsRectangle(x0, y0 - size * PIXEL, x0 + size * PIXEL, y0)


def setup_canvas(canvas: QgsMapCanvas, layers: list, extent: QgsRectangle) -> None:
    """Clicks map through the canvas's own map settings, so the (hidden) canvas's size does not matter."""
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32633"))
    canvas.setLayers(layers)
    canvas.setExtent(extent)


def click(canvas: QgsMapCanvas, tool, x: float, y: float, button=Qt.MouseButton.LeftButton) -> None:
    """A simulated press + release at map coordinates (x, y) handed to ``tool``."""
    pixel = canvas.getCoordinateTransform().transform(QgsPointXY(x, y))
    pos = QPoint(int(round(pixel.x())), int(round(pixel.y())))
    press = QgsMapMouseEvent(canvas, QEvent.Type.MouseButtonPress, pos, button, button, Qt.KeyboardModifier.NoModifier)
    tool.canvasPressEvent(press)
    release = QgsMapMouseEvent(canvas, QEvent.Type.MouseButtonRelease, pos, button, button, Qt.KeyboardModifier.NoModifier)
    tool.canvasReleaseEvent(release)


def add_raster(project, path: Path, name: str = "scene") -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name)
    assert layer.isValid()
    project.addMapLayer(layer)
    return layer
