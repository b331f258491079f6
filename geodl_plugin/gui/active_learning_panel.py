"""The Map step's active-learning panel: Suggest points → walk through them labelling → Retrain, with the
accuracy of every round.

- **Suggest points** (after a map or a canvas preview, which write the entropy and margin rasters): runs
  ``core.predict.suggest.suggest_points`` in a task and adds the ranked "to label" layer.
- **Walk**: a map tool whose keys step through the suggestions (N next, P previous, 1–9 label with that
  class, S skip, Esc stop; the canvas keeps the arrow keys and space for panning); the map pans to each. A
  labelled suggestion moves into the training points (one undoable step in the labelling session) and leaves
  the "to label" layer; a skipped one stays, greyed.
- **Retrain**: the dock's training with its current (= last) settings, then the same map again; each
  finished training adds a round: labels used, held-out accuracy, and accuracy against reference points when
  a reference layer is chosen.

The panel is built from ``ui/active_learning_panel.ui`` and given what it needs (canvas, project, task
runner, message function, labelling session and a few dock hooks); it does not reach into the dock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from qgis.core import (
    Qgis,
    QgsCategorizedSymbolRenderer,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsMapLayerProxyModel,
    QgsMarkerSymbol,
    QgsPointXY,
    QgsProject,
    QgsRendererCategory,
    QgsVectorLayer,
)
from qgis.gui import QgsFieldComboBox, QgsMapCanvas, QgsMapLayerComboBox, QgsMapTool, QgsVertexMarker
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QKeyEvent
from qgis.PyQt.QtWidgets import QCheckBox, QComboBox, QGroupBox, QLabel, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QWidget

from ..core.evaluate.reports import AccuracyReport
from ..core.runtime.errors import GeoDLError
from ..tasks import GeoDLTask
from .forms import load_form
from .labelling import CLASS_NAME_FIELD, LabelSession, layer_file_path

TO_LABEL_LAYER_NAME = "GeoDL to label"
SKIPPED = "skipped"


@dataclass
class PanelHooks:
    """What the panel asks of the dock."""

    retrain: Callable[[], Optional[GeoDLTask]]  # train again with the dock's current settings
    remap: Callable[[], Optional[GeoDLTask]]  # classify the same area again (with the uncertainty rasters)
    ensure_labels_layer: Callable[[], QgsVectorLayer]
    region_wkt: Callable[[QgsCoordinateReferenceSystem], Optional[str]]  # the region in that CRS, or None
    output_path: Callable[[str, str], str]  # a new file name (stem, suffix) in the dock's output folder
    show_uncertainty: Callable[[bool], None]  # whether maps add the uncertainty layers


class SuggestionWalkTool(QgsMapTool):
    """Keys only: the canvas keeps the focus so the keys reach the tool while the map pans."""

    nextRequested = pyqtSignal()
    previousRequested = pyqtSignal()
    skipRequested = pyqtSignal()
    classRequested = pyqtSignal(int)  # 0-based palette row
    stopRequested = pyqtSignal()

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        key = e.key()
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.classRequested.emit(int(key - Qt.Key.Key_1))
        elif key == Qt.Key.Key_N:
            self.nextRequested.emit()
        elif key in (Qt.Key.Key_P, Qt.Key.Key_B):
            self.previousRequested.emit()
        elif key in (Qt.Key.Key_S, Qt.Key.Key_0, Qt.Key.Key_Delete):
            self.skipRequested.emit()
        elif key == Qt.Key.Key_Escape:
            self.stopRequested.emit()
        else:
            e.ignore()
            return
        e.accept()


@dataclass
class Round:
    labels: int
    held_out: Optional[float]
    reference: Optional[float] = None


class ActiveLearningPanel(QGroupBox):
    # ui/active_learning_panel.ui
    countSpin: QSpinBox
    measureCombo: QComboBox
    suggestButton: QPushButton
    showUncertaintyCheck: QCheckBox
    previousButton: QPushButton
    skipButton: QPushButton
    nextButton: QPushButton
    walkButton: QPushButton
    walkLabel: QLabel
    referenceCombo: QgsMapLayerComboBox
    referenceFieldCombo: QgsFieldComboBox
    retrainButton: QPushButton
    roundsTable: QTableWidget

    def __init__(
        self,
        parent: Optional[QWidget],
        canvas: Optional[QgsMapCanvas],
        project: QgsProject,
        run_task: Callable[[GeoDLTask], GeoDLTask],
        message: Callable[[str, Any], None],
        session: LabelSession,
        hooks: PanelHooks,
    ) -> None:
        super().__init__(parent)
        load_form(self, "active_learning_panel.ui")
        self.canvas, self.project, self._run, self._message = canvas, project, run_task, message
        self.session, self.palette, self.hooks = session, session.palette, hooks
        self.layer: Optional[QgsVectorLayer] = None  # the "to label" layer
        self.order: list[int] = []  # feature ids still to label, by rank
        self.position = 0
        self.last_map: Optional[Any] = None  # the last PredictResult with uncertainty rasters
        self.rounds: list[Round] = []
        self.task: Optional[GeoDLTask] = None
        self.pending_retrain = False
        self.marker: Optional[QgsVertexMarker] = None
        self.tool = SuggestionWalkTool(canvas) if canvas is not None else None
        self.measureCombo.addItem("margin", "margin")
        self.measureCombo.addItem("entropy", "entropy")
        self.referenceCombo.setFilters(QgsMapLayerProxyModel.Filter.PointLayer)
        self.referenceCombo.setAllowEmptyLayer(True)
        self.referenceCombo.setLayer(None)
        self.referenceCombo.layerChanged.connect(self.referenceFieldCombo.setLayer)
        self.roundsTable.setColumnCount(4)
        self.roundsTable.setHorizontalHeaderLabels(["Round", "Labels", "Held-out OA", "Reference OA"])
        self.roundsTable.verticalHeader().setVisible(False)
        self.suggestButton.clicked.connect(self.suggest)
        self.nextButton.clicked.connect(self.next)
        self.previousButton.clicked.connect(self.previous)
        self.skipButton.clicked.connect(self.skip)
        self.retrainButton.clicked.connect(self.retrain)
        self.walkButton.toggled.connect(self._toggle_walk)
        self.showUncertaintyCheck.toggled.connect(hooks.show_uncertainty)
        if self.tool is not None:
            self.tool.nextRequested.connect(self.next)
            self.tool.previousRequested.connect(self.previous)
            self.tool.skipRequested.connect(self.skip)
            self.tool.classRequested.connect(self.assign)
            self.tool.stopRequested.connect(lambda: self.walkButton.setChecked(False))
            self.tool.deactivated.connect(lambda: self.walkButton.setChecked(False))
        else:
            self.walkButton.setEnabled(False)
        self._update_walk()

    def wanted_measures(self) -> tuple[str, ...]:
        """The uncertainty rasters a map or preview should write: the chosen measure, or both when they are to
        be shown (each is one more float raster to compress; ``scripts/bench_uncertainty.py`` prints the cost)."""
        if self.showUncertaintyCheck.isChecked():
            return ("entropy", "margin")
        return (str(self.measureCombo.currentData()),)

    # ------------------------------------------------------------------------------------- dock events
    def map_finished(self, result: Any) -> None:
        """A map or preview arrived (the dock's ``mapFinished``)."""
        if getattr(result, "entropy_output", None) or getattr(result, "margin_output", None):
            self.last_map = result
        if self.rounds and self.rounds[-1].reference is None:
            self._score_reference(result.output, self.rounds[-1])
        if self.pending_retrain:
            self.pending_retrain = False
            self.retrainButton.setEnabled(True)
            last = self.rounds[-1] if self.rounds else None
            self._message(
                f"Round {len(self.rounds)}: {last.labels if last else 0} labels, held-out accuracy "
                f"{_fmt(last.held_out if last else None)}. Suggest points for the next round.",
                Qgis.MessageLevel.Success,
            )

    def model_trained(self, result: Any) -> None:
        """A training finished (the dock's ``modelTrained``): a new round; with Retrain, map again."""
        oa = result.metrics.overall_accuracy if isinstance(result.metrics, AccuracyReport) else None
        self.rounds.append(Round(sum(self.session.counts().values()), oa))
        self._show_rounds()
        if self.pending_retrain and self.hooks.remap() is None:
            self.pending_retrain = False
            self.retrainButton.setEnabled(True)

    # ------------------------------------------------------------------------------------------- suggest
    def suggest(self) -> Optional[GeoDLTask]:
        if self._running():
            self._message("Suggesting points already; wait for it.", Qgis.MessageLevel.Warning)
            return None
        result = self.last_map
        if result is None:
            self._message("Classify or preview first: Suggest points works on the last map's uncertainty.", Qgis.MessageLevel.Warning)
            return None
        from ..core.predict.suggest import SuggestParams, suggest_points

        measure = self.measureCombo.currentData()
        raster = result.margin_output if measure == "margin" else result.entropy_output
        if not raster:
            measure = "entropy" if measure == "margin" else "margin"
            raster = result.margin_output or result.entropy_output
        from qgis.core import QgsRasterLayer

        crs = QgsRasterLayer(result.output, "classes").crs()
        try:
            existing = self._existing_labels(crs)
            region = self.hooks.region_wkt(crs)
        except GeoDLError as exc:
            self._message(str(exc), Qgis.MessageLevel.Warning)
            return None
        params = SuggestParams(
            classes_raster=result.output,
            uncertainty_raster=raster,
            measure=measure,
            count=self.countSpin.value(),
            region_wkt=region,
            existing_xy=existing,
            output=self.hooks.output_path("to_label", ".gpkg"),
        )
        names = {c.id: c.name for c in self.palette}
        self.suggestButton.setEnabled(False)

        def done(out: Any) -> None:
            self.suggestButton.setEnabled(True)
            self._load(out)

        def failed(message: str) -> None:
            self.suggestButton.setEnabled(True)
            self._message(message, Qgis.MessageLevel.Critical)

        self.task = self._run(
            GeoDLTask(
                "GeoDL: suggest points",
                lambda p: suggest_points(params, p, names),
                on_done=done,
                on_error=failed,
                on_cancelled=lambda: self.suggestButton.setEnabled(True),
            )
        )
        return self.task

    def _running(self) -> bool:
        try:
            return self.task is not None and self.task.status() not in (GeoDLTask.TaskStatus.Complete, GeoDLTask.TaskStatus.Terminated)
        except RuntimeError:
            return False

    def _existing_labels(self, crs: QgsCoordinateReferenceSystem) -> list[tuple[float, float]]:
        layer = self.session.layer
        if layer is None:
            return []
        transform = QgsCoordinateTransform(layer.crs(), crs, self.project)
        out = []
        for f in layer.getFeatures(QgsFeatureRequest().setNoAttributes()):
            if f.hasGeometry():
                p = transform.transform(f.geometry().asPoint())
                out.append((p.x(), p.y()))
        return out

    def _load(self, result: Any) -> None:
        if self.layer is not None and self.project.mapLayer(self.layer.id()) is not None:
            self.project.removeMapLayer(self.layer.id())
        layer = QgsVectorLayer(f"{result.output}|layername=to_label", TO_LABEL_LAYER_NAME, "ogr")
        if not layer.isValid():
            self._message(f"QGIS cannot open the suggested points '{result.output}'.", Qgis.MessageLevel.Critical)
            return
        ring = {"name": "circle", "color": "0,0,0,0", "outline_color": "#ff7f00", "outline_width": "0.8", "size": "4.5"}
        grey = dict(ring, outline_color="#9e9e9e")
        layer.setRenderer(
            QgsCategorizedSymbolRenderer(
                "status",
                [
                    QgsRendererCategory("to label", QgsMarkerSymbol.createSimple(ring), "to label"),
                    QgsRendererCategory(SKIPPED, QgsMarkerSymbol.createSimple(grey), SKIPPED),
                ],
            )
        )
        self.project.addMapLayer(layer)
        self.layer = layer
        layer.willBeDeleted.connect(self._layer_deleted)
        ranked = sorted(layer.getFeatures(), key=lambda f: int(f["rank"]))
        self.order = [f.id() for f in ranked]
        self.position = 0
        for w in result.warnings:
            self._message(w, Qgis.MessageLevel.Warning)
        self._message(
            f"{len(self.order)} points to label, least sure first (at least {result.min_distance:.0f} "
            "map units apart). Walk through them with the keys.",
            Qgis.MessageLevel.Success,
        )
        self._go()

    def _layer_deleted(self) -> None:
        self.layer = None
        self.order = []
        self._clear_marker()
        self._update_walk()

    # ---------------------------------------------------------------------------------------------- walk
    def _toggle_walk(self, on: bool) -> None:
        if self.tool is None or self.canvas is None:
            return
        if on:
            if not self.order:
                self._message("No points to label: Suggest points first.", Qgis.MessageLevel.Warning)
                self.walkButton.setChecked(False)
                return
            self.canvas.setMapTool(self.tool)
            self.canvas.setFocus()
            self._go()
        elif self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)

    def current(self) -> Optional[Any]:
        if self.layer is None or not self.order:
            return None
        self.position = min(max(self.position, 0), len(self.order) - 1)
        return self.layer.getFeature(self.order[self.position])

    def next(self) -> None:
        if self.order:
            self.position = (self.position + 1) % len(self.order)
        self._go()

    def previous(self) -> None:
        if self.order:
            self.position = (self.position - 1) % len(self.order)
        self._go()

    def skip(self) -> None:
        feature, layer = self.current(), self.layer
        if feature is None or layer is None:
            return
        idx = layer.fields().indexOf("status")
        layer.dataProvider().changeAttributeValues({feature.id(): {idx: SKIPPED}})
        layer.triggerRepaint()
        self.next()

    def assign(self, row: int) -> None:
        """Label the current suggestion with the palette's class at ``row``; it moves into the labels."""
        feature, layer = self.current(), self.layer
        if feature is None or layer is None:
            self._message("No point to label: Suggest points first.", Qgis.MessageLevel.Warning)
            return
        if not 0 <= row < len(self.palette):
            self._message(f"No class {row + 1} in the palette.", Qgis.MessageLevel.Warning)
            return
        info = self.palette.at(row)
        try:
            self.hooks.ensure_labels_layer()
            self.session.add_point(feature.geometry().asPoint(), info.id, layer.crs())
        except GeoDLError as exc:
            self._message(str(exc), Qgis.MessageLevel.Warning)
            return
        layer.dataProvider().deleteFeatures([feature.id()])
        layer.triggerRepaint()
        self.order.remove(feature.id())
        if self.position >= len(self.order):
            self.position = 0
        self._message(f"Labelled '{info.name}'; {len(self.order)} to go.", Qgis.MessageLevel.Info)
        self._go()

    def _go(self) -> None:
        feature, layer = self.current(), self.layer
        self._update_walk()
        if feature is None or layer is None:
            self._clear_marker()
            return
        point = feature.geometry().asPoint()
        if self.canvas is not None:
            to_canvas = QgsCoordinateTransform(layer.crs(), self.canvas.mapSettings().destinationCrs(), self.project)
            centre = to_canvas.transform(point)
            self.canvas.setCenter(centre)
            self.canvas.refresh()
            self._mark(centre)

    def _mark(self, point: QgsPointXY) -> None:
        if self.marker is None:
            self.marker = QgsVertexMarker(self.canvas)
            self.marker.setIconType(QgsVertexMarker.ICON_BOX)
            self.marker.setIconSize(16)
            self.marker.setPenWidth(2)
            self.marker.setColor(QColor("#e41a1c"))
        self.marker.setCenter(point)

    def _clear_marker(self) -> None:
        if self.marker is not None and self.canvas is not None:
            self.canvas.scene().removeItem(self.marker)
        self.marker = None

    def _update_walk(self) -> None:
        feature = self.current()
        for b in (self.nextButton, self.previousButton, self.skipButton):
            b.setEnabled(feature is not None)
        if feature is None:
            self.walkLabel.setText(
                "Classify or preview, then Suggest points." if self.layer is None else "All suggested points are labelled: Retrain."
            )
            return
        keys = ", ".join(f"{i + 1} {c.name}" for i, c in enumerate(self.palette) if i < 9)
        self.walkLabel.setText(
            f"Point {self.position + 1} of {len(self.order)} (rank {feature['rank']}): predicted "
            f"'{feature['predicted']}', uncertainty {float(feature['uncertainty']):.2f}. Keys: "
            f"{keys}; S skip; N/P next/previous."
        )

    # ------------------------------------------------------------------------------------------- retrain
    def retrain(self) -> Optional[GeoDLTask]:
        """Train with the last settings, then map again; the round is recorded when both finish."""
        if self.pending_retrain:
            self._message("Retraining already; wait for the map.", Qgis.MessageLevel.Warning)
            return None
        self.walkButton.setChecked(False)
        self.pending_retrain = True
        task = self.hooks.retrain()
        if task is None:
            self.pending_retrain = False
            return None
        self.retrainButton.setEnabled(False)
        task.taskTerminated.connect(self._retrain_failed)
        return task

    def _retrain_failed(self) -> None:
        self.pending_retrain = False
        self.retrainButton.setEnabled(True)

    def _score_reference(self, class_raster: str, round_: Round) -> None:
        layer = self.referenceCombo.currentLayer()
        field = self.referenceFieldCombo.currentField() or CLASS_NAME_FIELD
        if not isinstance(layer, QgsVectorLayer) or layer.providerType() != "ogr":
            return
        from ..core.data.labels import read_labels
        from ..core.evaluate.accuracy import evaluate_map
        from ..core.io.raster import raster_info

        path, name = layer_file_path(layer)
        try:
            reference = read_labels(path, field, layer=name, target_crs_wkt=raster_info(class_raster).crs_wkt, classes=self.palette.table())
            # a few hundred points on one map: quick enough for the main thread
            round_.reference = evaluate_map(class_raster, reference).overall_accuracy
        except GeoDLError as exc:
            self._message(f"Reference points: {exc}", Qgis.MessageLevel.Warning)
            return
        self._show_rounds()

    def _show_rounds(self) -> None:
        self.roundsTable.setRowCount(len(self.rounds))
        for r, round_ in enumerate(self.rounds):
            for c, text in enumerate((str(r + 1), str(round_.labels), _fmt(round_.held_out), _fmt(round_.reference))):
                self.roundsTable.setItem(r, c, QTableWidgetItem(text))
        self.roundsTable.resizeColumnsToContents()

    # ------------------------------------------------------------------------------------------ teardown
    def reset(self) -> None:
        """The project closed: forget its layers and rounds."""
        self.walkButton.setChecked(False)
        self._clear_marker()
        self.layer, self.order, self.last_map, self.rounds = None, [], None, []
        self.pending_retrain = False
        self.retrainButton.setEnabled(True)
        self._show_rounds()
        self._update_walk()

    def stop(self) -> None:
        if self.tool is not None and self.canvas is not None and self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)
        self._clear_marker()
        if self.task is not None and self._running():
            self.task.cancel()


def _fmt(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.3f}"
