"""geodl:eeseries — a time series of cloud-masked Earth Engine composites downloaded as one GeoTIFF per date.

Also holds the series parameters ``geodl:eeseriesexport`` shares (region, sensor, dates, windows, masking).
"""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFolder,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsRasterLayer,
)

from ...core.earthengine.composites import INDICES, OPTICAL
from ..base import GeoDLAlgorithm
from .ee_composite import EXTENT, add_connection_parameters, composite_params, connect, masking_parameters

SENSOR, START, END, WINDOWS, MONTHS = "SENSOR", "START", "END", "WINDOWS", "MONTHS"
BANDS, INDICES_P, CLOUD_MASK, CS_THRESHOLD, MAX_SCENE_CLOUD = "BANDS", "INDICES", "CLOUD_MASK", "CS_THRESHOLD", "MAX_SCENE_CLOUD"
CRS, SCALE = "CRS", "SCALE"
SENSOR_LABELS = ["Sentinel-2 SR harmonized", "Landsat 8/9 Collection 2 L2"]
MASK_LABELS = ["Cloud Score+ (Sentinel-2)", "SCL classes (Sentinel-2)"]


def advanced(parameter: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
    return parameter


def add_series_parameters(alg: GeoDLAlgorithm, extent_label: str) -> None:
    """Region, sensor, date range and windows, bands; masking knobs and the CRS under Advanced."""
    add_connection_parameters(alg)
    alg.addParameter(QgsProcessingParameterExtent(EXTENT, extent_label))
    alg.addParameter(QgsProcessingParameterEnum(SENSOR, "Imagery source", options=SENSOR_LABELS, defaultValue=0))
    alg.addParameter(QgsProcessingParameterString(START, "Start date (YYYY-MM-DD)", defaultValue="2023-01-01"))
    alg.addParameter(QgsProcessingParameterString(END, "End date (YYYY-MM-DD, exclusive)", defaultValue="2024-01-01"))
    alg.addParameter(
        QgsProcessingParameterString(
            WINDOWS,
            "Own windows instead of monthly ones: START/END, … (e.g. 2023-03-01/2023-05-01, 2023-05-01/2023-07-01)",
            defaultValue="",
            optional=True,
        )
    )
    alg.addParameter(
        QgsProcessingParameterString(
            BANDS, "Bands, comma-separated (empty: B2,B3,B4,B8,B11,B12 or SR_B2…SR_B7)", defaultValue="", optional=True
        )
    )
    alg.addParameter(
        QgsProcessingParameterEnum(INDICES_P, "Add indices", options=list(INDICES), allowMultiple=True, defaultValue=[], optional=True)
    )
    alg.addParameter(QgsProcessingParameterNumber(SCALE, "Pixel size (m)", QgsProcessingParameterNumber.Type.Double, 10.0, minValue=0.01))
    alg.addParameter(
        advanced(
            QgsProcessingParameterNumber(
                MONTHS, "Months per window (monthly windows)", QgsProcessingParameterNumber.Type.Integer, 1, minValue=1, maxValue=12
            )
        )
    )
    for parameter in masking_parameters():
        alg.addParameter(advanced(parameter))
    alg.addParameter(
        advanced(QgsProcessingParameterCrs(CRS, "Output CRS (empty: the region's UTM zone; projected, metres)", optional=True))
    )


def series_params(alg: GeoDLAlgorithm, parameters, context):
    """The core's SeriesParams from the algorithm's parameters."""
    from ...core.earthengine.series import SeriesParams, parse_windows

    composite = composite_params(alg, parameters, context, sensors=OPTICAL, what="series")
    windows = tuple(parse_windows(alg.parameterAsString(parameters, WINDOWS, context)))
    return SeriesParams(composite, windows=windows, months_per_window=alg.parameterAsInt(parameters, MONTHS, context))


def output_crs(alg: GeoDLAlgorithm, parameters, context) -> str:
    crs = alg.parameterAsCrs(parameters, CRS, context)
    if crs.isValid() and crs.isGeographic():
        raise QgsProcessingException(f"{crs.authid()} is in degrees; choose a projected CRS or leave it empty for the region's UTM zone.")
    return crs.authid() if crs.isValid() else ""


class EESeriesAlgorithm(GeoDLAlgorithm):
    NAME = "eeseries"
    DISPLAY = "Earth Engine time series download"
    GROUP = "Earth Engine"
    REQUIRES = ("earth_engine", "rasters")
    HELP = (
        "Downloads a time series of cloud-masked composites — Sentinel-2 SR harmonized (Cloud Score+ or SCL mask) "
        "or Landsat 8/9 Collection 2 L2 (QA_PIXEL and QA_RADSAT masks) — one median per window: monthly over "
        "the date range (or every few months, under Advanced), or your own windows written START/END. Each "
        "window becomes one GeoTIFF named PREFIX_YYYYMMDD.tif after its middle day (also its ACQUISITION_DATE), "
        "all on one grid: the region's UTM zone at the pixel size, aligned to whole pixels (the grid of 'Earth "
        "Engine direct download' and the training exports). PREFIX_series.vrt stacks them with bands named "
        "{band}_{YYYYMMDD}: give it to 'Extract training samples' (Time series) or 'Predict' as the series. "
        "A window with no scene is a date with nothing observed — every pixel -9999, the nodata, never 0 — and "
        "a warning names it. Pixels cloudy in every scene of a window are nodata too. Downloads go through "
        "computePixels in tiles within Earth Engine's limits, retried when it is busy; running it again keeps "
        "the dates already downloaded with the same settings and resumes the others."
    )
    PREFIX, WORKERS, KEEP_PARTS, LOAD, OUTPUT = "PREFIX", "WORKERS", "KEEP_PARTS", "LOAD", "OUTPUT"
    STACK, FILES, DATES, EMPTY = "STACK", "FILES", "DATES", "EMPTY_WINDOWS"

    def initAlgorithm(self, config=None):
        add_series_parameters(self, "Region to download")
        self.addParameter(
            advanced(QgsProcessingParameterString(self.PREFIX, "File name prefix (empty: s2 or landsat)", defaultValue="", optional=True))
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    self.WORKERS, "Parallel requests (1-40)", QgsProcessingParameterNumber.Type.Integer, 8, minValue=1, maxValue=40
                )
            )
        )
        self.addParameter(advanced(QgsProcessingParameterBoolean(self.KEEP_PARTS, "Keep the downloaded tiles after each mosaic", False)))
        self.addParameter(QgsProcessingParameterBoolean(self.LOAD, "Add the series stack to the project", True))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "Folder for the series"))
        self.addOutput(QgsProcessingOutputRasterLayer(self.STACK, "Series stack (band per date)"))
        self.addOutput(QgsProcessingOutputMultipleLayers(self.FILES, "One GeoTIFF per date"))
        self.addOutput(QgsProcessingOutputString(self.DATES, "Dates (comma-separated)"))
        self.addOutput(QgsProcessingOutputString(self.EMPTY, "Windows without scenes (comma-separated)"))
        self.addOutput(QgsProcessingOutputFolder("FOLDER", "Folder"))

    def processAlgorithm(self, parameters, context, feedback):
        from ...core.earthengine.series_download import SeriesDownloadParams, download_series

        params = SeriesDownloadParams(
            series=series_params(self, parameters, context),
            folder=self.parameterAsString(parameters, self.OUTPUT, context),
            scale=self.parameterAsDouble(parameters, SCALE, context),
            crs=output_crs(self, parameters, context),
            prefix=self.parameterAsString(parameters, self.PREFIX, context).strip(),
            workers=self.parameterAsInt(parameters, self.WORKERS, context),
            keep_parts=self.parameterAsBool(parameters, self.KEEP_PARTS, context),
        )

        def work(progress):
            params.validate()  # before signing in: a typo in a date costs no request
            connect(self, parameters, context)
            return download_series(params, progress)

        result = self.run_core(feedback, work)
        for text in result.warnings:
            self.warn(feedback, text)
        self._stack = str(result.stack)
        self._load = self.parameterAsBool(parameters, self.LOAD, context)
        return {
            self.STACK: str(result.stack),
            self.FILES: [str(f) for f in result.files],
            self.DATES: ",".join(result.dates),
            self.EMPTY: ",".join(result.empty_windows),
            "FOLDER": str(result.folder),
        }

    def postProcessAlgorithm(self, context, feedback):
        if getattr(self, "_load", False) and context.project() is not None:
            layer = QgsRasterLayer(self._stack, "EE series", "gdal")
            if layer.isValid():
                context.project().addMapLayer(layer)
            else:
                self.warn(feedback, f"The series stack {self._stack} could not be loaded; the files are in its folder.")
        return {}
