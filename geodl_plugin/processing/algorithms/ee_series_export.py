"""geodl:eeseriesexport — an Earth Engine time series exported as TFRecords in the series-sample layout."""

from __future__ import annotations

import json

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
)

from ..base import GeoDLAlgorithm
from .ee_composite import connect
from .ee_export_training import add_destination_parameters, add_download_parameter, destination, wait_and_download_exports
from .ee_series import SCALE, add_series_parameters, advanced, output_crs, series_params

MODE_LABELS = ["Patch sequences at labelled points (table)", "The region as patches (image), labels painted as a class band"]
MODES = ["points", "patches"]


def read_labels(alg: GeoDLAlgorithm, parameters, context, feedback, as_points: bool) -> list:
    """The labelled features in EPSG:4326: LabelledPoint per point part, or LabelledGeometry (GeoJSON)."""
    from ...core.earthengine.exports import LabelledPoint
    from ...core.earthengine.series_export import LabelledGeometry

    source = alg.parameterAsSource(parameters, "INPUT", context)
    if source is None:
        return []
    field = alg.parameterAsString(parameters, "CLASS_FIELD", context)
    if not field:
        raise QgsProcessingException("Choose the class field of the labelled layer.")
    transform = QgsCoordinateTransform(source.sourceCrs(), QgsCoordinateReferenceSystem("EPSG:4326"), context.transformContext())
    labels: list = []
    skipped = 0
    for feature in source.getFeatures():
        value, geometry = feature[field], feature.geometry()
        if value is None or str(value) == "NULL" or geometry.isNull():
            skipped += 1
            continue
        geometry.transform(transform)
        if as_points:
            parts = [p for p in geometry.constParts() if hasattr(p, "x")]
            skipped += 0 if parts else 1
            labels += [LabelledPoint(p.x(), p.y(), float(value)) for p in parts]
        else:
            labels.append(LabelledGeometry(json.loads(geometry.asJson()), float(value)))
    if skipped:
        alg.warn(feedback, f"{skipped} feature(s) without a class or a usable geometry were left out.")
    return labels


class EESeriesExportAlgorithm(GeoDLAlgorithm):
    NAME = "eeseriesexport"
    DISPLAY = "Earth Engine time series export"
    GROUP = "Earth Engine"
    REQUIRES = ("earth_engine",)
    HELP = (
        "Exports a time series of cloud-masked composites (one median per month, or per window you write "
        "START/END; Sentinel-2 or Landsat 8/9) as TFRecords to Cloud Storage or Drive, every band of every "
        "date a feature named {band}_{YYYYMMDD} after the window's middle day — the layout 'Extract training "
        "samples' (Time series) writes, so the files train a time-series model as they are (the day of year "
        "comes from the dates). 'Points': k×k patch sequences at labelled points with the class (a table "
        "export; a point layer). 'Patches': the region cut into k×k patches (an image export with its mixer); "
        "with a labelled layer (polygons or points) its classes are painted as a k×k 'class' band "
        "(255 = unlabelled) for chip sequences, without one the patches are for prediction. Patch size 0: 9 "
        "for points, 24 for patches. A window with no scene is exported as -9999 (nodata), never 0, and named "
        "in a warning. With a download folder the algorithm waits for the export and fetches it with the "
        "sidecar the series reader needs (dates, bands, nodata)."
    )
    MODE, INPUT, CLASS_FIELD, PATCH, TILE_SCALE, MAX_PIXELS = "MODE", "INPUT", "CLASS_FIELD", "PATCH_SIZE", "TILE_SCALE", "MAX_PIXELS"
    TASK_IDS, DATES, EMPTY = "TASK_IDS", "DATES", "EMPTY_WINDOWS"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterEnum(self.MODE, "Export", options=MODE_LABELS, defaultValue=0))
        self.addParameter(
            QgsProcessingParameterFeatureSource(self.INPUT, "Labelled layer (points; any geometry for patches)", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.CLASS_FIELD,
                "Class field (numeric)",
                parentLayerParameterName=self.INPUT,
                type=QgsProcessingParameterField.DataType.Numeric,
                optional=True,
            )
        )
        add_series_parameters(self, "Series region")
        self.addParameter(
            QgsProcessingParameterNumber(
                self.PATCH, "Patch size (px; 0: 9 for points, 24 for patches)", QgsProcessingParameterNumber.Type.Integer, 0, minValue=0
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    self.TILE_SCALE,
                    "Tile scale (points; raise after 'memory limit exceeded')",
                    QgsProcessingParameterNumber.Type.Double,
                    1.0,
                    minValue=1.0,
                    maxValue=16.0,
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    self.MAX_PIXELS, "Maximum pixels (patches)", QgsProcessingParameterNumber.Type.Double, 1e10, minValue=1
                )
            )
        )
        add_destination_parameters(self, "geodl/series")
        add_download_parameter(self)
        self.addOutput(QgsProcessingOutputString(self.TASK_IDS, "Earth Engine task ids (comma-separated)"))
        self.addOutput(QgsProcessingOutputString(self.DATES, "Dates (comma-separated)"))
        self.addOutput(QgsProcessingOutputString(self.EMPTY, "Windows without scenes (comma-separated)"))

    def processAlgorithm(self, parameters, context, feedback):
        from ...core.earthengine.series_export import SeriesExportParams, export_series

        mode = MODES[self.parameterAsEnum(parameters, self.MODE, context)]
        labels = read_labels(self, parameters, context, feedback, as_points=mode == "points")
        params = SeriesExportParams(
            series=series_params(self, parameters, context),
            destination=destination(self, parameters, context),
            scale=self.parameterAsDouble(parameters, SCALE, context),
            mode=mode,
            patch_size=self.parameterAsInt(parameters, self.PATCH, context),
            crs=output_crs(self, parameters, context),
            tile_scale=self.parameterAsDouble(parameters, self.TILE_SCALE, context),
            max_pixels=int(self.parameterAsDouble(parameters, self.MAX_PIXELS, context)),
        )

        def work(progress):
            params.validate()
            connect(self, parameters, context)
            if mode == "points":
                return export_series(params, points=labels, progress=progress)
            return export_series(params, labels=labels, progress=progress)

        result = self.run_core(feedback, work)
        for text in result.warnings:
            self.warn(feedback, text)
        for s in result.started:
            feedback.pushInfo(f"Started {s.task_id}: {s.destination.kind} {s.destination.bucket or s.destination.folder}/{s.prefix}")
        wait_and_download_exports(self, parameters, context, feedback, result.started)
        return {
            self.TASK_IDS: ",".join(s.task_id for s in result.started),
            self.DATES: ",".join(w.date.isoformat() for w in result.windows),
            self.EMPTY: ",".join(result.empty_windows),
        }
