"""The Map tab's "classify inside Earth Engine" panel: the chosen pixel model (DNN or forest) runs on Earth
Engine over the region, on the composite the Imagery tab describes (sensor and dates; the model's bands). The
result goes to an asset or a GeoTIFF export, and a tile layer of it appears at once in QGIS."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Callable, Optional

from qgis.core import QgsRasterLayer
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from .. import settings
from ..tasks import GeoDLTask
from .forms import load_form


class EEClassifyPanel(QGroupBox):
    """Calls ``core.earthengine.classification.start_classification`` in a GeoDLTask. ``model_path`` returns the
    chosen model file; ``composite`` returns the Imagery tab's ``CompositeParams`` for the region (or raises
    GeoDLError saying what is missing)."""

    # ui/ee_classify.ui
    outputCombo: QComboBox
    assetEdit: QLineEdit
    bucketEdit: QLineEdit
    prefixEdit: QLineEdit
    scaleSpin: QDoubleSpinBox
    waitCheck: QCheckBox
    classifyButton: QPushButton
    cancelButton: QPushButton
    statusLabel: QLabel

    def __init__(
        self,
        parent: Optional[QWidget],
        model_path: Callable[[], Optional[str]],
        composite: Callable[[], Any],
        run_task: Callable[[GeoDLTask], GeoDLTask],
        on_layer: Callable[[QgsRasterLayer], None],
        message: Callable[[str], None],
        success: Callable[[str], None],
    ) -> None:
        super().__init__(parent)
        load_form(self, "ee_classify.ui")
        self._model_path, self._composite = model_path, composite
        self._run_task, self._on_layer, self._message, self._success = run_task, on_layer, message, success
        self.task: Optional[GeoDLTask] = None
        self.task_id = ""
        for label, kind in (("Earth Engine asset", "asset"), ("Cloud Storage GeoTIFF", "gcs"), ("Google Drive GeoTIFF", "drive")):
            self.outputCombo.addItem(label, kind)
        self.assetEdit.setText(f"geodl/ee_landcover_{_dt.date.today():%Y%m%d}")
        self.bucketEdit.setText(str(settings.get("ee_bucket")))
        self.classifyButton.clicked.connect(self.classify)
        self.cancelButton.clicked.connect(self.cancel)

    def classify(self) -> Optional[GeoDLTask]:
        from ..core.earthengine.classification import ClassifyParams
        from ..core.earthengine.exports import Destination
        from ..core.runtime.errors import GeoDLError

        if self.task is not None:
            self._message("An Earth Engine classification is already starting; wait for it or cancel it.")
            return None
        model_path = self._model_path()
        if not model_path:
            self._message("Choose a trained model file first (Map tab).")
            return None
        kind = self.outputCombo.currentData()
        target = self.bucketEdit.text().strip().removeprefix("gs://").strip("/")
        try:
            composite = self._composite()
            params = ClassifyParams(
                region=composite.region,
                scale=self.scaleSpin.value(),
                output=kind,
                destination=None
                if kind == "asset"
                else Destination(
                    kind=kind,
                    bucket=target if kind == "gcs" else "",
                    folder=target if kind == "drive" else "",
                    prefix=self.prefixEdit.text().strip(),
                ),
            )
        except GeoDLError as exc:
            self._message(str(exc))
            return None
        asset = self.assetEdit.text().strip()
        wait = self.waitCheck.isChecked()
        project_id = str(settings.get("ee_project"))
        key_file = str(settings.get("ee_service_account_key"))

        def work(progress):
            from ..core.earthengine import classification, composites, session
            from ..core.earthengine.monitor import wait_for_tasks
            from ..core.earthengine.native import native_model_from_file
            from ..core.earthengine.upload import asset_name

            project = session.ensure_connected(project_id, key_file=key_file).project
            if kind == "asset":
                params.asset_id = asset_name(asset, project)
            params.validate()
            bundle, model = native_model_from_file(model_path)
            image = composites.build_composite(composite)
            bands = composite.output_bands()
            started = classification.start_classification(bundle, image, bands, params, progress.sub(0, 20 if wait else 90), model=model)
            url = classification.classification_tile_url(bundle, image, bands, model=model)
            if wait:
                wait_for_tasks([started.operation], progress.sub(20, 100))
            return started.task_id, url, params.pixels(), wait

        def done(out: tuple) -> None:
            task_id, url, pixels, waited = out
            self._ended()
            self.task_id = task_id
            from ..core.earthengine.composites import xyz_layer_uri

            layer = QgsRasterLayer(xyz_layer_uri(url), "EE classification", "wms")
            if layer.isValid():
                self._on_layer(layer)
            text = (
                f"Earth Engine task {task_id} {'finished' if waited else 'started'} ({pixels:,} pixels); "
                "the tile layer shows the result now."
            )
            self.statusLabel.setText(text)
            self._success(text)

        def failed(message: str) -> None:
            self._ended()
            self.statusLabel.setText(message)
            self._message(message)

        def cancelled() -> None:
            self._ended()
            self.statusLabel.setText("Cancelled (a started Earth Engine task was cancelled too).")

        settings.set_value("ee_bucket", target if kind == "gcs" else settings.get("ee_bucket"))
        self.classifyButton.setEnabled(False)
        self.cancelButton.setEnabled(True)
        self.statusLabel.setText("Compiling the model for Earth Engine …")
        self.task = self._run_task(
            GeoDLTask("GeoDL: classify in Earth Engine", work, on_done=done, on_error=failed, on_cancelled=cancelled)
        )
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _ended(self) -> None:
        self.task = None
        self.classifyButton.setEnabled(True)
        self.cancelButton.setEnabled(False)


def imagery_composite(panel: Any, model_path: Optional[str] = None) -> Any:
    """The Imagery tab's composite (its sensor and dates) over the region, as ``CompositeParams``, with the
    model's bands and indices when a model is given (whether they fit the sensor is checked when compiling)."""
    from ..core.earthengine.composites import INDICES, CompositeParams
    from ..core.models.model_file import read_model_info

    region = panel._region_degrees()
    sensor = panel.sensorCombo.currentData()[0]
    bands: tuple[str, ...] = ()
    indices: tuple[str, ...] = ()
    if model_path:
        names = read_model_info(model_path).bands
        bands = tuple(b for b in names if b not in INDICES)
        indices = tuple(b for b in names if b in INDICES)
    return CompositeParams(
        region=region,
        start=panel.startEdit.date().toString("yyyy-MM-dd"),
        end=panel.endEdit.date().toString("yyyy-MM-dd"),
        sensor=sensor,
        year=panel.yearSpin.value() if sensor == "embedding" else 0,
        bands=bands,
        indices=indices,
    ).validate()
