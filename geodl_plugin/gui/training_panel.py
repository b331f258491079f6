"""The dock's Train step: checks the labels and imagery, then runs labels → samples → model in the worker
process (``core/label_training.py``) as one task, with the live plot and cancel. A regression family trains
on a numeric field of points or polygons instead of the labelling session.

It reads the chosen rasters (and series) from the shared state and the labels from the labelling session; a
trained model becomes the shared state's model file, and ``modelTrained`` / ``accuracyChanged`` tell the
dock (which shows the accuracy in the Map tab and records an active-learning round)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from qgis.core import Qgis, QgsFieldProxyModel, QgsMapLayerProxyModel, QgsVectorLayer
from qgis.gui import QgsFieldComboBox, QgsMapLayerComboBox
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QComboBox, QGroupBox, QLabel, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget

from .. import settings
from ..core.data.classes import ClassTable
from ..core.families import FAMILIES, FamilySpec, family_spec, sample_patch_size
from ..core.models.family import ModelFamily
from ..core.runtime.errors import GeoDLError
from ..core.runtime.progress import Progress
from ..core.train.trainer import TrainParams
from ..tasks import GeoDLTask, is_running
from .dock_context import DockContext
from .forms import load_form
from .labelling import CLASS_NAME_FIELD, LabelSession, layer_file_path
from .options_form import OptionsForm
from .project_state import DockState
from .shared_state import SharedState, layer_alive
from .step_panel import StepPanel
from .training_plot import TrainingPlot


class TrainingPanel(StepPanel):
    modelTrained = pyqtSignal(object)  # TrainResult, once the step shows it
    accuracyChanged = pyqtSignal(object, str)  # held-out report (or None) and its plot (confusion or scatter; "" if none)

    # ui/training_panel.ui
    trainLayout: QVBoxLayout
    modelTypeCombo: QComboBox
    epochsSpin: QSpinBox
    batchSpin: QSpinBox
    patchSizeLabel: QLabel
    patchSizeSpin: QSpinBox
    targetGroup: QGroupBox
    targetLayerCombo: QgsMapLayerComboBox
    targetFieldCombo: QgsFieldComboBox
    trainButton: QPushButton
    cancelTrainButton: QPushButton
    trainProgress: QProgressBar
    trainDeviceLabel: QLabel
    trainMessageLabel: QLabel
    plotContainer: QWidget
    plotLayout: QVBoxLayout

    def __init__(self, context: DockContext, shared: SharedState, session: LabelSession, parent: Optional[QWidget] = None) -> None:
        super().__init__(context, parent)
        load_form(self, "training_panel.ui")
        self.shared, self.session, self.palette = shared, session, session.palette
        self.train_task: Optional[GeoDLTask] = None
        for spec in FAMILIES.values():
            self.modelTypeCombo.addItem(spec.label, spec.family.value)
        # every option of the chosen family, from its dataclass (under the regression target)
        self.optionsForm = OptionsForm("Model options", self)
        self.trainLayout.insertWidget(self.trainLayout.indexOf(self.targetGroup) + 1, self.optionsForm)
        self.targetLayerCombo.setFilters(QgsMapLayerProxyModel.Filter.PointLayer | QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.targetLayerCombo.setAllowEmptyLayer(True)
        self.targetLayerCombo.setLayer(None)
        self.targetFieldCombo.setFilters(QgsFieldProxyModel.Filter.Numeric)
        self.targetLayerCombo.layerChanged.connect(self.targetFieldCombo.setLayer)
        self.plot = TrainingPlot(self.plotContainer)
        self.plotLayout.addWidget(self.plot)
        self.epochsSpin.setValue(int(settings.get("train_epochs")))
        self.batchSpin.setValue(int(settings.get("train_batch_size")))
        self.cancelTrainButton.setEnabled(False)
        self.modelTypeCombo.currentIndexChanged.connect(self._model_type_changed)
        self._model_type_changed()
        self.trainButton.clicked.connect(self.start_training)
        self.cancelTrainButton.clicked.connect(self.cancel_training)

    def show_device(self, text: str) -> None:
        self.trainDeviceLabel.setText(f"Training device: {text}")

    # ------------------------------------------------------------------------------------------------ family
    def chosen_family(self) -> FamilySpec:
        return family_spec(self.modelTypeCombo.currentData() or ModelFamily.PIXEL_DNN.value)

    def _model_type_changed(self, *_args: Any) -> None:
        spec = self.chosen_family()
        patches = spec.input_kind in ("patches", "series")
        if spec.input_kind == "series":
            self.shared.set_series(True)  # a time-series model reads the ticked rasters as dates
        self.patchSizeSpin.setEnabled(patches)
        self.patchSizeLabel.setEnabled(patches)
        self.optionsForm.set_options_type(spec.params_type)
        self.targetGroup.setVisible(spec.task == "regression")

    # ------------------------------------------------------------------------------------------------ checks
    def check_target_input(self) -> tuple[list[str], str, Optional[str], str]:
        """(raster paths, target layer file, its layer name, numeric field), or GeoDLError naming what is missing."""
        rasters = self.shared.selected_rasters()
        if not rasters:
            raise GeoDLError("No raster chosen. Tick the imagery in the Imagery tab.")
        layer = self.targetLayerCombo.currentLayer()
        if not isinstance(layer, QgsVectorLayer) or layer.providerType() != "ogr":
            raise GeoDLError(
                "Choose the points or polygons that carry the number to predict (a layer saved in a file: GeoPackage, shapefile…)."
            )
        field = self.targetFieldCombo.currentField()
        if not field:
            raise GeoDLError("Choose the numeric field that holds the target (e.g. roof fraction, tree cover %).")
        path, name = layer_file_path(layer)
        return [r.source() for r in rasters], path, name, field

    def check_training_input(self) -> tuple[list[str], str, ClassTable]:
        """(raster paths, labels path, classes), or GeoDLError naming what is missing."""
        rasters = self.shared.selected_rasters()
        if not rasters:
            raise GeoDLError("No raster chosen. Tick the imagery in the Imagery tab.")
        if self.session.layer is None or not layer_alive(self.context.project, self.session.layer):
            raise GeoDLError("No labels yet. Add classes and label points in the Labels tab.")
        counts = self.session.counts()
        if sum(counts.values()) == 0:
            raise GeoDLError("No labels yet: the labels layer holds no point. Label some points in the Labels tab.")
        empty = [c.name for c in self.palette if counts.get(c.id, 0) == 0]
        if empty:
            raise GeoDLError(f"Class(es) {', '.join(repr(n) for n in empty)} have no points: label them or remove them from the palette.")
        if len(self.palette) < 2:
            raise GeoDLError("A classifier needs at least two classes; add another class and label it.")
        return [r.source() for r in rasters], self.session.file_path() or "", self.palette.table()

    def _train_params(self) -> TrainParams:
        return TrainParams(
            samples=[],
            output=self.context.unique("model", ".geodl"),
            family=self.chosen_family().family,
            options=self.optionsForm.values(),
            epochs=self.epochsSpin.value(),
            batch_size=self.batchSpin.value(),
        )

    # ---------------------------------------------------------------------------------------------- training
    def start_training(self) -> Optional[GeoDLTask]:
        if is_running(self.train_task):
            self.context.warn("Training is already running; wait for it to finish or press Cancel.")
            return None
        if self.chosen_family().task == "regression":
            return self._start_regression_training()
        try:
            rasters, labels_path, classes = self.check_training_input()
            family = self.chosen_family()
            train = self._train_params()
        except GeoDLError as exc:
            self.context.warn(str(exc))
            return None
        # A series family reads the ticked rasters as the dates of one series (the Imagery step's switch).
        series = family.input_kind == "series"
        try:
            dates = self.shared.check_series() if series else None
        except GeoDLError as exc:
            self.context.warn(f"{exc} (a time-series model needs the Imagery step's 'Time series' dates)")
            return None
        samples = self.context.unique("samples", ".tfrecord")
        png = train.output[: -len(".geodl")] + "_confusion.png"
        # A patch family (U-Net) learns from image patches around the points (only the centre pixel labelled).
        patch = sample_patch_size(family.family, self.patchSizeSpin.value())
        settings.set_value("train_epochs", train.epochs)
        settings.set_value("train_batch_size", train.batch_size)

        def work(progress: Progress) -> tuple[Any, Optional[str]]:
            from ..core.label_training import TrainFromLabelsParams, train_from_labels
            from ..core.runtime.worker import run_in_worker

            # Labels, samples, training and the plot all run in the worker process (see core/worker.py):
            # QGIS's process only waits on a pipe, so this thread never holds the interpreter lock that the
            # dock's own callbacks on the main thread need.
            params = TrainFromLabelsParams(
                rasters=rasters,
                labels=labels_path,
                class_field=CLASS_NAME_FIELD,
                samples=samples,
                train=train,
                classes=classes.to_json(),
                patch_size=patch,
                confusion_png=png,
                series=series,
                dates=dates,
            )
            result = run_in_worker(train_from_labels, params, progress)
            return result, (png if result.metrics else None)

        return self._start_training_task(work, samples)

    def _start_regression_training(self) -> Optional[GeoDLTask]:
        try:
            rasters, labels_path, layer_name, field = self.check_target_input()
            train = self._train_params()
        except GeoDLError as exc:
            self.context.warn(str(exc))
            return None
        samples = self.context.unique("samples", ".tfrecord")
        png = train.output[: -len(".geodl")] + "_scatter.png"

        def work(progress: Progress) -> tuple[Any, Optional[str]]:
            from ..core.label_training import TrainFromTargetsParams, train_from_targets
            from ..core.runtime.worker import run_in_worker

            params = TrainFromTargetsParams(
                rasters=rasters, labels=labels_path, target_field=field, samples=samples, train=train, scatter_png=png, layer=layer_name
            )
            result = run_in_worker(train_from_targets, params, progress)
            return result, (png if result.metrics else None)

        return self._start_training_task(work, samples)

    def _start_training_task(self, work: Callable[[Progress], Any], samples: str) -> GeoDLTask:
        guard = self.context.guard
        show_cancelled = guard(self, self._train_cancelled)

        def cancelled() -> None:  # a cancelled training leaves no samples behind (even after the project closed)
            for p in (samples, samples + ".json"):
                Path(p).unlink(missing_ok=True)
            show_cancelled()

        task = GeoDLTask(
            "GeoDL: train a model",
            work,
            on_done=guard(self, self._trained),
            on_error=guard(self, self._train_failed),
            on_cancelled=cancelled,
        )
        task.metricsReported.connect(self.plot.add_epoch)
        task.progressChanged.connect(lambda p: self.trainProgress.setValue(int(p)))
        task.messageReported.connect(self.trainMessageLabel.setText)
        self.plot.clear()
        self.train_task = self._start_task(task, self.trainProgress, (self.trainButton,), self.cancelTrainButton, "Training…")
        return task

    def cancel_training(self) -> None:
        self._cancel_task(self.train_task, say=True)

    def _training_ended(self) -> None:
        self.trainButton.setEnabled(True)
        self.cancelTrainButton.setEnabled(False)

    def _trained(self, outcome: tuple) -> None:
        result, png = outcome
        self._training_ended()
        self.trainProgress.setValue(100)
        self.shared.set_model_path(result.model_path)
        self.accuracyChanged.emit(result.metrics, png or "")
        for w in result.warnings:
            self.context.warn(w)
        score = f" (held-out {result.metrics.summary()})." if result.metrics else "."
        self.context.message(f"Model written to {result.model_path}{score}", Qgis.MessageLevel.Success)
        self.modelTrained.emit(result)

    def _train_failed(self, message: str) -> None:
        self._training_ended()
        self.context.message(message, Qgis.MessageLevel.Critical)

    def _train_cancelled(self) -> None:
        self._training_ended()
        self.trainProgress.setValue(0)
        self.context.message("Training cancelled; no model was written.", Qgis.MessageLevel.Warning)

    # -------------------------------------------------------------------------------------------- dock hooks
    def tasks(self) -> list[Optional[GeoDLTask]]:
        return [self.train_task]

    def project_cleared(self) -> None:
        self.plot.clear()

    def write_state(self, state: DockState) -> None:
        state.family = self.chosen_family().family.value
        state.options = self.optionsForm.saved_values()
        state.epochs = self.epochsSpin.value()
        state.batch_size = self.batchSpin.value()

    def read_state(self, state: DockState) -> None:
        index = self.modelTypeCombo.findData(state.family)
        if index >= 0:
            self.modelTypeCombo.setCurrentIndex(index)
        self.optionsForm.set_values(state.options)
        self.epochsSpin.setValue(state.epochs)
        self.batchSpin.setValue(state.batch_size)
