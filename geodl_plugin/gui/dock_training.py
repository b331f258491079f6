"""The dock's Train step: checks the labels and imagery, then runs labels → samples → model in the worker
process (``core/label_training.py``) as one task, with the live plot, cancel and the accuracy view.

A mixin of :class:`GeoDLDock`: it uses the dock's widgets (from ``ui/dock.ui``) and helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from qgis.core import Qgis
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QPixmap
from qgis.PyQt.QtWidgets import QTableWidgetItem

from .. import settings
from ..core.data.classes import ClassTable
from ..core.evaluate.reports import AccuracyReport, RegressionReport
from ..core.families import FamilySpec, family_spec, sample_patch_size
from ..core.models.family import ModelFamily
from ..core.runtime.errors import GeoDLError
from ..core.train.trainer import TrainParams
from ..tasks import GeoDLTask
from .labelling import CLASS_NAME_FIELD


class TrainingStep:
    def _setup_target_group(self) -> None:
        """The regression target (a numeric field of a point or polygon layer), shown for regression families."""
        from qgis.core import QgsFieldProxyModel, QgsMapLayerProxyModel
        from qgis.gui import QgsFieldComboBox, QgsMapLayerComboBox
        from qgis.PyQt.QtWidgets import QFormLayout, QGroupBox

        self.targetGroup = QGroupBox("Regression target: a number per point or polygon", self.trainPage)
        self.targetGroup.setObjectName("targetGroup")
        form = QFormLayout(self.targetGroup)
        self.targetLayerCombo = QgsMapLayerComboBox(self.targetGroup)
        self.targetLayerCombo.setFilters(QgsMapLayerProxyModel.Filter.PointLayer | QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.targetLayerCombo.setAllowEmptyLayer(True)
        self.targetLayerCombo.setLayer(None)
        self.targetFieldCombo = QgsFieldComboBox(self.targetGroup)
        self.targetFieldCombo.setFilters(QgsFieldProxyModel.Filter.Numeric)
        self.targetLayerCombo.layerChanged.connect(self.targetFieldCombo.setLayer)
        form.addRow("Points or polygons", self.targetLayerCombo)
        form.addRow("Numeric field", self.targetFieldCombo)
        self.trainLayout.insertWidget(1, self.targetGroup)

    def check_target_input(self) -> tuple[list[str], str, Optional[str], str]:
        """(raster paths, target layer file, its layer name, numeric field), or GeoDLError naming what is missing."""
        from qgis.core import QgsVectorLayer

        from .labelling import layer_file_path

        rasters = self.selected_rasters()
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
            raise GeoDLError(f"Class(es) {', '.join(repr(n) for n in empty)} have no points: label them or remove them from the palette.")
        if len(self.palette) < 2:
            raise GeoDLError("A classifier needs at least two classes; add another class and label it.")
        return [r.source() for r in rasters], self.session.file_path() or "", self.palette.table()

    def start_training(self) -> Optional[GeoDLTask]:
        if self._running(self.train_task):
            self._warn("Training is already running; wait for it to finish or press Cancel.")
            return None
        if self.chosen_family().task == "regression":
            return self._start_regression_training()
        try:
            rasters, labels_path, classes = self.check_training_input()
            family = self.chosen_family()
            train = TrainParams(
                samples=[],
                output=self._unique("model", ".geodl"),
                family=family.family,
                options=self.optionsForm.values(),
                epochs=self.epochsSpin.value(),
                batch_size=self.batchSpin.value(),
            )
        except GeoDLError as exc:
            self._warn(str(exc))
            return None
        # A series family reads the ticked rasters as the dates of one series (the Imagery step's switch).
        series = family.input_kind == "series"
        try:
            dates = self.check_series() if series else None
        except GeoDLError as exc:
            self._warn(f"{exc} (a time-series model needs the Imagery step's 'Time series' dates)")
            return None
        samples = self._unique("samples", ".tfrecord")
        png = train.output[: -len(".geodl")] + "_confusion.png"
        # A patch family (U-Net) learns from image patches around the points (only the centre pixel labelled).
        patch = sample_patch_size(family.family, self.patchSizeSpin.value())
        settings.set_value("train_epochs", train.epochs)
        settings.set_value("train_batch_size", train.batch_size)

        def work(progress):
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

        def cleanup() -> None:
            for p in (samples, samples + ".json"):
                Path(p).unlink(missing_ok=True)

        return self._start_training_task(work, cleanup)

    def _start_regression_training(self) -> Optional[GeoDLTask]:
        try:
            rasters, labels_path, layer_name, field = self.check_target_input()
            train = TrainParams(
                samples=[],
                output=self._unique("model", ".geodl"),
                family=self.chosen_family().family,
                options=self.optionsForm.values(),
                epochs=self.epochsSpin.value(),
                batch_size=self.batchSpin.value(),
            )
        except GeoDLError as exc:
            self._warn(str(exc))
            return None
        samples = self._unique("samples", ".tfrecord")
        png = train.output[: -len(".geodl")] + "_scatter.png"

        def work(progress):
            from ..core.label_training import TrainFromTargetsParams, train_from_targets
            from ..core.runtime.worker import run_in_worker

            params = TrainFromTargetsParams(
                rasters=rasters, labels=labels_path, target_field=field, samples=samples, train=train, scatter_png=png, layer=layer_name
            )
            result = run_in_worker(train_from_targets, params, progress)
            return result, (png if result.metrics else None)

        def cleanup() -> None:
            for p in (samples, samples + ".json"):
                Path(p).unlink(missing_ok=True)

        return self._start_training_task(work, cleanup)

    def _start_training_task(self, work, cleanup) -> GeoDLTask:
        generation = self._generation
        task = GeoDLTask(
            "GeoDL: train a model",
            work,
            on_done=self._guard(generation, self._trained),
            on_error=self._guard(generation, self._train_failed),
            on_cancelled=lambda: (cleanup(), self._guard(generation, self._train_cancelled)()),
        )
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

    def chosen_family(self) -> FamilySpec:
        return family_spec(self.modelTypeCombo.currentData() or ModelFamily.PIXEL_DNN.value)

    def _model_type_changed(self, *_args) -> None:
        spec = self.chosen_family()
        patches = spec.input_kind in ("patches", "series")
        if spec.input_kind == "series" and not self.is_series():
            self.seriesCheck.setChecked(True)  # a time-series model reads the ticked rasters as dates
        self.patchSizeSpin.setEnabled(patches)
        self.patchSizeLabel.setEnabled(patches)
        self.optionsForm.set_options_type(spec.params_type)
        self.targetGroup.setVisible(spec.task == "regression")

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
        score = f" (held-out {result.metrics.summary()})." if result.metrics else "."
        self.show_message(f"Model written to {result.model_path}{score}", Qgis.MessageLevel.Success)
        self.modelTrained.emit(result)

    def _train_failed(self, message: str) -> None:
        self._training_ended()
        self.show_message(message, Qgis.MessageLevel.Critical)

    def _train_cancelled(self) -> None:
        self._training_ended()
        self.trainProgress.setValue(0)
        self.show_message("Training cancelled; no model was written.", Qgis.MessageLevel.Warning)

    def _model_file_changed(self, path: str) -> None:
        self.model_path = path

    def _show_accuracy(self, metrics: Optional[AccuracyReport | RegressionReport], png: Optional[str]) -> None:
        self.last_metrics = metrics
        self.f1Table.setRowCount(0)
        self.confusionLabel.clear()
        if not metrics:
            self.accuracyLabel.setText("Train a model to see its accuracy.")
            return
        if isinstance(metrics, RegressionReport):  # its scores, and the predicted-vs-observed plot
            self.accuracyLabel.setText(
                f"R² {metrics.r2:.3f} · RMSE {metrics.rmse:.4g} · MAE {metrics.mae:.4g}"
                f" · bias {metrics.bias:+.3g} · {metrics.n} held-out samples ({metrics.split} split)"
            )
            self._show_plot(png)
            return
        self.accuracyLabel.setText(
            f"Overall accuracy {metrics.overall_accuracy:.3f} · kappa {metrics.kappa:.3f}"
            f" · {metrics.n_samples} held-out {metrics.unit} ({metrics.split} split)"
        )
        self.f1Table.setRowCount(len(metrics.per_class))
        for r, (name, v) in enumerate(metrics.per_class.items()):
            for c, text in enumerate((name, f"{v.f1:.3f}", f"{v.precision:.3f}", f"{v.recall:.3f}")):
                self.f1Table.setItem(r, c, QTableWidgetItem(text))
        self.f1Table.resizeColumnsToContents()
        self._show_plot(png)

    def _show_plot(self, png: Optional[str]) -> None:
        if png and Path(png).exists():
            pixmap = QPixmap(png)
            self.confusionLabel.setPixmap(pixmap.scaledToWidth(min(320, pixmap.width()), Qt.TransformationMode.FastTransformation))
