"""The Map tab's Earth Engine panel: send the last classified map back to Earth Engine as an image asset.

The class raster (a GeoTIFF on any grid) goes to a Cloud Storage bucket and one ingestion task makes the
asset, pyramided with MODE so zoomed-out views keep real class codes. The task can be watched until the asset
exists; cancelling it in QGIS cancels the ingestion on Earth Engine. Sign-in is the Imagery tab's: the same
Cloud project setting and Earth Engine's own stored credentials (or a service-account key path).
"""

from __future__ import annotations

import datetime as _dt
from typing import Callable, Optional

from qgis.PyQt.QtWidgets import QCheckBox, QGroupBox, QLabel, QLineEdit, QPushButton, QWidget

from .. import settings
from ..tasks import GeoDLTask
from .forms import load_form


class EEUploadPanel(QGroupBox):
    """Calls ``core.earthengine.upload.upload_geotiff`` (and optionally ``monitor.wait_for_tasks``) in a
    GeoDLTask. ``current_map`` returns the path of the last classified map, or None."""

    # ui/ee_upload.ui
    projectEdit: QLineEdit
    assetEdit: QLineEdit
    bucketEdit: QLineEdit
    prefixEdit: QLineEdit
    waitCheck: QCheckBox
    overwriteCheck: QCheckBox
    uploadButton: QPushButton
    cancelButton: QPushButton
    statusLabel: QLabel

    def __init__(
        self,
        parent: Optional[QWidget],
        current_map: Callable[[], Optional[str]],
        run_task: Callable[[GeoDLTask], GeoDLTask],
        message: Callable[[str], None],
        success: Callable[[str], None],
    ) -> None:
        super().__init__(parent)
        load_form(self, "ee_upload.ui")
        self._current_map, self._run_task, self._message, self._success = current_map, run_task, message, success
        self.task: Optional[GeoDLTask] = None
        self.asset_name = ""
        self.projectEdit.setText(str(settings.get("ee_project")))
        self.assetEdit.setText(f"geodl/landcover_{_dt.date.today():%Y%m%d}")
        self.bucketEdit.setText(str(settings.get("ee_bucket")))
        self.uploadButton.clicked.connect(self.upload)
        self.cancelButton.clicked.connect(self.cancel)

    def upload(self) -> Optional[GeoDLTask]:
        if self.task is not None:
            self._message("An upload to Earth Engine is already running; wait for it or cancel it.")
            return None
        path = self._current_map()
        if not path:
            self._message("Classify the region or a raster first (Map tab): the class map is what gets uploaded.")
            return None
        project_id = self.projectEdit.text().strip()
        bucket = self.bucketEdit.text().strip().removeprefix("gs://").strip("/")
        asset, prefix = self.assetEdit.text().strip(), self.prefixEdit.text().strip()
        wait, overwrite = self.waitCheck.isChecked(), self.overwriteCheck.isChecked()
        settings.set_value("ee_project", project_id)
        settings.set_value("ee_bucket", bucket)
        key_file = str(settings.get("ee_service_account_key"))

        def work(progress):
            from ..core.earthengine import session
            from ..core.earthengine.monitor import wait_for_tasks
            from ..core.earthengine.upload import asset_name, upload_geotiff

            project = session.ensure_connected(project_id, key_file=key_file).project
            name = asset_name(asset, project)
            task_id = upload_geotiff(path, asset, bucket, prefix, overwrite=overwrite, progress=progress.sub(0, 30 if wait else 100))
            if wait:
                progress.message(f"Earth Engine is ingesting {name} (task {task_id})…")
                wait_for_tasks([task_id], progress.sub(30, 100))
            return task_id, name, wait

        def done(out: tuple) -> None:
            task_id, name, waited = out
            self._ended()
            self.asset_name = name
            text = (
                f"The map is in Earth Engine: {name}"
                if waited
                else f"Upload task {task_id} started; the asset {name} appears when it ends."
            )
            self.statusLabel.setText(text)
            self._success(text)

        def failed(message: str) -> None:
            self._ended()
            self.statusLabel.setText(message)
            self._message(message)

        def cancelled() -> None:
            self._ended()
            self.statusLabel.setText("Upload cancelled (the ingestion task, if started, was cancelled too).")

        self.uploadButton.setEnabled(False)
        self.cancelButton.setEnabled(True)
        self.statusLabel.setText(f"Copying {path} to gs://{bucket}/{prefix} …")
        self.task = self._run_task(
            GeoDLTask("GeoDL: upload the map to Earth Engine", work, on_done=done, on_error=failed, on_cancelled=cancelled)
        )
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _ended(self) -> None:
        self.task = None
        self.uploadButton.setEnabled(True)
        self.cancelButton.setEnabled(False)
