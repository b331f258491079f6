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

from qgis.core import Qgis, QgsMapLayerProxyModel, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt import sip, uic
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QDockWidget, QWidget

from .. import settings

# The core modules a task uses in this process (sampling inside labelled polygons; training and prediction
# run in the worker process). Imported with the dock, at plugin load, because a first import inside a task's
# thread holds the interpreter lock and stalls the map for a moment.
from ..core.data import labels as _labels  # noqa: F401
from ..core.data import point_sampling as _sampling  # noqa: F401
from ..core.data.classes import ClassTable
from ..core.evaluate.reports import AccuracyReport, RegressionReport
from ..core.families import FAMILIES
from ..core.models.family import TilingParams
from ..core.runtime.dependencies import DependencyStatus, check_dependencies, is_importable, missing_message
from ..core.runtime.errors import GeoDLError
from ..core.runtime.typed_json import to_jsonable
from ..paths import ui_file
from ..tasks import GeoDLTask, TaskKeeper
from . import project_state
from .class_palette import ClassPalette
from .dock_imagery import ImageryStep
from .dock_labels import LabelsStep
from .dock_map import AREA_CANVAS, AREA_RASTER, AREA_REGION, PREVIEW_GROUP, MapStep, model_classes  # noqa: F401 - re-exported
from .dock_region import REGION_LAYER_NAME, RegionStep  # noqa: F401 - re-exported
from .dock_training import TrainingStep
from .labelling import LabelSession
from .map_tools import LabelPointTool, RegionPolygonTool, RegionRectangleTool
from .options_form import OptionsForm
from .training_plot import TrainingPlot

log = logging.getLogger("geodl")

DOCK_OBJECT_NAME = "GeoDLDock"  # QGIS saves and restores dock state by object name

_FORM, _ = uic.loadUiType(str(ui_file("dock.ui")))


