"""The dock's Map step: classify the region, a raster's extent or the canvas view (a quick preview in the
persistent worker), and add the styled class and confidence layers in one group.

A mixin of :class:`GeoDLDock`: it uses the dock's widgets (from ``ui/dock.ui``) and helpers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

from qgis.core import Qgis, QgsCoordinateTransform, QgsRasterLayer, QgsRectangle

from ..core.data.classes import ClassTable
from ..core.runtime.errors import GeoDLError
from ..layers import add_result_layers, add_value_layers
from ..tasks import GeoDLTask

PREVIEW_GROUP = "GeoDL preview"
AREA_REGION, AREA_RASTER, AREA_CANVAS = "region", "raster", "canvas"


def model_classes(path: str) -> ClassTable:
    """The class table of a model file, from its manifest (no TensorFlow needed)."""
    from ..core.models.model_file import read_model_info

    return read_model_info(path).classes


def model_task(path: str) -> str:
    """The model file's task (classification, semantic-segmentation, regression), from the family table."""
    from ..core.families import family_of_model

    return family_of_model(path).task


class MapStep:
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
            rect = QgsCoordinateTransform(self.canvas.mapSettings().destinationCrs(), crs, self.project).transformBoundingBox(
                self.canvas.extent()
            )
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
        dates = self._map_dates()
        if dates is False:
            return None
        output, confidence = self._unique("classes", ".tif"), self._unique("confidence", ".tif")
        measures = self.active_learning.wanted_measures() if self.write_uncertainty else ()
        entropy = self._unique("entropy", ".tif") if "entropy" in measures else None
        margin = self._unique("margin", ".tif") if "margin" in measures else None
        extent = None if rect is None else (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())

        def work(progress):
            from ..core.families import predict_raster
            from ..core.predict.raster_prediction import PredictParams
            from ..core.runtime.worker import run_in_worker

            params = PredictParams(
                rasters=paths,
                model=model,
                output=output,
                confidence_output=confidence,
                extent=extent,
                tiling=self.tiling_options(),
                entropy_output=entropy,
                margin_output=margin,
                dates=dates,
            )
            params.validate()
            return run_in_worker(predict_raster, params, progress), model_classes(model), model_task(model)

        return self._start_map_task("GeoDL: classify", work, lambda out: self._mapped(out, "GeoDL map"))

    def _map_dates(self) -> Any:
        """With the Imagery step's "Time series" on: the dates of the ticked rasters, in their order; None
        otherwise; False (after telling the user) when they cannot be had."""
        if not self.is_series():
            return None
        try:
            return self.check_series()
        except GeoDLError as exc:
            self._warn(str(exc))
            return False

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
        dates = self._map_dates()  # the preview reads VRTs: a series' dates cannot come from their names
        if dates is False:
            return None
        started = time.perf_counter()
        measures = self.active_learning.wanted_measures() if self.write_uncertainty else ()

        def work(progress):
            from ..core.families import predict_raster
            from ..core.predict.preview import preview_params
            from ..core.runtime.worker import run_in_worker

            params = preview_params(paths, model, extent, size.width(), size.height(), out_dir, measures)
            params.tiling = self.tiling_options()
            params.dates = dates or None
            return run_in_worker(predict_raster, params, progress, persistent=True), model_classes(model), model_task(model)

        def done(out: tuple) -> None:
            self._mapped(out, PREVIEW_GROUP, replace=True)
            self.last_preview_seconds = time.perf_counter() - started
            self.show_message(
                f"Preview of the view ({out[0].pixels / 1e6:.2f} Mpx) in {self.last_preview_seconds:.2f} s.", Qgis.MessageLevel.Success
            )

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

        task = GeoDLTask(
            description,
            work,
            on_done=self._guard(generation, on_done),
            on_error=self._guard(generation, on_error),
            on_cancelled=self._guard(generation, on_cancelled),
        )
        task.progressChanged.connect(lambda p: self.predictProgress.setValue(int(p)))
        self.predictProgress.setValue(0)
        self.predictButton.setEnabled(False)
        self.previewButton.setEnabled(False)
        self.cancelPredictButton.setEnabled(True)
        self.predict_task = self._run(task)
        self.show_message(f"{description.removeprefix('GeoDL: ').capitalize()}…")
        return task

    def _mapped(self, out: tuple, group: str, replace: bool = False) -> None:
        result, classes, task = out
        root = self.project.layerTreeRoot()
        if replace:
            old = root.findGroup(group)
            if old is not None:
                self.project.removeMapLayers([layer.layerId() for layer in old.findLayers()])
                root.removeChildNode(old)
        try:
            if task == "regression":  # a number per pixel: value (and spread) on continuous colour ramps
                layers = add_value_layers(result.output, result.confidence_output, group, self.project)
            else:
                shown = self.show_uncertainty_layers
                layers = add_result_layers(
                    result.output,
                    classes,
                    result.confidence_output,
                    group,
                    self.project,
                    entropy_path=result.entropy_output if shown else None,
                    margin_path=result.margin_output if shown else None,
                )
        except GeoDLError as exc:
            self.show_message(str(exc), Qgis.MessageLevel.Critical)
            return
        self.last_result_layers = layers
        self.last_prediction = result
        self.refresh_rasters()
        if not replace:  # a preview is coarse on purpose: its pixel-size warnings stay in the log
            self.last_map_path = result.output
            for w in result.warnings:
                self._warn(w)
            self.show_message(f"Map added: {result.pixels / 1e6:.2f} Mpx in {result.seconds:.1f} s.", Qgis.MessageLevel.Success)
        self.mapFinished.emit(result)
