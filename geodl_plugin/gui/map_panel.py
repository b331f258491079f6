"""The dock's Map step: classify the region, a raster's extent or the canvas view (a quick preview in the
persistent worker), and add the styled class and confidence layers in one group.

It reads the region, the chosen rasters (and series) and the model file from the shared state, and writes the
model file chosen here and the result layers back; ``mapFinished`` tells the dock (the active-learning panel
works on the last map). ``uncertainty_measures`` says which uncertainty rasters each map also writes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from qgis.core import Qgis, QgsCoordinateTransform, QgsRasterLayer, QgsRectangle
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QComboBox, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..core.data.classes import ClassTable
from ..core.models.family import TilingParams
from ..core.runtime.errors import GeoDLError
from ..core.runtime.progress import Progress
from ..layers import add_result_layers, add_value_layers
from ..tasks import GeoDLTask, is_running
from .dock_context import DockContext
from .forms import load_form
from .options_form import OptionsForm
from .project_state import DockState
from .shared_state import PREVIEW_GROUP, SharedState
from .step_panel import StepPanel

__all__ = ["AREA_CANVAS", "AREA_RASTER", "AREA_REGION", "PREVIEW_GROUP", "MapPanel", "model_classes", "model_task"]

AREA_REGION, AREA_RASTER, AREA_CANVAS = "region", "raster", "canvas"
MAP_GROUP = "GeoDL map"


def model_classes(path: str) -> ClassTable:
    """The class table of a model file, from its manifest (no TensorFlow needed)."""
    from ..core.models.model_file import read_model_info

    return read_model_info(path).classes


def model_task(path: str) -> str:
    """The model file's task (classification, semantic-segmentation, regression), from the family table."""
    from ..core.families import family_of_model

    return family_of_model(path).task