class GeoDLDock(
    RegionStep,
    LabelsStep,
    ImageryStep,
    TrainingStep,
    MapStep,  # the steps, one module each
    QDockWidget,
    _FORM,
):  # type: ignore[valid-type, misc]
    """``run_task`` is the plugin's (it keeps the task alive); ``canvas`` defaults to iface's map canvas."""

    mapFinished = pyqtSignal(object)  # PredictResult of a map or preview, once its layers are added
    modelTrained = pyqtSignal(object)  # TrainResult, once the dock shows it

    def __init__(
        self,
        parent: QWidget | None = None,
        iface: Any = None,
        run_task: Optional[Callable[[GeoDLTask], GeoDLTask]] = None,
        project: Optional[QgsProject] = None,
        canvas: Any = None,
    ) -> None:
        super().__init__(parent)
        self.setupUi(self)
        self.setObjectName(DOCK_OBJECT_NAME)
        self.iface = iface
        self.canvas = canvas if canvas is not None else (iface.mapCanvas() if iface is not None else None)
        self.project = project or QgsProject.instance()
        self._run_task_fn = run_task or TaskKeeper().run
        self._generation = 0  # bumped when the project closes: late results of old tasks are dropped
        self.train_task: Optional[GeoDLTask] = None
        self.predict_task: Optional[GeoDLTask] = None
        self.sample_task: Optional[GeoDLTask] = None
        self.region_layer: Optional[QgsVectorLayer] = None
        self.model_path = ""
        self.last_result_layers: list[QgsRasterLayer] = []
        self.last_prediction: Any = None  # the last PredictResult (full map or preview)
        self.last_map_path = ""  # the last full classification (not a preview): what goes to Earth Engine
        self.last_metrics: Optional[AccuracyReport | RegressionReport] = None
        self.last_preview_seconds: Optional[float] = None
        self._output_dir = ""
        self._checked_rasters: list[str] = []
        self.write_uncertainty = True  # maps and previews also write the uncertainty (for Suggest points)
        self.show_uncertainty_layers = False  # ... and add them to the map group

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
        for spec in FAMILIES.values():
            self.modelTypeCombo.addItem(spec.label, spec.family.value)
        # every option of the chosen family, from its dataclass; tiling options for the convolutional ones
        self.optionsForm = OptionsForm("Model options", self.trainPage)
        self.trainLayout.insertWidget(1, self.optionsForm)
        self.tilingForm = OptionsForm("Tiles (convolutional models)", self.mapPage)
        self.tilingForm.set_options_type(TilingParams)
        self.mapLayout.insertWidget(1, self.tilingForm)
        self.epochsSpin.setValue(int(settings.get("train_epochs")))
        self.batchSpin.setValue(int(settings.get("train_batch_size")))
        self._setup_target_group()
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
        self._setup_series_widgets()
        self._setup_summary_panel()
        self.ee_panel = self.ee_upload_panel = self.ee_classify_panel = None
        if is_importable("ee"):  # the Earth Engine backend is optional
            from .ee_imagery import EECompositePanel

            self.ee_panel = EECompositePanel(
                self.imageryPage,
                self.project,
                self.region_geometry,
                lambda: str(self.output_dir()),
                self._run,
                self._ee_layer_added,
                self._warn,
            )
            self.imageryLayout.addWidget(self.ee_panel)
            from .ee_upload import EEUploadPanel

            self.ee_upload_panel = EEUploadPanel(
                self.mapPage,
                lambda: self.last_map_path or None,
                self._run,
                self._warn,
                lambda text: self.show_message(text, Qgis.MessageLevel.Success),
            )
            self.mapLayout.addWidget(self.ee_upload_panel)
            from .ee_classify import EEClassifyPanel, imagery_composite

            model = lambda: self.modelFileWidget.filePath() or self.model_path or None  # noqa: E731
            self.ee_classify_panel = EEClassifyPanel(
                self.mapPage,
                model,
                lambda: imagery_composite(self.ee_panel, model()),
                self._run,
                lambda layer: self.project.addMapLayer(layer),
                self._warn,
                lambda text: self.show_message(text, Qgis.MessageLevel.Success),
            )
            self.mapLayout.addWidget(self.ee_classify_panel)
        from .runtime_panel import RuntimePanel

        self.runtime_panel = RuntimePanel(self.statusPage, self._run, self._runtime_changed, self.show_message, self._warn)
        self.statusLayout.insertWidget(2, self.runtime_panel)  # under the package and device lines
        self._setup_active_learning()

    def _setup_active_learning(self) -> None:
        from .active_learning_panel import ActiveLearningPanel, PanelHooks
        from .model_export import OnnxExportButton

        def region_wkt(crs: Any) -> Optional[str]:
            geom = self.region_geometry(crs) if self.predictAreaCombo.currentData() == AREA_REGION else None
            return geom.asWkt() if geom is not None else None

        hooks = PanelHooks(
            retrain=self.start_training,
            remap=lambda: self.predict(self.predictAreaCombo.currentData()),
            ensure_labels_layer=self.ensure_labels_layer,
            region_wkt=region_wkt,
            output_path=self._unique,
            show_uncertainty=lambda on: setattr(self, "show_uncertainty_layers", bool(on)),
        )
        self.active_learning = ActiveLearningPanel(
            self.mapPage, self.canvas, self.project, self._run, self.show_message, self.session, hooks
        )
        self.mapFinished.connect(self.active_learning.map_finished)
        self.modelTrained.connect(self.active_learning.model_trained)
        self.mapLayout.addWidget(self.active_learning)
        self.onnx_button = OnnxExportButton(
            self.mapPage, lambda: self.modelFileWidget.filePath() or self.model_path, self._run, self.show_message
        )
        self.mapLayout.addWidget(self.onnx_button)

    def _ee_layer_added(self, layer: QgsRasterLayer) -> None:
        """A downloaded composite becomes one of the chosen rasters."""
        self._checked_rasters.append(layer.id())
        self.refresh_rasters()
        self.show_message(f"Earth Engine composite '{layer.name()}' added and chosen for training.", Qgis.MessageLevel.Success)

    def _setup_tools(self) -> None:
        self.rectangle_tool = self.polygon_tool = self.label_tool = None
        if self.canvas is None:
            for b in (self.drawRectangleButton, self.drawPolygonButton, self.labelToolButton):
                b.setEnabled(False)
            return
        self.rectangle_tool = RegionRectangleTool(self.canvas)
        self.polygon_tool = RegionPolygonTool(self.canvas)
        self.label_tool = LabelPointTool(self.canvas)
        for tool, button in (
            (self.rectangle_tool, self.drawRectangleButton),
            (self.polygon_tool, self.drawPolygonButton),
            (self.label_tool, self.labelToolButton),
        ):
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
        self.regionFromLayerButton.clicked.connect(
            lambda: self.use_region_layer(self.regionLayerCombo.currentLayer(), self.regionSelectedCheck.isChecked())
        )
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
            (self.project.layersAdded, self._layers_changed),
            (self.project.layersRemoved, self._layers_changed),
            (self.project.cleared, self._project_cleared),
            (self.project.writeProject, self._write_project),
            (self.project.readProject, self._read_project),
        ]
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
        colour = {Qgis.MessageLevel.Warning: "#a15c00", Qgis.MessageLevel.Critical: "#b00020", Qgis.MessageLevel.Success: "#1b7837"}.get(
            level, ""
        )
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

    def _runtime_changed(self, device: str) -> None:
        """The ML runtime was set up or removed: the device and package lines follow it."""
        self.show_device(device)
        self.show_dependencies(check_dependencies())

    def show_device(self, text: str) -> None:
        self.deviceLabel.setText(f"Training device: {text}")
        self.trainDeviceLabel.setText(f"Training device: {text}")

    # ----------------------------------------------------------------------------------------------- tasks
    def _run(self, task: GeoDLTask) -> GeoDLTask:
        return self._run_task_fn(task)

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
        for panel in (self.ee_panel, self.ee_upload_panel, self.ee_classify_panel, self.summary_panel):
            if panel is not None and self._running(panel.task):
                panel.task.cancel()

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
        self.last_map_path = ""
        self._checked_rasters = []
        self._show_accuracy(None, None)
        self.plot.clear()
        self.active_learning.reset()
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

    # ----------------------------------------------------------------------------------------------- state
    def state(self) -> project_state.DockState:
        return project_state.DockState(
            classes=self.palette.table().to_json(),
            active_class=self.classList.currentRow(),
            region_layer_id=self.region_layer.id() if self._layer_alive(self.region_layer) else "",
            labels_layer_id=self.session.layer.id() if self._layer_alive(self.session.layer) else "",
            raster_layer_ids=list(self._checked_rasters),
            family=self.chosen_family().family.value,
            options=self._form_values(self.optionsForm),
            tiling=self._form_values(self.tilingForm),
            epochs=self.epochsSpin.value(),
            batch_size=self.batchSpin.value(),
            model_path=self.modelFileWidget.filePath() or self.model_path,
            output_dir=self._output_dir,
            predict_area=self.predictAreaCombo.currentData() or AREA_REGION,
        )

    @staticmethod
    def _form_values(form: OptionsForm) -> dict:
        try:
            return to_jsonable(form.values())
        except GeoDLError:
            return {}  # not valid yet: the project keeps the defaults

    def tiling_options(self) -> TilingParams:
        return self.tilingForm.values()

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
        index = self.modelTypeCombo.findData(state.family)
        if index >= 0:
            self.modelTypeCombo.setCurrentIndex(index)
        self.optionsForm.set_values(state.options)
        self.tilingForm.set_values(state.tiling)
        self.epochsSpin.setValue(state.epochs)
        self.batchSpin.setValue(state.batch_size)
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
        self.active_learning.stop()
        for tool in (self.rectangle_tool, self.polygon_tool, self.label_tool):
            if tool is not None and self.canvas is not None and self.canvas.mapTool() is tool:
                self.canvas.unsetMapTool(tool)
        for signal, slot in self._project_connections:
            try:
                signal.disconnect(slot)
            except TypeError:
                pass
        self._project_connections = []
