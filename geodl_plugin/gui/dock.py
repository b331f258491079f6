"""The GeoDL dock: Region → Labels → Imagery → Train → Map, built from ``ui/dock.ui``.

The dock collects choices, validates them, and hands the core functions to :class:`GeoDLTask` (the same
core calls the Processing algorithms make). It never runs core work on the main thread; the tasks'
callbacks apply results here, on the main thread.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsMapLayer,
    QgsMapLayerProxyModel,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt import sip, uic
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor, QIcon, QPixmap
from qgis.PyQt.QtWidgets import (
    QColorDialog,
    QDockWidget,
    QInputDialog,
    QListWidgetItem,
    QTableWidgetItem,
    QTreeWidgetItem,
    QWidget,
)

from .. import settings

# The core modules the tasks use in this process (no TensorFlow: that runs in the worker process). Imported
# with the dock, at plugin load, because a first import inside a task's thread holds the interpreter lock
# and stalls the map for ~0.2 s.
from ..core import labels as _labels  # noqa: F401
from ..core import samples as _samples  # noqa: F401
from ..core.classes import ClassTable
from ..core.dependencies import DependencyStatus, is_importable, missing_message
from ..core.errors import GeoDLError
from ..layers import add_result_layers
from ..paths import ui_file
from ..tasks import GeoDLTask
from . import project_state
from .class_palette import ClassPalette
from .labelling import CLASS_NAME_FIELD, LabelSession, create_geopackage_layer, layer_file_path
from .map_tools import LabelPointTool, RegionPolygonTool, RegionRectangleTool
from .training_plot import TrainingPlot

log = logging.getLogger("geodl")

DOCK_OBJECT_NAME = "GeoDLDock"  # QGIS saves and restores dock state by object name
REGION_LAYER_NAME = "GeoDL region"
PREVIEW_GROUP = "GeoDL preview"
AREA_REGION, AREA_RASTER, AREA_CANVAS = "region", "raster", "canvas"

_FORM, _ = uic.loadUiType(str(ui_file("dock.ui")))


def model_classes(path: str) -> ClassTable:
    """The class table of a model file, from its manifest (no TensorFlow needed)."""
    from ..core.model_file import ModelBundle, read_manifest

    return ModelBundle(read_manifest(path), None, path).classes


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class GeoDLDock(QDockWidget, _FORM):  # type: ignore[valid-type, misc]
    """``run_task`` is the plugin's (it keeps the task alive); ``canvas`` defaults to iface's map canvas."""

    def __init__(self, parent: QWidget | None = None, iface: Any = None,
                 run_task: Optional[Callable[[GeoDLTask], GeoDLTask]] = None,
                 project: Optional[QgsProject] = None, canvas: Any = None) -> None:
        super().__init__(parent)
        self.setupUi(self)
        self.setObjectName(DOCK_OBJECT_NAME)
        self.iface = iface
        self.canvas = canvas if canvas is not None else (iface.mapCanvas() if iface is not None else None)
        self.project = project or QgsProject.instance()
        self._run_task_fn = run_task
        self._own_tasks: set[GeoDLTask] = set()
        self._generation = 0  # bumped when the project closes: late results of old tasks are dropped
        self.train_task: Optional[GeoDLTask] = None
        self.predict_task: Optional[GeoDLTask] = None
        self.sample_task: Optional[GeoDLTask] = None
        self.region_layer: Optional[QgsVectorLayer] = None
        self.model_path = ""
        self.last_result_layers: list[QgsRasterLayer] = []
        self.last_metrics: dict = {}
        self.last_preview_seconds: Optional[float] = None
        self._output_dir = ""
        self._checked_rasters: list[str] = []

        self.palette = ClassPalette(self)
        self.session = LabelSession(self.palette, self)
        self.plot = TrainingPlot(self.plotContainer)
        self.plotLayout.addWidget(self.plot)

        self._setup_widgets()
        self._setup_tools()
        self._connect()
        self.refresh_rasters()
        self._refresh_classes()
        self.restore_state()

    # ------------------------------------------------------------------------------------------------ setup
    def _setup_widgets(self) -> None:
        self.regionLayerCombo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.regionLayerCombo.setAllowEmptyLayer(True)
        self.polygonLayerCombo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.polygonLayerCombo.setAllowEmptyLayer(True)
        self.polygonLayerCombo.setLayer(None)
        self.regionLayerCombo.setLayer(None)
        self.modelTypeCombo.addItem("Pixel DNN (Keras)", "dnn")
        self.modelTypeCombo.addItem("Random forest", "rf")
        self.modelTypeCombo.addItem("U-Net (patches)", "unet")
        self.epochsSpin.setValue(int(settings.get("train_epochs")))
        self.batchSpin.setValue(int(settings.get("train_batch_size")))
        self.modelTypeCombo.currentIndexChanged.connect(self._model_type_changed)
        self._model_type_changed()
        self.predictAreaCombo.addItem("Region", AREA_REGION)
        self.predictAreaCombo.addItem("Raster extent", AREA_RASTER)
        self.predictAreaCombo.addItem("Canvas extent", AREA_CANVAS)
        self.f1Table.setColumnCount(4)
        self.f1Table.setHorizontalHeaderLabels(["Class", "F1", "Precision", "Recall"])
        self.f1Table.verticalHeader().setVisible(False)
        self.cancelTrainButton.setEnabled(False)
        self.cancelPredictButton.setEnabled(False)
        self.ee_panel = None
        if is_importable("ee"):  # the Earth Engine backend is optional
            from .ee_imagery import EECompositePanel

            self.ee_panel = EECompositePanel(self.imageryPage, self.project, self.region_geometry,
                                             lambda: str(self.output_dir()), self._run, self._ee_layer_added,
                                             self._warn)
            self.imageryLayout.addWidget(self.ee_panel)

    def _ee_layer_added(self, layer: QgsRasterLayer) -> None:
        """A downloaded composite becomes one of the chosen rasters."""
        self._checked_rasters.append(layer.id())
        self.refresh_rasters()
        self.show_message(f"Earth Engine composite '{layer.name()}' added and chosen for training.",
                          Qgis.MessageLevel.Success)

    def _setup_tools(self) -> None:
        self.rectangle_tool = self.polygon_tool = self.label_tool = None
        if self.canvas is None:
            for b in (self.drawRectangleButton, self.drawPolygonButton, self.labelToolButton):
                b.setEnabled(False)
            return
        self.rectangle_tool = RegionRectangleTool(self.canvas)
        self.polygon_tool = RegionPolygonTool(self.canvas)
        self.label_tool = LabelPointTool(self.canvas)
        for tool, button in ((self.rectangle_tool, self.drawRectangleButton),
                             (self.polygon_tool, self.drawPolygonButton), (self.label_tool, self.labelToolButton)):
            tool.deactivated.connect(lambda b=button: b.setChecked(False))
        for tool in (self.rectangle_tool, self.polygon_tool):
            tool.regionDrawn.connect(self._region_drawn)
            tool.cancelled.connect(lambda: self.show_message("Region drawing cancelled."))
        self.label_tool.addRequested.connect(self._label_add)
        self.label_tool.removeRequested.connect(self._label_remove)
        self.label_tool.classKeyPressed.connect(self.select_class)
        self.label_tool.undoRequested.connect(self.session.undo_stack.undo)
        self.label_tool.redoRequested.connect(self.session.undo_stack.redo)

    def _connect(self) -> None:
        self.drawRectangleButton.toggled.connect(lambda on: self._toggle_tool(self.rectangle_tool, on))
        self.drawPolygonButton.toggled.connect(lambda on: self._toggle_tool(self.polygon_tool, on))
        self.labelToolButton.toggled.connect(self._toggle_label_tool)
        self.canvasExtentButton.clicked.connect(self.use_canvas_extent)
        self.regionFromLayerButton.clicked.connect(lambda: self.use_region_layer(self.regionLayerCombo.currentLayer(),
                                                                                 self.regionSelectedCheck.isChecked()))
        self.addClassButton.clicked.connect(lambda: self.add_class(self.newClassEdit.text()))
        self.newClassEdit.returnPressed.connect(lambda: self.add_class(self.newClassEdit.text()))
        self.renameClassButton.clicked.connect(self._rename_clicked)
        self.colourClassButton.clicked.connect(self._colour_clicked)
        self.removeClassButton.clicked.connect(lambda: self.remove_class(self.classList.currentRow()))
        self.classUpButton.clicked.connect(lambda: self.move_class(self.classList.currentRow(), -1))
        self.classDownButton.clicked.connect(lambda: self.move_class(self.classList.currentRow(), 1))
        self.undoButton.clicked.connect(self.session.undo_stack.undo)
        self.redoButton.clicked.connect(self.session.undo_stack.redo)
        self.session.undo_stack.canUndoChanged.connect(self.undoButton.setEnabled)
        self.session.undo_stack.canRedoChanged.connect(self.redoButton.setEnabled)
        self.undoButton.setEnabled(False)
        self.redoButton.setEnabled(False)
        self.palette.changed.connect(self._refresh_classes)
        self.session.countsChanged.connect(lambda _c: self._refresh_classes())
        self.polygonLayerCombo.layerChanged.connect(self.classFieldCombo.setLayer)
        self.sampleButton.clicked.connect(self.sample_from_polygons)
        self.rasterTree.itemChanged.connect(self._raster_item_changed)
        self.trainButton.clicked.connect(self.start_training)
        self.cancelTrainButton.clicked.connect(lambda: self._cancel(self.train_task))
        self.previewButton.clicked.connect(self.preview)
        self.predictButton.clicked.connect(lambda: self.predict(self.predictAreaCombo.currentData()))
        self.cancelPredictButton.clicked.connect(lambda: self._cancel(self.predict_task))
        self.modelFileWidget.fileChanged.connect(self._model_file_changed)
        # Kept so that unload disconnects exactly these (never other listeners of the project).
        self._project_connections = [
            (self.project.layersAdded, self._layers_changed), (self.project.layersRemoved, self._layers_changed),
            (self.project.cleared, self._project_cleared), (self.project.writeProject, self._write_project),
            (self.project.readProject, self._read_project)]
        for signal, slot in self._project_connections:
            signal.connect(slot)

    def _layers_changed(self, _layers: Any) -> None:
        self.refresh_rasters()

    def _write_project(self, _doc: Any) -> None:
        self.save_state()

    def _read_project(self, _doc: Any) -> None:
        self.restore_state()

    # ------------------------------------------------------------------------------------------- messages
    def show_message(self, text: str, level: int = Qgis.MessageLevel.Info) -> None:
        """A line in the dock; warnings and errors also go to QGIS's message bar."""
        colour = {Qgis.MessageLevel.Warning: "#a15c00", Qgis.MessageLevel.Critical: "#b00020",
                  Qgis.MessageLevel.Success: "#1b7837"}.get(level, "")
        self.messageLabel.setStyleSheet(f"color: {colour}" if colour else "")
        self.messageLabel.setText(text)
        if level in (Qgis.MessageLevel.Warning, Qgis.MessageLevel.Critical):
            log.warning(text)
        else:
            log.info(text)
        if self.iface is not None and level != Qgis.MessageLevel.Info:
            self.iface.messageBar().pushMessage("GeoDL", text, level, 8)

    def _warn(self, text: str) -> None:
        self.show_message(text, Qgis.MessageLevel.Warning)

    def show_dependencies(self, statuses: Iterable[DependencyStatus]) -> None:
        statuses = list(statuses)
        message = missing_message(statuses)
        found = ", ".join(f"{s.dependency.package} {s.version}" for s in statuses if s.available)
        self.dependencyLabel.setText(f"All Python packages found: {found}." if message is None else message)

    def show_device(self, text: str) -> None:
        self.deviceLabel.setText(f"Training device: {text}")
        self.trainDeviceLabel.setText(f"Training device: {text}")

    # ----------------------------------------------------------------------------------------------- tasks
    def _run(self, task: GeoDLTask) -> GeoDLTask:
        if self._run_task_fn is not None:
            return self._run_task_fn(task)
        self._own_tasks.add(task)
        task.taskCompleted.connect(lambda: self._own_tasks.discard(task))
        task.taskTerminated.connect(lambda: self._own_tasks.discard(task))
        QgsApplication.taskManager().addTask(task)
        return task

    @staticmethod
    def _running(task: Optional[GeoDLTask]) -> bool:
        if task is None:
            return False
        try:
            return task.status() not in (task.TaskStatus.Complete, task.TaskStatus.Terminated)
        except RuntimeError:  # the C++ task is gone
            return False

    def _cancel(self, task: Optional[GeoDLTask]) -> None:
        if self._running(task):
            task.cancel()
            self.show_message(f"Cancelling: {task.description()}…")

    def _guard(self, generation: int, fn: Callable[..., None]) -> Callable[..., None]:
        """Drop a task's result when the project it belongs to was closed meanwhile."""
        def wrapped(*args: Any) -> None:
            if not sip.isdeleted(self) and generation == self._generation:
                fn(*args)
        return wrapped

    def cancel_all(self) -> None:
        for task in (self.train_task, self.predict_task, self.sample_task):
            if self._running(task):
                task.cancel()

    def _project_cleared(self) -> None:
        running = [t for t in (self.train_task, self.predict_task, self.sample_task) if self._running(t)]
        self._generation += 1
        self.cancel_all()
        for tool in (self.rectangle_tool, self.polygon_tool, self.label_tool):
            if tool is not None and self.canvas.mapTool() is tool:
                self.canvas.unsetMapTool(tool)
        self.session.set_layer(None)
        self.palette.set_table(ClassTable([]))
        self.region_layer = None
        self.regionLabel.setText("No region yet.")
        self.model_path = ""
        self.modelFileWidget.setFilePath("")
        self._output_dir = ""
        self.last_result_layers = []
        self._checked_rasters = []
        self._show_accuracy({}, None)
        self.plot.clear()
        if running:
            self._warn("The project was closed: the running GeoDL step was cancelled and nothing was written.")

    # ---------------------------------------------------------------------------------------------- files
    def output_dir(self) -> Path:
        """Where the dock writes (labels, region, samples, models, maps): beside the project when it is
        saved, else the user's last folder, else a temporary folder."""
        if self._output_dir and Path(self._output_dir).is_dir():
            return Path(self._output_dir)
        home = self.project.homePath()
        if home and Path(home).is_dir() and os.access(home, os.W_OK):
            path = Path(home) / "geodl"
        elif settings.get("last_output_dir") and Path(settings.get("last_output_dir")).is_dir():
            path = Path(settings.get("last_output_dir")) / "geodl"
        else:
            path = Path(tempfile.mkdtemp(prefix="geodl-"))
        path.mkdir(parents=True, exist_ok=True)
        self._output_dir = str(path)
        return path

    def set_output_dir(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        self._output_dir = str(path)

    def _unique(self, stem: str, suffix: str) -> str:
        # A new name per run: QGIS may hold the previous file open.
        stamp = f"{time.strftime('%Y%m%d_%H%M%S')}_{time.perf_counter_ns() % 100000}"
        return str(self.output_dir() / f"{stem}_{stamp}{suffix}")

    # --------------------------------------------------------------------------------------------- region
    def _toggle_tool(self, tool: Any, on: bool) -> None:
        if tool is None:
            return
        if on:
            self.canvas.setMapTool(tool)
            self.canvas.setFocus()
        elif self.canvas.mapTool() is tool:
            self.canvas.unsetMapTool(tool)

    def _region_drawn(self, geometry: QgsGeometry) -> None:
        self.set_region(geometry, self.canvas.mapSettings().destinationCrs())
        for tool in (self.rectangle_tool, self.polygon_tool):
            if self.canvas.mapTool() is tool:
                self.canvas.unsetMapTool(tool)

    def use_canvas_extent(self) -> None:
        if self.canvas is None:
            self._warn("No map canvas.")
            return
        self.set_region(QgsGeometry.fromRect(self.canvas.extent()), self.canvas.mapSettings().destinationCrs())

    def use_region_layer(self, layer: Optional[QgsMapLayer], selected_only: bool = False) -> None:
        if not isinstance(layer, QgsVectorLayer) or layer.geometryType() != QgsWkbTypes.GeometryType.PolygonGeometry:
            self._warn("Choose a polygon layer for the region.")
            return
        features = layer.selectedFeatures() if selected_only else list(layer.getFeatures())
        geoms = [f.geometry() for f in features if f.hasGeometry()]
        if not geoms:
            self._warn(f"The layer '{layer.name()}' has no {'selected ' if selected_only else ''}polygon.")
            return
        self.set_region(QgsGeometry.unaryUnion(geoms), layer.crs())

    def set_region(self, geometry: QgsGeometry, crs: QgsCoordinateReferenceSystem) -> None:
        """Keep the region as the one feature of a GeoPackage layer in the project."""
        if geometry is None or geometry.isEmpty():
            self._warn("The region is empty; draw it again.")
            return
        layer = self.region_layer if self._layer_alive(self.region_layer) else None
        if layer is None:
            path = self._unique("region", ".gpkg")
            layer = create_geopackage_layer(path, "region", QgsWkbTypes.Type.MultiPolygon, crs,
                                            QgsFeature().fields(), REGION_LAYER_NAME)
            layer.renderer().symbol().setColor(QColor(0, 0, 0, 0))
            layer.renderer().symbol().symbolLayer(0).setStrokeColor(QColor(220, 30, 30))
            layer.renderer().symbol().symbolLayer(0).setStrokeWidth(0.6)
            self.project.addMapLayer(layer)
            self.region_layer = layer
        geom = QgsGeometry(geometry)
        if crs != layer.crs():
            geom.transform(QgsCoordinateTransform(crs, layer.crs(), self.project))
        geom.convertToMultiType()
        provider = layer.dataProvider()
        provider.deleteFeatures([f.id() for f in layer.getFeatures()])
        feature = QgsFeature(layer.fields())
        feature.setGeometry(geom)
        provider.addFeatures([feature])
        layer.updateExtents()
        layer.triggerRepaint()
        box = geom.boundingBox()
        self.regionLabel.setText(f"Region: {box.width():.6g} × {box.height():.6g} map units "
                                 f"({layer.crs().authid() or 'custom CRS'}), layer '{layer.name()}'.")
        self.show_message("Region set.", Qgis.MessageLevel.Success)

    def _layer_alive(self, layer: Optional[QgsMapLayer]) -> bool:
        try:
            return layer is not None and layer.isValid() and self.project.mapLayer(layer.id()) is not None
        except RuntimeError:
            return False

    def region_geometry(self, crs: QgsCoordinateReferenceSystem) -> Optional[QgsGeometry]:
        if not self._layer_alive(self.region_layer):
            return None
        geoms = [f.geometry() for f in self.region_layer.getFeatures() if f.hasGeometry()]
        if not geoms:
            return None
        geom = QgsGeometry.unaryUnion(geoms)
        if crs != self.region_layer.crs():
            geom.transform(QgsCoordinateTransform(self.region_layer.crs(), crs, self.project))
        return geom

    # --------------------------------------------------------------------------------------------- classes
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
        self.labelsLayerLabel.setText(f"Labels layer '{layer.name()}': {total} points in {layer_file_path(layer)[0]}"
                                      if layer is not None else
                                      "No labels layer yet: it is created when you start labelling.")

    def active_class_id(self) -> Optional[int]:
        row = self.classList.currentRow()
        return self.palette.at(row).id if 0 <= row < len(self.palette) else None

    def select_class(self, row: int) -> None:
        if 0 <= row < len(self.palette):
            self.classList.setCurrentRow(row)
            self.show_message(f"Labelling '{self.palette.at(row).name}'.")

    def add_class(self, name: str, color: Optional[str] = None) -> None:
        try:
            self.palette.add(name, color)
        except GeoDLError as exc:
            self._warn(str(exc))
            return
        self.newClassEdit.clear()
        self.classList.setCurrentRow(len(self.palette) - 1)

    def rename_class(self, row: int, name: str) -> None:
        if not 0 <= row < len(self.palette):
            self._warn("Select the class to rename.")
            return
        try:
            self.palette.rename(row, name)
        except GeoDLError as exc:
            self._warn(str(exc))
            return
        self.session.rename_class_points(self.palette.at(row).id)

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
            self.palette.recolour(row, QColor(color).name())

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
        self.palette.remove(row)

    def move_class(self, row: int, offset: int) -> None:
        if 0 <= row < len(self.palette):
            self.classList.setCurrentRow(self.palette.move(row, offset))

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
            from ..core.labels import read_labels
            from ..core.sampling import sample_points_in_polygons

            polygons = read_labels(path, field, layer=name, target_crs_wkt=crs_wkt)
            return sample_points_in_polygons(polygons, per_class, min_distance, seed=0, progress=progress)

        generation = self._generation
        self.sample_task = self._run(GeoDLTask(
            "GeoDL: sample points in polygons", work, on_done=self._guard(generation, self._sampled),
            on_error=self._guard(generation, self._warn),
            on_cancelled=self._guard(generation, lambda: self.show_message("Sampling cancelled."))))
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

    # ---------------------------------------------------------------------------------------------- imagery
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

    # -------------------------------------------------------------------------------------------- training
    def _hidden_units(self) -> tuple[int, ...]:
        text = self.hiddenUnitsEdit.text().replace(";", ",")
        try:
            units = tuple(int(t) for t in text.split(",") if t.strip())
        except ValueError:
            units = ()
        if not units or min(units) < 1:
            raise GeoDLError(f"Hidden units '{text}' are not valid: give positive whole numbers, e.g. 64 or 128,64.")
        return units

    def check_training_input(self) -> tuple[list[str], str, ClassTable]:
        """(raster paths, labels path, classes), or GeoDLError naming what is missing."""
        rasters = self.selected_rasters()
        if not rasters:
            raise GeoDLError("No raster chosen. Tick the imagery in the Imagery tab.")
        if self.session.layer is None or not self._layer_alive(self.session.layer):
            raise GeoDLError("No labels yet. Add classes and label points in the Labels tab.")
        counts = self.session.counts()
        if sum(counts.values()) == 0:
            raise GeoDLError("No labels yet: the labels layer holds no point. Label some points in the Labels tab.")
        empty = [c.name for c in self.palette if counts.get(c.id, 0) == 0]
        if empty:
            raise GeoDLError(f"Class(es) {', '.join(repr(n) for n in empty)} have no points: label them or remove "
                             "them from the palette.")
        if len(self.palette) < 2:
            raise GeoDLError("A classifier needs at least two classes; add another class and label it.")
        return [r.source() for r in rasters], self.session.file_path() or "", self.palette.table()

    def start_training(self) -> Optional[GeoDLTask]:
        if self._running(self.train_task):
            self._warn("Training is already running; wait for it to finish or press Cancel.")
            return None
        try:
            rasters, labels_path, classes = self.check_training_input()
            hidden = self._hidden_units()
        except GeoDLError as exc:
            self._warn(str(exc))
            return None
        samples = self._unique("samples", ".tfrecord")
        model = self._unique("model", ".geodl")
        png = model[:-len(".geodl")] + "_confusion.png"
        options = {"model_type": self.modelTypeCombo.currentData(), "epochs": self.epochsSpin.value(),
                   "batch_size": self.batchSpin.value(), "hidden_units": hidden}
        # A U-Net learns from image patches around the points (only the centre pixel labelled).
        patch = self.patchSizeSpin.value() | 1 if options["model_type"] == "unet" else 1
        settings.set_value("train_epochs", options["epochs"])
        settings.set_value("train_batch_size", options["batch_size"])

        def work(progress):
            from ..core.label_training import TrainFromLabelsParams
            from ..core.worker import call_in_worker

            # Labels, samples, training and the plot all run in the worker process (see core/worker.py):
            # QGIS's process only waits on a pipe, so nothing here can hold the GIL the map canvas needs.
            params = TrainFromLabelsParams(rasters=rasters, labels=labels_path, class_field=CLASS_NAME_FIELD,
                                           samples=samples, train={"output": model, **options},
                                           classes=classes.to_json(), patch_size=patch, confusion_png=png)
            result = call_in_worker("train_from_labels", params, progress)
            return result, (png if result.metrics else None)

        def cleanup() -> None:
            for p in (samples, samples + ".json"):
                Path(p).unlink(missing_ok=True)

        generation = self._generation
        task = GeoDLTask("GeoDL: train a model", work,
                         on_done=self._guard(generation, self._trained),
                         on_error=self._guard(generation, self._train_failed),
                         on_cancelled=lambda: (cleanup(), self._guard(generation, self._train_cancelled)()))
        task.metricsReported.connect(self.plot.add_epoch)
        task.progressChanged.connect(lambda p: self.trainProgress.setValue(int(p)))
        task.messageReported.connect(self.trainMessageLabel.setText)
        self.plot.clear()
        self.trainProgress.setValue(0)
        self.trainButton.setEnabled(False)
        self.cancelTrainButton.setEnabled(True)
        self.train_task = self._run(task)
        self.show_message("Training…")
        return task

    def _model_type_changed(self, *_args) -> None:
        unet = self.modelTypeCombo.currentData() == "unet"
        self.patchSizeSpin.setEnabled(unet)
        self.patchSizeLabel.setEnabled(unet)
        self.hiddenUnitsEdit.setEnabled(self.modelTypeCombo.currentData() == "dnn")

    def _training_ended(self) -> None:
        self.trainButton.setEnabled(True)
        self.cancelTrainButton.setEnabled(False)

    def _trained(self, outcome: tuple) -> None:
        result, png = outcome
        self._training_ended()
        self.trainProgress.setValue(100)
        self.model_path = result.model_path
        self.modelFileWidget.setFilePath(result.model_path)
        self._show_accuracy(result.metrics, png)
        for w in result.warnings:
            self._warn(w)
        oa = result.metrics.get("overall_accuracy")
        self.show_message(f"Model written to {result.model_path}" + (f" (held-out accuracy {oa:.3f})." if oa is not None
                                                                     else "."), Qgis.MessageLevel.Success)

    def _train_failed(self, message: str) -> None:
        self._training_ended()
        self.show_message(message, Qgis.MessageLevel.Critical)

    def _train_cancelled(self) -> None:
        self._training_ended()
        self.trainProgress.setValue(0)
        self.show_message("Training cancelled; no model was written.", Qgis.MessageLevel.Warning)

    def _model_file_changed(self, path: str) -> None:
        self.model_path = path

    def _show_accuracy(self, metrics: dict, png: Optional[str]) -> None:
        self.last_metrics = metrics or {}
        self.f1Table.setRowCount(0)
        self.confusionLabel.clear()
        if not metrics:
            self.accuracyLabel.setText("Train a model to see its accuracy.")
            return
        self.accuracyLabel.setText(f"Overall accuracy {metrics['overall_accuracy']:.3f} · kappa {metrics['kappa']:.3f}"
                                   f" · {metrics.get('n_samples', 0)} held-out samples"
                                   f" ({metrics.get('split', '')} split)")
        per_class = metrics.get("per_class", {})
        self.f1Table.setRowCount(len(per_class))
        for r, (name, v) in enumerate(per_class.items()):
            for c, text in enumerate((name, f"{v['f1']:.3f}", f"{v['precision']:.3f}", f"{v['recall']:.3f}")):
                self.f1Table.setItem(r, c, QTableWidgetItem(text))
        self.f1Table.resizeColumnsToContents()
        if png and Path(png).exists():
            pixmap = QPixmap(png)
            self.confusionLabel.setPixmap(pixmap.scaledToWidth(min(320, pixmap.width()),
                                                               Qt.TransformationMode.FastTransformation))

    # --------------------------------------------------------------------------------------------- mapping
    def _extent_in(self, area: str, raster: QgsRasterLayer) -> Optional[QgsRectangle]:
        """The area to classify in the raster's CRS; GeoDLError when there is none or it misses the raster."""
        crs = raster.crs()
        if area == AREA_RASTER:
            return None
        if area == AREA_REGION:
            geom = self.region_geometry(crs)
            if geom is None:
                raise GeoDLError("No region yet. Draw one in the Region tab, or classify the canvas or raster extent.")
            rect = geom.boundingBox()
        elif area == AREA_CANVAS:
            if self.canvas is None:
                raise GeoDLError("No map canvas.")
            rect = QgsCoordinateTransform(self.canvas.mapSettings().destinationCrs(), crs,
                                          self.project).transformBoundingBox(self.canvas.extent())
        else:
            raise GeoDLError(f"Unknown area '{area}'.")
        if not rect.intersects(raster.extent()):
            what = {AREA_REGION: "The region", AREA_CANVAS: "The canvas view"}[area]
            raise GeoDLError(f"{what} lies outside the raster '{raster.name()}'. Pick an area inside the imagery.")
        return rect

    def _check_map_input(self) -> tuple[list[QgsRasterLayer], str]:
        rasters = self.selected_rasters()
        if not rasters:
            raise GeoDLError("No raster chosen. Tick the imagery in the Imagery tab.")
        model = self.modelFileWidget.filePath() or self.model_path
        if not model or not Path(model).is_file():
            raise GeoDLError("No model file. Train a model (Train tab) or choose a .geodl file.")
        return rasters, model

    def _map_request(self, area: str) -> Optional[tuple[list[QgsRasterLayer], str, Any]]:
        """(rasters, model, extent) for a classification of ``area``, or None after telling the user why not
        (one already running, no raster, no model, region outside the imagery)."""
        if self._running(self.predict_task):
            self._warn("A classification is already running; wait for it or press Cancel.")
            return None
        try:
            rasters, model = self._check_map_input()
            return rasters, model, self._extent_in(area, rasters[0])
        except GeoDLError as exc:
            self._warn(str(exc))
            return None

    def predict(self, area: str = AREA_REGION) -> Optional[GeoDLTask]:
        checked = self._map_request(area)
        if checked is None:
            return None
        rasters, model, rect = checked
        paths = [r.source() for r in rasters]
        output, confidence = self._unique("classes", ".tif"), self._unique("confidence", ".tif")
        extent = None if rect is None else (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())

        def work(progress):
            from ..core.prediction import PredictParams
            from ..core.worker import call_in_worker

            params = PredictParams(rasters=paths, model=model, output=output, confidence_output=confidence,
                                   extent=extent)
            params.validate()
            return call_in_worker("predict_raster", params, progress), model_classes(model)

        return self._start_map_task("GeoDL: classify", work, lambda out: self._mapped(out, "GeoDL map"))

    def preview(self) -> Optional[GeoDLTask]:
        """Classify the canvas view at screen resolution (fast; replaces the previous preview)."""
        checked = self._map_request(AREA_CANVAS)
        if checked is None:
            return None
        rasters, model, rect = checked
        size = self.canvas.mapSettings().outputSize()
        paths = [r.source() for r in rasters]
        extent = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        out_dir = self._unique("preview", "")
        started = time.perf_counter()

        def work(progress):
            from .preview import preview_canvas

            return preview_canvas(paths, model, extent, size.width(), size.height(), out_dir, progress,
                                  in_worker=True), model_classes(model)

        def done(out: tuple) -> None:
            self._mapped(out, PREVIEW_GROUP, replace=True)
            self.last_preview_seconds = time.perf_counter() - started
            self.show_message(f"Preview of the view ({out[0].pixels / 1e6:.2f} Mpx) in "
                              f"{self.last_preview_seconds:.2f} s.",
                              Qgis.MessageLevel.Success)

        return self._start_map_task("GeoDL: preview the view", work, done)

    def _start_map_task(self, description: str, work: Callable, done: Callable[[Any], None]) -> GeoDLTask:
        generation = self._generation

        def ended() -> None:
            self.predictButton.setEnabled(True)
            self.previewButton.setEnabled(True)
            self.cancelPredictButton.setEnabled(False)

        def on_done(out: Any) -> None:
            ended()
            self.predictProgress.setValue(100)
            done(out)

        def on_error(message: str) -> None:
            ended()
            self.show_message(message, Qgis.MessageLevel.Critical)

        def on_cancelled() -> None:
            ended()
            self.predictProgress.setValue(0)
            self.show_message("Classification cancelled; nothing was written.", Qgis.MessageLevel.Warning)

        task = GeoDLTask(description, work, on_done=self._guard(generation, on_done),
                         on_error=self._guard(generation, on_error), on_cancelled=self._guard(generation, on_cancelled))
        task.progressChanged.connect(lambda p: self.predictProgress.setValue(int(p)))
        self.predictProgress.setValue(0)
        self.predictButton.setEnabled(False)
        self.previewButton.setEnabled(False)
        self.cancelPredictButton.setEnabled(True)
        self.predict_task = self._run(task)
        self.show_message(f"{description.removeprefix('GeoDL: ').capitalize()}…")
        return task

    def _mapped(self, out: tuple, group: str, replace: bool = False) -> None:
        result, classes = out
        root = self.project.layerTreeRoot()
        if replace:
            old = root.findGroup(group)
            if old is not None:
                self.project.removeMapLayers([layer.layerId() for layer in old.findLayers()])
                root.removeChildNode(old)
        try:
            layers = add_result_layers(result.output, classes, result.confidence_output, group, self.project)
        except GeoDLError as exc:
            self.show_message(str(exc), Qgis.MessageLevel.Critical)
            return
        self.last_result_layers = layers
        self.refresh_rasters()
        if not replace:  # a preview is coarse on purpose: its pixel-size warnings stay in the log
            for w in result.warnings:
                self._warn(w)
            self.show_message(f"Map added: {result.pixels / 1e6:.2f} Mpx in {result.seconds:.1f} s.",
                              Qgis.MessageLevel.Success)

    # ----------------------------------------------------------------------------------------------- state
    def state(self) -> project_state.DockState:
        return project_state.DockState(
            classes=self.palette.table().to_json(), active_class=self.classList.currentRow(),
            region_layer_id=self.region_layer.id() if self._layer_alive(self.region_layer) else "",
            labels_layer_id=self.session.layer.id() if self._layer_alive(self.session.layer) else "",
            raster_layer_ids=list(self._checked_rasters), model_type=self.modelTypeCombo.currentData() or "dnn",
            epochs=self.epochsSpin.value(), batch_size=self.batchSpin.value(), hidden_units=self.hiddenUnitsEdit.text(),
            model_path=self.modelFileWidget.filePath() or self.model_path, output_dir=self._output_dir,
            predict_area=self.predictAreaCombo.currentData() or AREA_REGION)

    def save_state(self) -> None:
        project_state.save(self.state(), self.project)

    def restore_state(self) -> None:
        state = project_state.load(self.project)
        if state is None:
            return
        try:
            self.palette.set_table(ClassTable.from_json(state.classes))
        except GeoDLError as exc:
            self._warn(f"The project's GeoDL classes could not be restored: {exc}")
        labels = self.project.mapLayer(state.labels_layer_id) if state.labels_layer_id else None
        if isinstance(labels, QgsVectorLayer):
            try:
                self.session.set_layer(labels)
            except GeoDLError as exc:
                self._warn(str(exc))
        region = self.project.mapLayer(state.region_layer_id) if state.region_layer_id else None
        self.region_layer = region if isinstance(region, QgsVectorLayer) else None
        if self.region_layer is not None:
            self.regionLabel.setText(f"Region: layer '{self.region_layer.name()}'.")
        self._checked_rasters = [i for i in state.raster_layer_ids if self.project.mapLayer(i) is not None]
        self.refresh_rasters()
        index = self.modelTypeCombo.findData(state.model_type)
        if index >= 0:
            self.modelTypeCombo.setCurrentIndex(index)
        self.epochsSpin.setValue(state.epochs)
        self.batchSpin.setValue(state.batch_size)
        self.hiddenUnitsEdit.setText(state.hidden_units)
        self.model_path = state.model_path
        self.modelFileWidget.setFilePath(state.model_path)
        if state.output_dir and Path(state.output_dir).is_dir():
            self._output_dir = state.output_dir
        index = self.predictAreaCombo.findData(state.predict_area)
        if index >= 0:
            self.predictAreaCombo.setCurrentIndex(index)
        if 0 <= state.active_class < len(self.palette):
            self.classList.setCurrentRow(state.active_class)

    # ------------------------------------------------------------------------------------------- teardown
    def closeEvent(self, event: Any) -> None:  # noqa: N802
        for tool in (self.rectangle_tool, self.polygon_tool, self.label_tool):
            if tool is not None and self.canvas is not None and self.canvas.mapTool() is tool:
                self.canvas.unsetMapTool(tool)
        super().closeEvent(event)

    def disconnect_project(self) -> None:
        """Called by the plugin's unload: stop listening to the project and cancel running steps."""
        self.cancel_all()
        for tool in (self.rectangle_tool, self.polygon_tool, self.label_tool):
            if tool is not None and self.canvas is not None and self.canvas.mapTool() is tool:
                self.canvas.unsetMapTool(tool)
        for signal, slot in self._project_connections:
            try:
                signal.disconnect(slot)
            except TypeError:
                pass
        self._project_connections = []
