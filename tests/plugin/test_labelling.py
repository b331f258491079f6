"""The labelling session: palette edits, points from simulated canvas clicks, undo/redo, class keys."""

from __future__ import annotations

import pytest
from qgis.core import QgsCategorizedSymbolRenderer, QgsPointXY, QgsVectorLayer
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt
from qgis.PyQt.QtGui import QKeyEvent

from geodl_plugin.core.runtime.errors import GeoDLError
from geodl_plugin.gui.class_palette import ClassPalette
from geodl_plugin.gui.dock import GeoDLDock
from geodl_plugin.gui.labelling import CLASS_ID_FIELD, CLASS_NAME_FIELD

from .dock_support import ORIGIN, add_raster, click, raster_extent, setup_canvas, write_two_class_raster


@pytest.fixture
def dock(qgis_iface, qgis_new_project, qgis_canvas, qtbot, tmp_path):
    d = GeoDLDock(None, iface=qgis_iface, project=qgis_new_project, canvas=qgis_canvas)
    qtbot.addWidget(d)
    d.set_output_dir(str(tmp_path / "out"))
    yield d
    d.disconnect_project()


def test_palette_add_rename_recolour_reorder_remove():
    palette = ClassPalette()
    water = palette.add("water")
    field = palette.add("field", "#e6c229")
    assert water.color == "#1f78b4" and [c.id for c in palette] == [1, 2]
    with pytest.raises(GeoDLError, match="already"):
        palette.add("water")
    palette.rename(0, "lake")
    palette.recolour(1, "#00ff00")
    assert palette.move(1, -1) == 0
    assert [(c.id, c.name, c.color) for c in palette] == [(2, "field", "#00ff00"), (1, "lake", "#1f78b4")]
    palette.remove(0)
    assert palette.table().names == ["lake"] and palette.add("x").id == 2  # ids are reused only when free
    assert field.id == 2


def test_clicks_add_and_remove_points_with_undo(dock, qgis_canvas, qgis_new_project, tmp_path):
    raster = add_raster(qgis_new_project, write_two_class_raster(tmp_path / "scene.tif"))
    setup_canvas(qgis_canvas, [raster], raster_extent())
    dock.labels.add_class("water")
    dock.labels.add_class("field")
    dock.labels.labelToolButton.setChecked(True)
    assert qgis_canvas.mapTool() is dock.labels.label_tool
    layer = dock.session.layer
    assert isinstance(layer, QgsVectorLayer) and layer.source().split("|")[0].endswith(".gpkg")
    assert qgis_new_project.mapLayer(layer.id()) is layer

    x0, y0 = ORIGIN
    dock.labels.select_class(0)
    click(qgis_canvas, dock.labels.label_tool, x0 + 100, y0 - 100)
    click(qgis_canvas, dock.labels.label_tool, x0 + 150, y0 - 300)
    # number key 2 picks "field"
    dock.labels.label_tool.keyPressEvent(QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_2, Qt.KeyboardModifier.NoModifier))
    assert dock.labels.active_class_id() == dock.palette.by_name("field").id
    click(qgis_canvas, dock.labels.label_tool, x0 + 500, y0 - 200)
    counts = dock.session.counts()
    assert counts == {1: 2, 2: 1}
    assert "(2 points)" in dock.labels.classList.item(0).text()  # live counts in the palette
    names = sorted(f[CLASS_NAME_FIELD] for f in layer.getFeatures())
    assert names == ["field", "water", "water"]

    # right-click removes the nearest point (within a few pixels), not the others
    click(qgis_canvas, dock.labels.label_tool, x0 + 101, y0 - 101, Qt.MouseButton.RightButton)
    assert dock.session.counts() == {1: 1, 2: 1}
    click(qgis_canvas, dock.labels.label_tool, x0 + 590, y0 - 590, Qt.MouseButton.RightButton)  # nothing near
    assert layer.featureCount() == 2

    dock.session.undo_stack.undo()  # the removal
    assert dock.session.counts() == {1: 2, 2: 1}
    dock.session.undo_stack.undo()  # the "field" point
    assert dock.session.counts() == {1: 2, 2: 0}
    dock.session.undo_stack.redo()
    assert dock.session.counts() == {1: 2, 2: 1}

    # the file on disk holds the points (edits go straight to the GeoPackage), styled by class
    reopened = QgsVectorLayer(layer.source(), "check", "ogr")
    assert reopened.featureCount() == 3
    assert isinstance(layer.renderer(), QgsCategorizedSymbolRenderer)
    assert layer.renderer().classAttribute() == CLASS_ID_FIELD
    assert [c.label() for c in layer.renderer().categories()] == ["water", "field"]

    # renaming a class renames its points; removing a class with points is refused politely
    dock.labels.rename_class(1, "crop")
    assert sorted(f[CLASS_NAME_FIELD] for f in layer.getFeatures()) == ["crop", "water", "water"]
    dock.session.undo_stack.undo()  # the rename: the class and its points are 'field' again
    assert dock.palette.at(1).name == "field"
    assert sorted(f[CLASS_NAME_FIELD] for f in layer.getFeatures()) == ["field", "water", "water"]
    dock.session.undo_stack.redo()
    assert sorted(f[CLASS_NAME_FIELD] for f in layer.getFeatures()) == ["crop", "water", "water"]
    dock.labels.remove_class(1)
    assert len(dock.palette) == 2 and "still has 1 point" in dock.messageLabel.text()


