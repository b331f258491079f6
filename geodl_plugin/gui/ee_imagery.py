"""The Imagery tab's Earth Engine panel: a cloud-masked Sentinel-2 or Landsat 8/9 composite, or a year of
Google's Satellite Embeddings, over the region, downloaded with computePixels (no bucket) on the region's UTM
grid into a GeoTIFF (masked pixels = nodata) that becomes one of the chosen rasters.
Sign-in uses the Cloud project typed here (kept in QgsSettings) and Earth Engine's own stored credentials,
or a service-account key file: only its path is kept, never its content."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Callable, Optional

from qgis.core import QgsCoordinateReferenceSystem, QgsGeometry, QgsProject, QgsRasterLayer
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import QDate
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from .. import settings
from ..tasks import GeoDLTask
from .forms import load_form

SENSORS = (
    ("Sentinel-2 SR (Cloud Score+ mask)", "sentinel2", 10.0),
    ("Landsat 8/9 C2 L2 (QA_PIXEL + saturation mask)", "landsat", 30.0),
    ("Satellite Embedding V1, annual (64 bands)", "embedding", 10.0),
)
EMBEDDING_CREDIT = "The AlphaEarth Foundations Satellite Embedding dataset is produced by Google and Google DeepMind (CC-BY 4.0)."


class EECompositePanel(QGroupBox):
    """Calls ``core.earthengine.download.download_composite`` in a GeoDLTask; adds the result as a layer.

    ``region(crs)`` returns the dock's region in that CRS (or None); ``output_dir()`` the folder to write in;
    ``on_layer`` receives the downloaded layer once it is in the project. With *Time series* ticked the panel
    calls ``core.earthengine.series_download.download_series`` instead (one composite per window of
    ``monthsSpin`` months between From and To) and ``on_series`` receives the dates' layers, in date order."""

    # ui/ee_imagery.ui
    eeForm: QFormLayout
    projectEdit: QLineEdit
    keyFile: QgsFileWidget
    sensorCombo: QComboBox
    startEdit: QDateEdit
    endEdit: QDateEdit
    yearSpin: QSpinBox
    scaleSpin: QDoubleSpinBox
    seriesBox: QCheckBox
    monthsSpin: QSpinBox
    downloadButton: QPushButton
    statusLabel: QLabel

    def __init__(
        self,
        parent: Optional[QWidget],
        project: QgsProject,
        region: Callable[[QgsCoordinateReferenceSystem], Optional[QgsGeometry]],
        output_dir: Callable[[], str],
        run_task: Callable[[GeoDLTask], GeoDLTask],
        on_layer: Callable[[QgsRasterLayer], None],
        message: Callable[[str], None],
        on_series: Optional[Callable[[list[QgsRasterLayer]], None]] = None,
    ) -> None:
        super().__init__(parent)
        load_form(self, "ee_imagery.ui")
        self.project, self._region, self._output_dir = project, region, output_dir
        self._run_task, self._on_layer, self._message = run_task, on_layer, message
        self._on_series = on_series
        self.task: Optional[GeoDLTask] = None
        self.projectEdit.setText(str(settings.get("ee_project")))
        self.keyFile.setFilePath(str(settings.get("ee_service_account_key")))
        for label, key, scale in SENSORS:
            self.sensorCombo.addItem(label, (key, scale))
        today = QDate.currentDate()
        self.startEdit.setDate(today.addMonths(-4))
        self.endEdit.setDate(today)
        self.yearSpin.setRange(2017, today.year())
        self.yearSpin.setValue(today.year() - 1)  # the last complete year
        self.yearSpin.setToolTip("Satellite Embeddings: one image per year (2017 onwards). " + EMBEDDING_CREDIT)
        self.sensorCombo.currentIndexChanged.connect(self._sensor_changed)
        self.seriesBox.toggled.connect(self._series_toggled)
        self.downloadButton.clicked.connect(self.download)
        self._sensor_changed()

    def _sensor_changed(self, _index: int = 0) -> None:
        if not self.sensorCombo.currentData():
            return
        key, scale = self.sensorCombo.currentData()
        embedding = key == "embedding"
        self.scaleSpin.setValue(scale)
        self.startEdit.setEnabled(not embedding)
        self.endEdit.setEnabled(not embedding)
        self.yearSpin.setEnabled(embedding)
        self.seriesBox.setEnabled(not embedding)  # the embeddings are one image a year: no monthly series
        if embedding:
            self.seriesBox.setChecked(False)
        self.statusLabel.setText(EMBEDDING_CREDIT if embedding else "")

    def _series_toggled(self, on: bool) -> None:
        self.monthsSpin.setEnabled(on)
        self.downloadButton.setText("Download a time series for the region" if on else "Download composite for the region")

    def _region_degrees(self) -> tuple[float, float, float, float]:
        """The dock's region as (west, south, east, north) in degrees."""
        from ..core.runtime.errors import GeoDLError

        geometry = self._region(QgsCoordinateReferenceSystem("EPSG:4326"))
        if geometry is None or geometry.isEmpty():
            raise GeoDLError("Draw or choose a region first (Region tab): the composite covers the region.")
        box = geometry.boundingBox()
        return (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum())

    def download(self) -> Optional[GeoDLTask]:
        from ..core.earthengine.composites import CompositeParams
        from ..core.earthengine.download import DownloadParams
        from ..core.runtime.errors import GeoDLError

        if self.task is not None:
            self._message("An Earth Engine download is already running; wait for it or cancel it.")
            return None
        try:
            region = self._region_degrees()
            sensor = self.sensorCombo.currentData()[0]
            composite = CompositeParams(
                region=region,
                start=self.startEdit.date().toString("yyyy-MM-dd"),
                end=self.endEdit.date().toString("yyyy-MM-dd"),
                sensor=sensor,
                year=self.yearSpin.value() if sensor == "embedding" else 0,
            ).validate()
            # the region's UTM zone at the pixel size, aligned to whole pixels: the grid training exports use
            download = DownloadParams.for_region(composite.output_bands(), region, self.scaleSpin.value())
            download.validate()
        except GeoDLError as exc:
            self._message(str(exc))
            return None
        project_id, key_file = self._sign_in()
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        if self.seriesBox.isChecked():
            return self._download_series(composite, Path(self._output_dir()) / f"ee_{sensor}_series_{stamp}", project_id, key_file)
        output = str(Path(self._output_dir()) / f"ee_{sensor}_{stamp}.tif")

        def work(progress):
            from ..core.earthengine import session
            from ..core.earthengine.download import download_composite

            session.ensure_connected(project_id, key_file=key_file)
            return str(download_composite(composite, download, output, progress))

        def done(path: str) -> None:
            self.task = None
            layer = QgsRasterLayer(path, Path(path).stem)
            self.project.addMapLayer(layer)
            credit = f" {EMBEDDING_CREDIT}" if sensor == "embedding" else ""
            self.statusLabel.setText(
                f"Downloaded {layer.width()}×{layer.height()} px, {layer.bandCount()} bands; masked pixels are nodata.{credit}"
            )
            self._on_layer(layer)

        def failed(message: str) -> None:
            self.task = None
            self.statusLabel.setText(message)
            self._message(message)

        def cancelled() -> None:
            self.task = None
            self.statusLabel.setText("Download cancelled; finished tiles are kept to resume.")

        what = "64 embedding bands" if sensor == "embedding" else ", ".join(download.bands)
        self.statusLabel.setText(f"Downloading {what} at {download.scale:g} m …")
        self.task = self._run_task(GeoDLTask("GeoDL: Earth Engine composite", work, on_done=done, on_error=failed, on_cancelled=cancelled))
        return self.task

    def _sign_in(self) -> tuple[str, str]:
        """The Cloud project and key-file path typed here, kept for next time (the path only, never the key)."""
        project_id = self.projectEdit.text().strip()
        settings.set_value("ee_project", project_id)
        key_file = self.keyFile.filePath().strip()
        settings.set_value("ee_service_account_key", key_file)
        return project_id, key_file

    def _download_series(self, composite: Any, folder: Path, project_id: str, key_file: str) -> Optional[GeoDLTask]:
        """One composite per window into ``folder`` (a GeoTIFF per date); the dates' layers go to ``on_series``."""
        from ..core.earthengine.series import SeriesParams
        from ..core.earthengine.series_download import SeriesDownloadParams
        from ..core.runtime.errors import GeoDLError

        params = SeriesDownloadParams(
            SeriesParams(composite, months_per_window=self.monthsSpin.value()), str(folder), scale=self.scaleSpin.value()
        )
        try:
            params.validate()
        except GeoDLError as exc:
            self._message(str(exc))
            return None

        def work(progress):
            from ..core.earthengine import session
            from ..core.earthengine.series_download import download_series

            session.ensure_connected(project_id, key_file=key_file)
            return download_series(params, progress)

        def done(result: Any) -> None:
            self.task = None
            layers = [QgsRasterLayer(str(path), path.stem) for path in result.files]
            for layer in layers:
                self.project.addMapLayer(layer)
            empty = f" No scene in {', '.join(result.empty_windows)}: those dates are nodata." if result.empty_windows else ""
            self.statusLabel.setText(f"Downloaded {len(layers)} dates ({result.dates[0]} … {result.dates[-1]}).{empty}")
            for text in result.warnings:
                self._message(text)
            if self._on_series is not None:
                self._on_series(layers)

        def failed(message: str) -> None:
            self.task = None
            self.statusLabel.setText(message)
            self._message(message)

        def cancelled() -> None:
            self.task = None
            self.statusLabel.setText("Download cancelled; finished dates are kept to resume.")

        self.statusLabel.setText(f"Downloading a series of {len(params.series.window_list())} dates at {params.scale:g} m …")
        self.task = self._run_task(
            GeoDLTask("GeoDL: Earth Engine time series", work, on_done=done, on_error=failed, on_cancelled=cancelled)
        )
        return self.task