class MapPanel(StepPanel):
    mapFinished = pyqtSignal(object)  # PredictResult of a map or preview, once its layers are added

    # ui/map_panel.ui
    mapLayout: QVBoxLayout
    modelFileWidget: QgsFileWidget
    predictAreaCombo: QComboBox
    previewButton: QPushButton
    predictButton: QPushButton
    cancelPredictButton: QPushButton
    predictProgress: QProgressBar

    def __init__(
        self,
        context: DockContext,
        shared: SharedState,
        uncertainty_measures: Callable[[], Sequence[str]],
        parent: Optional[QWidget] = None,
    ) -> None:
        super().__init__(context, parent)
        load_form(self, "map_panel.ui")
        self.shared, self.uncertainty_measures = shared, uncertainty_measures
        self.predict_task: Optional[GeoDLTask] = None
        self.last_result_layers: list[QgsRasterLayer] = []
        self.last_prediction: Any = None  # the last PredictResult (full map or preview)
        self.last_map_path = ""  # the last full classification (not a preview): what goes to Earth Engine
        self.last_preview_seconds: Optional[float] = None
        self.write_uncertainty = True  # maps and previews also write the uncertainty (for Suggest points)
        self.show_uncertainty_layers = False  # ... and add them to the map group
        # the tiling options of the convolutional families, from their dataclass
        self.tilingForm = OptionsForm("Tiles (convolutional models)", self)
        self.tilingForm.set_options_type(TilingParams)
        self.mapLayout.insertWidget(1, self.tilingForm)
        self.predictAreaCombo.addItem("Region", AREA_REGION)
        self.predictAreaCombo.addItem("Raster extent", AREA_RASTER)
        self.predictAreaCombo.addItem("Canvas extent", AREA_CANVAS)
        self.cancelPredictButton.setEnabled(False)
        self.previewButton.clicked.connect(self.preview)
        self.predictButton.clicked.connect(lambda: self.predict(self.predictAreaCombo.currentData()))
        self.cancelPredictButton.clicked.connect(self.cancel_map)
        self.modelFileWidget.fileChanged.connect(shared.set_model_path)
        shared.modelChanged.connect(self._model_changed)

    def _model_changed(self, path: str) -> None:
        if self.modelFileWidget.filePath() != path:  # a new model was trained, or the project closed
            self.modelFileWidget.setFilePath(path)

    def model_file(self) -> str:
        """The model file chosen here, else the last trained one ("" when none)."""
        return self.modelFileWidget.filePath() or self.shared.model_path

    def area(self) -> str:
        return str(self.predictAreaCombo.currentData() or AREA_REGION)

    def tiling_options(self) -> TilingParams:
        return self.tilingForm.values()

    def set_show_uncertainty_layers(self, on: bool) -> None:
        self.show_uncertainty_layers = bool(on)

    # ------------------------------------------------------------------------------------------------ checks
    def _extent_in(self, area: str, raster: QgsRasterLayer) -> Optional[QgsRectangle]:
        """The area to classify in the raster's CRS; GeoDLError when there is none or it misses the raster."""
        crs = raster.crs()
        if area == AREA_RASTER:
            return None
        canvas = self.context.canvas
        if area == AREA_REGION:
            geom = self.shared.region_geometry(crs)
            if geom is None:
                raise GeoDLError("No region yet. Draw one in the Region tab, or classify the canvas or raster extent.")
            rect = geom.boundingBox()
        elif area == AREA_CANVAS:
            if canvas is None:
                raise GeoDLError("No map canvas.")
            to_raster = QgsCoordinateTransform(canvas.mapSettings().destinationCrs(), crs, self.context.project)
            rect = to_raster.transformBoundingBox(canvas.extent())
        else:
            raise GeoDLError(f"Unknown area '{area}'.")
        if not rect.intersects(raster.extent()):
            what = {AREA_REGION: "The region", AREA_CANVAS: "The canvas view"}[area]
            raise GeoDLError(f"{what} lies outside the raster '{raster.name()}'. Pick an area inside the imagery.")
        return rect

    def _check_map_input(self) -> tuple[list[QgsRasterLayer], str]:
        rasters = self.shared.selected_rasters()
        if not rasters:
            raise GeoDLError("No raster chosen. Tick the imagery in the Imagery tab.")
        model = self.model_file()
        if not model or not Path(model).is_file():
            raise GeoDLError("No model file. Train a model (Train tab) or choose a .geodl file.")
        return rasters, model

    def _map_request(self, area: str) -> Optional[tuple[list[QgsRasterLayer], str, Any, TilingParams]]:
        """(rasters, model, extent, tiling) for a classification of ``area``, or None after telling the user why
        not (one already running, no raster, no model, region outside the imagery, bad tiling options)."""
        if is_running(self.predict_task):
            self.context.warn("A classification is already running; wait for it or press Cancel.")
            return None
        try:
            rasters, model = self._check_map_input()
            return rasters, model, self._extent_in(area, rasters[0]), self.tiling_options()
        except GeoDLError as exc:
            self.context.warn(str(exc))
            return None

    def _map_dates(self) -> Any:
        """With the Imagery step's "Time series" on: the dates of the ticked rasters, in their order; None
        otherwise; False (after telling the user) when they cannot be had."""
        if not self.shared.series:
            return None
        try:
            return self.shared.check_series()
        except GeoDLError as exc:
            self.context.warn(str(exc))
            return False

    def _measures(self) -> tuple[str, ...]:
        return tuple(self.uncertainty_measures()) if self.write_uncertainty else ()

    # ------------------------------------------------------------------------------------------------ mapping
    def predict(self, area: str = AREA_REGION) -> Optional[GeoDLTask]:
        checked = self._map_request(area)
        if checked is None:
            return None
        rasters, model, rect, tiling = checked
        paths = [r.source() for r in rasters]
        dates = self._map_dates()
        if dates is False:
            return None
        unique = self.context.unique
        output, confidence = unique("classes", ".tif"), unique("confidence", ".tif")
        measures = self._measures()
        entropy = unique("entropy", ".tif") if "entropy" in measures else None
        margin = unique("margin", ".tif") if "margin" in measures else None
        extent = None if rect is None else (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())

        def work(progress: Progress) -> tuple[Any, ClassTable, str]:
            from ..core.families import predict_raster
            from ..core.predict.raster_prediction import PredictParams
            from ..core.runtime.worker import run_in_worker

            params = PredictParams(
                rasters=paths,
                model=model,
                output=output,
                confidence_output=confidence,
                extent=extent,
                tiling=tiling,
                entropy_output=entropy,
                margin_output=margin,
                dates=dates,
            )
            params.validate()
            return run_in_worker(predict_raster, params, progress), model_classes(model), model_task(model)

        return self._start_map_task("GeoDL: classify", work, lambda out: self._mapped(out, MAP_GROUP))

    def preview(self) -> Optional[GeoDLTask]:
        """Classify the canvas view at screen resolution (fast; replaces the previous preview)."""
        checked = self._map_request(AREA_CANVAS)
        if checked is None:
            return None
        rasters, model, rect, tiling = checked
        assert self.context.canvas is not None  # a canvas extent was found
        size = self.context.canvas.mapSettings().outputSize()
        paths = [r.source() for r in rasters]
        extent = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        out_dir = self.context.unique("preview", "")
        dates = self._map_dates()  # the preview reads VRTs: a series' dates cannot come from their names
        if dates is False:
            return None
        started = time.perf_counter()
        measures = self._measures()

        def work(progress: Progress) -> tuple[Any, ClassTable, str]:
            from ..core.families import predict_raster
            from ..core.predict.preview import preview_params
            from ..core.runtime.worker import run_in_worker

            params = preview_params(paths, model, extent, size.width(), size.height(), out_dir, measures)
            params.tiling = tiling
            params.dates = dates or None
            return run_in_worker(predict_raster, params, progress, persistent=True), model_classes(model), model_task(model)

        def done(out: tuple) -> None:
            self._mapped(out, PREVIEW_GROUP, replace=True)
            self.last_preview_seconds = time.perf_counter() - started
            self.context.message(
                f"Preview of the view ({out[0].pixels / 1e6:.2f} Mpx) in {self.last_preview_seconds:.2f} s.", Qgis.MessageLevel.Success
            )

        return self._start_map_task("GeoDL: preview the view", work, done)

    def _start_map_task(self, description: str, work: Callable[[Progress], Any], done: Callable[[Any], None]) -> GeoDLTask:
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
            self.context.message(message, Qgis.MessageLevel.Critical)

        def on_cancelled() -> None:
            ended()
            self.predictProgress.setValue(0)
            self.context.message("Classification cancelled; nothing was written.", Qgis.MessageLevel.Warning)

        guard = self.context.guard
        task = GeoDLTask(
            description, work, on_done=guard(self, on_done), on_error=guard(self, on_error), on_cancelled=guard(self, on_cancelled)
        )
        task.progressChanged.connect(lambda p: self.predictProgress.setValue(int(p)))
        message = f"{description.removeprefix('GeoDL: ').capitalize()}…"
        self.predict_task = self._start_task(
            task, self.predictProgress, (self.predictButton, self.previewButton), self.cancelPredictButton, message
        )
        return task

    def cancel_map(self) -> None:
        self._cancel_task(self.predict_task, say=True)

    def _mapped(self, out: tuple, group: str, replace: bool = False) -> None:
        result, classes, task = out
        project = self.context.project
        root = project.layerTreeRoot()
        if replace:
            old = root.findGroup(group)
            if old is not None:
                project.removeMapLayers([layer.layerId() for layer in old.findLayers()])
                root.removeChildNode(old)
        try:
            if task == "regression":  # a number per pixel: value (and spread) on continuous colour ramps
                layers = add_value_layers(result.output, result.confidence_output, group, project)
            else:
                shown = self.show_uncertainty_layers
                layers = add_result_layers(
                    result.output,
                    classes,
                    result.confidence_output,
                    group,
                    project,
                    entropy_path=result.entropy_output if shown else None,
                    margin_path=result.margin_output if shown else None,
                )
        except GeoDLError as exc:
            self.context.message(str(exc), Qgis.MessageLevel.Critical)
            return
        self.last_result_layers = layers
        self.last_prediction = result
        self.shared.set_result_layers(layers)  # the Imagery step stops offering them
        if not replace:  # a preview is coarse on purpose: its pixel-size warnings stay in the log
            self.last_map_path = result.output
            for w in result.warnings:
                self.context.warn(w)
            self.context.message(f"Map added: {result.pixels / 1e6:.2f} Mpx in {result.seconds:.1f} s.", Qgis.MessageLevel.Success)
        self.mapFinished.emit(result)

    # -------------------------------------------------------------------------------------------- dock hooks
    def tasks(self) -> list[Optional[GeoDLTask]]:
        return [self.predict_task]

    def project_cleared(self) -> None:
        self.last_result_layers = []
        self.last_map_path = ""

    def write_state(self, state: DockState) -> None:
        state.tiling = self.tilingForm.saved_values()
        state.model_path = self.model_file()
        state.predict_area = self.area()

    def read_state(self, state: DockState) -> None:
        self.tilingForm.set_values(state.tiling)
        self.shared.set_model_path(state.model_path)
        self.modelFileWidget.setFilePath(state.model_path)
        index = self.predictAreaCombo.findData(state.predict_area)
        if index >= 0:
            self.predictAreaCombo.setCurrentIndex(index)
