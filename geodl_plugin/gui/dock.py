"""The GeoDL dock: Region → Labels → Imagery → Train → Map (and Status), one panel per step.

The dock only composes: ``ui/dock.ui`` holds the tabs and the message line; each step is a panel module that
owns its widgets and its own ``ui/`` form (``region_panel``, ``labels_panel``, ``imagery_panel``,
``training_panel``, ``map_panel``, ``status_panel``). The dock makes what the steps share — the
:class:`DockContext` (project, canvas, task runner, messages, output folder), the :class:`SharedState` (region,
rasters, model file, last map) and the labelling session with its class palette — hands it to each panel, and
wires the panels that join steps (accuracy, active learning, Earth Engine, ONNX export) with signals and
callables. No step panel imports another.

Long work runs in :class:`GeoDLTask` (the same core calls the Processing algorithms make), never on the main
thread; the tasks' callbacks apply results, on the main thread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from qgis.core import Qgis, QgsCoordinateReferenceSystem, QgsProject, QgsRasterLayer
from qgis.PyQt.QtWidgets import QDockWidget, QLabel, QTabWidget, QVBoxLayout, QWidget

# The core modules a task uses in this process (sampling inside labelled polygons; training and prediction
# run in the worker process). Imported with the dock, at plugin load, because a first import inside a task's
# thread holds the interpreter lock and stalls the map for a moment.
from ..core.data import labels as _labels  # noqa: F401
from ..core.data import point_sampling as _sampling  # noqa: F401
from ..core.runtime.dependencies import DependencyStatus, is_importable
from ..tasks import GeoDLTask, TaskKeeper, is_running
from . import project_state
from .accuracy_panel import AccuracyPanel
from .active_learning_panel import ActiveLearningPanel, PanelHooks
from .class_palette import ClassPalette
from .dock_context import DockContext
from .forms import load_form
from .imagery_panel import ImageryPanel
from .labelling import LabelSession
from .labels_panel import LabelsPanel
from .map_panel import AREA_REGION, MapPanel
from .model_export import OnnxExportButton
from .region_panel import RegionPanel
from .shared_state import SharedState
from .status_panel import StatusPanel
from .step_panel import StepPanel
from .training_panel import TrainingPanel

if TYPE_CHECKING:
    from .ee_classify import EEClassifyPanel
    from .ee_imagery import EECompositePanel
    from .ee_upload import EEUploadPanel

log = logging.getLogger("geodl")

DOCK_OBJECT_NAME = "GeoDLDock"  # QGIS saves and restores dock state by object name


class GeoDLDock(QDockWidget):
    """``run_task`` is the plugin's (its TaskKeeper keeps each task alive); ``canvas`` defaults to iface's."""

    # ui/dock.ui
    steps: QTabWidget
    regionPage: QWidget
    labelsPage: QWidget
    imageryPage: QWidget
    trainPage: QWidget
    mapPage: QWidget
    statusPage: QWidget
    regionPageLayout: QVBoxLayout
    labelsPageLayout: QVBoxLayout
    imageryPageLayout: QVBoxLayout
    trainPageLayout: QVBoxLayout
    mapPageLayout: QVBoxLayout
    statusPageLayout: QVBoxLayout
    messageLabel: QLabel

    def __init__(
        self,
        parent: Optional[QWidget] = None,
        iface: Any = None,
        run_task: Optional[Callable[[GeoDLTask], GeoDLTask]] = None,
        project: Optional[QgsProject] = None,
        canvas: Any = None,
    ) -> None:
        super().__init__(parent)
        load_form(self, "dock.ui")
        self.setObjectName(DOCK_OBJECT_NAME)
        self.iface = iface
        self.project = project or QgsProject.instance()
        canvas = canvas if canvas is not None else (iface.mapCanvas() if iface is not None else None)
        self.context = DockContext(self.project, canvas, run_task or TaskKeeper().run, self.show_message)
        self.shared = SharedState(self.project, self)
        self.palette = ClassPalette(self)
        self.session = LabelSession(self.palette, self)
        self._build_steps()
        self._build_map_sections()
        self._build_earth_engine()
        self._wire()
        self.restore_state()

    # ------------------------------------------------------------------------------------------ composition
    def _build_steps(self) -> None:
        context, shared = self.context, self.shared
        self.region = RegionPanel(context, shared)
        self.labels = LabelsPanel(context, shared, self.session)
        self.imagery = ImageryPanel(context, shared)
        self.training = TrainingPanel(context, shared, self.session)
        # Active learning joins three steps: it retrains, maps again and labels; the Map step writes the
        # uncertainty rasters it asks for.
        hooks = PanelHooks(
            retrain=lambda: self.training.start_training(),
            remap=lambda: self.mapping.predict(self.mapping.area()),
            ensure_labels_layer=lambda: self.labels.ensure_labels_layer(),
            region_wkt=self._region_wkt,
            output_path=context.unique,
            show_uncertainty=lambda on: self.mapping.set_show_uncertainty_layers(on),
        )
        self.active_learning = ActiveLearningPanel(
            None, context.canvas, self.project, context.run_task, self.show_message, self.session, hooks
        )
        self.mapping = MapPanel(context, shared, self.active_learning.wanted_measures)
        self.status = StatusPanel(context)
        for layout, panel in (
            (self.regionPageLayout, self.region),
            (self.labelsPageLayout, self.labels),
            (self.imageryPageLayout, self.imagery),
            (self.trainPageLayout, self.training),
            (self.mapPageLayout, self.mapping),
            (self.statusPageLayout, self.status),
        ):
            layout.addWidget(panel)

    def step_panels(self) -> list[StepPanel]:
        return [self.region, self.labels, self.imagery, self.training, self.mapping, self.status]

    def _build_map_sections(self) -> None:
        """Under the Map step: the model's accuracy (from the Train step), then room; below, the Earth Engine
        panels (when available), active learning and the ONNX export."""
        self.accuracy = AccuracyPanel()
        self.mapPageLayout.addWidget(self.accuracy)
        self.mapPageLayout.addStretch()
        self.onnx_button = OnnxExportButton(None, self.mapping.model_file, self.context.run_task, self.show_message)

    def _build_earth_engine(self) -> None:
        self.ee_panel: Optional[EECompositePanel] = None
        self.ee_upload_panel: Optional[EEUploadPanel] = None
        self.ee_classify_panel: Optional[EEClassifyPanel] = None
        if is_importable("ee"):  # the Earth Engine backend is optional
            from .ee_classify import EEClassifyPanel, imagery_composite
            from .ee_imagery import EECompositePanel
            from .ee_upload import EEUploadPanel

            context = self.context
            ee_panel = EECompositePanel(
                None,
                self.project,
                self.shared.region_geometry,
                lambda: str(context.files.output_dir()),
                context.run_task,
                self._ee_layer_added,
                context.warn,
                on_series=self._ee_series_added,
            )
            self.imagery.add_section(ee_panel)
            self.ee_upload_panel = EEUploadPanel(
                None, lambda: self.mapping.last_map_path or None, context.run_task, context.warn, self._success
            )
            model = lambda: self.mapping.model_file() or None  # noqa: E731
            self.ee_classify_panel = EEClassifyPanel(
                None,
                model,
                lambda: imagery_composite(ee_panel, model()),
                context.run_task,
                self.project.addMapLayer,
                context.warn,
                self._success,
            )
            self.ee_panel = ee_panel
            self.mapPageLayout.addWidget(self.ee_upload_panel)
            self.mapPageLayout.addWidget(self.ee_classify_panel)
        self.mapPageLayout.addWidget(self.active_learning)
        self.mapPageLayout.addWidget(self.onnx_button)

    def _wire(self) -> None:
        self.training.accuracyChanged.connect(self.accuracy.show_accuracy)
        self.training.modelTrained.connect(self.active_learning.model_trained)
        self.mapping.mapFinished.connect(self.active_learning.map_finished)
        self.status.deviceChanged.connect(self.training.show_device)
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

    def _region_wkt(self, crs: QgsCoordinateReferenceSystem) -> Optional[str]:
        geom = self.shared.region_geometry(crs) if self.mapping.area() == AREA_REGION else None
        return geom.asWkt() if geom is not None else None

    def _ee_layer_added(self, layer: QgsRasterLayer) -> None:
        """A downloaded composite becomes one of the chosen rasters."""
        self.shared.add_raster(layer.id())
        self.show_message(f"Earth Engine composite '{layer.name()}' added and chosen for training.", Qgis.MessageLevel.Success)

    def _ee_series_added(self, layers: list[QgsRasterLayer]) -> None:
        """A downloaded series becomes the chosen rasters, as the dates of one series (for the temporal family)."""
        self.shared.set_raster_ids([layer.id() for layer in layers])
        self.shared.set_series(True)
        self.show_message(f"Earth Engine time series of {len(layers)} dates added and chosen for training.", Qgis.MessageLevel.Success)

    def _layers_changed(self, _layers: Any) -> None:
        self.imagery.refresh_rasters()

    def _write_project(self, _doc: Any) -> None:
        self.save_state()

    def _read_project(self, _doc: Any) -> None:
        self.restore_state()

    # ------------------------------------------------------------------------------------------- messages
    def show_message(self, text: str, level: Any = Qgis.MessageLevel.Info) -> None:
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

    def _success(self, text: str) -> None:
        self.show_message(text, Qgis.MessageLevel.Success)

    def show_dependencies(self, statuses: Iterable[DependencyStatus]) -> None:
        self.status.show_dependencies(statuses)

    def show_device(self, text: str) -> None:
        self.status.show_device(text)
        self.training.show_device(text)

    # ----------------------------------------------------------------------------------------------- tasks
    def running_tasks(self) -> list[GeoDLTask]:
        """The steps' own long tasks still running (sampling, training, classifying)."""
        return [t for step in self.step_panels() for t in step.tasks() if t is not None and is_running(t)]

    def cancel_all(self) -> None:
        for step in self.step_panels():
            step.cancel()
        for panel in (self.ee_panel, self.ee_upload_panel, self.ee_classify_panel):
            task = panel.task if panel is not None else None
            if task is not None and is_running(task):
                task.cancel()

    def _release_tools(self) -> None:
        for step in self.step_panels():
            step.release_tools()

    def _project_cleared(self) -> None:
        running = bool(self.running_tasks())
        self.context.project_closed()  # results of the tasks cancelled now are dropped
        self.cancel_all()
        self._release_tools()
        for step in self.step_panels():
            step.project_cleared()
        self.shared.clear()
        self.accuracy.clear()
        self.active_learning.reset()
        if running:
            self.context.warn("The project was closed: the running GeoDL step was cancelled and nothing was written.")

    # ---------------------------------------------------------------------------------------------- files
    def output_dir(self) -> Path:
        """Where the dock writes (see ``DockContext.files``)."""
        return self.context.files.output_dir()

    def set_output_dir(self, path: str) -> None:
        self.context.files.set_output_dir(path)

    # ----------------------------------------------------------------------------------------------- state
    def state(self) -> project_state.DockState:
        """The steps' choices, as the project file keeps them (the same keys as before the steps were panels)."""
        state = project_state.DockState(output_dir=self.context.files.folder)
        for step in self.step_panels():
            step.write_state(state)
        return state

    def save_state(self) -> None:
        project_state.save(self.state(), self.project)

    def restore_state(self) -> None:
        state = project_state.load(self.project)
        if state is None:
            return
        for step in self.step_panels():
            step.read_state(state)
        if state.output_dir and Path(state.output_dir).is_dir():
            self.context.files.folder = state.output_dir

    # ------------------------------------------------------------------------------------------- teardown
    def closeEvent(self, event: Any) -> None:  # noqa: N802
        self._release_tools()
        super().closeEvent(event)

    def disconnect_project(self) -> None:
        """Called by the plugin's unload: stop listening to the project and cancel running steps."""
        self.cancel_all()
        self.active_learning.stop()
        self._release_tools()
        for signal, slot in self._project_connections:
            try:
                signal.disconnect(slot)
            except TypeError:
                pass
        self._project_connections = []
