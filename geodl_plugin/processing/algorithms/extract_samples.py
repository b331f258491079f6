"""geodl:extractsamples — pixel vectors or patches at labelled points, as Earth Engine-style TFRecord."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from ...core.data.labels import read_labels, read_targets
from ...core.data.samples import extract_samples, stack_info
from ...core.data.target_samples import extract_target_samples
from ...core.runtime.errors import GeoDLError
from ..base import GeoDLAlgorithm


def raster_paths(alg, parameters, name, context) -> list[str]:
    layers = alg.parameterAsLayerList(parameters, name, context)
    if not layers:
        raise GeoDLError("No raster given. Choose the imagery.")
    return [layer.source() for layer in layers]


class ExtractSamplesAlgorithm(GeoDLAlgorithm):
    NAME = "extractsamples"
    DISPLAY = "Extract training samples"
    HELP = (
        "Reads the pixel values (or k×k patches) under labelled points from one raster or a stack of "
        "co-registered rasters and writes them as a TFRecord in the layout of an Earth Engine table export "
        "(one float feature per band, the class id as 'class'), with a JSON sidecar holding class names, "
        "band order and grid. Labels in another CRS are reprojected; points outside the raster are skipped "
        "and counted; samples on nodata pixels are left out. For a regression (a number to predict, such as "
        "roof fraction or biomass) pick a numeric field and 'a numeric target': each point, or every pixel of "
        "each polygon, becomes a sample with that value (property 'target'). With 'Time series', the rasters "
        "are the dates of one series (dates from the file names or typed in 'Dates', in the rasters' order; or "
        "one stack with a band per date): each point gets a sequence of patches, one feature per band and date "
        "named {band}_{YYYYMMDD}, and unobserved (nodata) dates are kept as missing values, for a time-series "
        "model."
    )
    INPUT, LABELS, CLASS_FIELD, PATCH_SIZE, NODATA, BAND_NAMES, OUTPUT = (
        "INPUT",
        "LABELS",
        "CLASS_FIELD",
        "PATCH_SIZE",
        "NODATA",
        "BAND_NAMES",
        "OUTPUT",
    )
    FIELD_KIND, ALL_TOUCHED = "FIELD_KIND", "ALL_TOUCHED"
    SERIES, DATES = "SERIES", "DATES"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers(self.INPUT, "Raster(s), co-registered", QgsProcessing.SourceType.TypeRaster))
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                self.LABELS,
                "Labelled points (polygons: numeric targets only)",
                [QgsProcessing.SourceType.TypeVectorPoint, QgsProcessing.SourceType.TypeVectorPolygon],
            )
        )
        self.addParameter(QgsProcessingParameterField(self.CLASS_FIELD, "Class (or target) field", parentLayerParameterName=self.LABELS))
        self.addParameter(
            QgsProcessingParameterEnum(
                self.FIELD_KIND, "The field holds", ["Classes (names or ids)", "A numeric target (regression)"], defaultValue=0
            )
        )
        touched = QgsProcessingParameterBoolean(self.ALL_TOUCHED, "Target polygons: every pixel they touch", False)
        touched.setFlags(touched.flags() | QgsProcessingParameterBoolean.Flag.FlagAdvanced)
        self.addParameter(touched)
        self.addParameter(
            QgsProcessingParameterNumber(
                self.PATCH_SIZE, "Patch size (1 = single pixels; odd)", QgsProcessingParameterNumber.Type.Integer, 1, minValue=1
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.NODATA, "Nodata value (empty: the raster's)", QgsProcessingParameterNumber.Type.Double, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterString(self.BAND_NAMES, "Band names, comma-separated (empty: from the raster)", optional=True)
        )
        self.addParameter(QgsProcessingParameterBoolean(self.SERIES, "Time series: the rasters are the dates of one series", False))
        self.addParameter(
            QgsProcessingParameterString(
                self.DATES, "Dates of the series, in the rasters' order (empty: from the file names)", optional=True
            )
        )
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "Samples (TFRecord)", "TFRecord (*.tfrecord.gz *.tfrecord)"))

    def processAlgorithm(self, parameters, context, feedback):
        rasters = raster_paths(self, parameters, self.INPUT, context)
        path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, self.LABELS, context, ["gpkg", "shp"], "gpkg", feedback
        )
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
        patch = self.parameterAsInt(parameters, self.PATCH_SIZE, context)
        nodata = parameters.get(self.NODATA)
        nodata = None if nodata in (None, "") else self.parameterAsDouble(parameters, self.NODATA, context)
        names_text = self.parameterAsString(parameters, self.BAND_NAMES, context).strip()
        names = [n.strip() for n in names_text.split(",") if n.strip()] or None
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if self.parameterAsBoolean(parameters, self.SERIES, context):
            dates_text = self.parameterAsString(parameters, self.DATES, context).replace(";", ",")
            dates = [d.strip() for d in dates_text.split(",") if d.strip()] or None
            return self._series(rasters, dates, names, nodata, path, layer_name, field, patch, output, feedback)
        numeric = self.parameterAsEnum(parameters, self.FIELD_KIND, context) == 1
        all_touched = self.parameterAsBoolean(parameters, self.ALL_TOUCHED, context)
        if numeric:
            if patch != 1:
                raise QgsProcessingException("Regression samples are single pixels; set the patch size to 1.")
            report = self.run_core(
                feedback,
                lambda progress: extract_target_samples(
                    rasters,
                    read_targets(path, field, layer=layer_name or None, target_crs_wkt=stack_info(rasters, names)[0].crs_wkt),
                    output,
                    nodata,
                    names,
                    all_touched,
                    progress=progress,
                ),
            )
            for w in report.warnings:
                feedback.reportError(w, False)
            feedback.pushInfo(f"{report.count} samples, '{report.target}' from {report.minimum:g} to {report.maximum:g}")
            return {self.OUTPUT: output}

        def work(progress):
            infos = stack_info(rasters, names)
            labels = read_labels(path, field, layer=layer_name or None, target_crs_wkt=infos[0].crs_wkt)
            return extract_samples(rasters, labels, output, patch, nodata, names, progress)

        report = self.run_core(feedback, work)
        for w in report.warnings:
            self.warn(feedback, w)
        feedback.pushInfo(f"{report.count} samples: " + ", ".join(f"{k} {v}" for k, v in report.per_class.items()))
        return {self.OUTPUT: output}

    def _series(self, rasters, dates, names, nodata, path, layer_name, field, patch, output, feedback):
        from ...core.data.series import open_series
        from ...core.data.series_samples import extract_series_samples

        def work(progress):
            series = open_series(rasters, dates=dates, band_names=names, nodata=nodata)
            labels = read_labels(path, field, layer=layer_name or None, target_crs_wkt=series.info.crs_wkt)
            return series, extract_series_samples(series, labels, output, patch, progress)

        series, report = self.run_core(feedback, work)
        for w in report["warnings"]:
            feedback.reportError(w, False)
        feedback.pushInfo(
            f"{report['count']} patch sequences over {series.n_dates} dates: "
            + ", ".join(f"{k} {v}" for k, v in report["per_class"].items())
        )
        return {self.OUTPUT: output}