def test_palette_edits_are_undone_and_redone_in_order(dock):
    def names():
        return [c.name for c in dock.palette]

    dock.labels.add_class("water")
    dock.labels.add_class("field")
    first_field_colour = dock.palette.at(1).color
    dock.labels.recolour_class(1, "#00ff00")
    dock.labels.move_class(1, -1)
    dock.labels.add_class("urban")
    dock.labels.remove_class(2)
    dock.labels.add_class("water")  # refused (the name is taken): nothing goes on the stack
    assert names() == ["field", "water"] and "already" in dock.messageLabel.text()
    assert dock.session.undo_stack.count() == 6
    steps = []
    while dock.session.undo_stack.canUndo():
        dock.session.undo_stack.undo()
        steps.append((names(), dock.palette.by_name("field").color if dock.palette.by_name("field") else None))
    assert steps == [
        (["field", "water", "urban"], "#00ff00"),  # the removal undone
        (["field", "water"], "#00ff00"),  # the addition of 'urban' undone
        (["water", "field"], "#00ff00"),  # the move undone
        (["water", "field"], first_field_colour),  # the recolour undone
        (["water"], None),
        ([], None),
    ]
    while dock.session.undo_stack.canRedo():
        dock.session.undo_stack.redo()
    assert names() == ["field", "water"] and dock.palette.at(0).color == "#00ff00"


def test_label_tool_needs_a_class(dock):
    dock.labels.labelToolButton.setChecked(True)
    assert not dock.labels.labelToolButton.isChecked()
    assert "Add a class" in dock.messageLabel.text()


def test_region_tools_draw_cancel_and_finish(dock, qgis_canvas, qgis_new_project, tmp_path):
    raster = add_raster(qgis_new_project, write_two_class_raster(tmp_path / "scene.tif"))
    setup_canvas(qgis_canvas, [raster], raster_extent())
    x0, y0 = ORIGIN
    dock.region.drawPolygonButton.setChecked(True)
    tool = dock.region.polygon_tool
    assert qgis_canvas.mapTool() is tool
    for dx, dy in ((50, 50), (300, 50), (300, 300)):
        click(qgis_canvas, tool, x0 + dx, y0 - dy)
    tool.keyPressEvent(QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier))
    assert dock.shared.region_layer is None and tool.points == []
    for dx, dy in ((50, 50), (300, 50), (300, 300)):
        click(qgis_canvas, tool, x0 + dx, y0 - dy)
    click(qgis_canvas, tool, x0 + 10, y0 - 300, Qt.MouseButton.RightButton)  # right-click finishes
    region = dock.shared.region_geometry(raster.crs())
    assert region is not None and region.area() == pytest.approx(250 * 250 / 2, rel=0.2)
    assert qgis_new_project.mapLayer(dock.shared.region_layer.id()) is not None
    assert not dock.region.drawPolygonButton.isChecked()

    dock.region.drawRectangleButton.setChecked(True)
    rect_tool = dock.region.rectangle_tool
    click_press_move_release = [(x0 + 100, y0 - 100), (x0 + 400, y0 - 300)]

    def event(kind, x, y):
        p = qgis_canvas.getCoordinateTransform().transform(QgsPointXY(x, y))
        return QgsMapMouseEvent(
            qgis_canvas,
            kind,
            QPoint(int(p.x()), int(p.y())),
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )

    (ax, ay), (bx, by) = click_press_move_release
    rect_tool.canvasPressEvent(event(QEvent.Type.MouseButtonPress, ax, ay))
    rect_tool.canvasMoveEvent(event(QEvent.Type.MouseMove, bx, by))
    rect_tool.canvasReleaseEvent(event(QEvent.Type.MouseButtonRelease, bx, by))
    region = dock.shared.region_geometry(raster.crs())
    assert region.area() == pytest.approx(300 * 200, rel=0.2)
    assert dock.shared.region_layer.featureCount() == 1  # the region is replaced, not added to
