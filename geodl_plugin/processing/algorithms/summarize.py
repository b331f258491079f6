"""geodl:summarize — per-band statistics and histograms (per class, with separability), or class areas."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterVectorLayer,
)

from ...core.data.labels import read_labels
from ...core.data.samples import stack_info
from ...core.evaluate.summary import summarize_bands, summarize_classified
from ..base import GeoDLAlgorithm

BANDS, CLASSIFIED = 0, 1


class SummarizeAlgorithm(GeoDLAlgorithm):
    NAME = "summarize"
    DISPLAY = "Summarize bands or class areas"
    GROUP = "Raster preparation"
    HELP = (
        "Band statistics: count, min, max, mean, standard deviation, 2/50/98th percentiles (from the "
        "histogram) and a histogram of each band of one raster or a co-registered stack. With labelled "
        "polygons or points, only the labelled pixels count, and the same statistics are given per class with "
        "the Jeffries–Matusita distance (0–2) of every class pair: below 1.0 a classifier will confuse the two "
        "classes (a warning names them), from 1.9 they are well separated. Class areas: for a classified map "
        "(the class raster of geodl:predict), the pixels, area in hectares and share of each class; names "
        "and colours from the model file when given. Results go to JSON, and a PNG plot if asked for."
    )
    INPUT, MODE, LABELS, CLASS_FIELD, MODEL, BINS, NODATA, OUTPUT, PLOT, MIN_JM = (
        "INPUT",
        "MODE",
        "LABELS",
        "CLASS_FIELD",
        "MODEL",
        "BINS",
        "NODATA",
        "OUTPUT",
        "PLOT",
        "MIN_JM",
    )

    def initAlgorithm(self, config=None):
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.INPUT, "Raster(s), co-registered (class areas: the class raster)", QgsProcessing.SourceType.TypeRaster
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.MODE, "Summarize", ["Band statistics (per class with labels)", "Class areas of a classified map"], defaultValue=BANDS
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                self.LABELS,
                "Labelled polygons or points (optional)",
                [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint],
                optional=True,
            )
        )
        self.addParameter(QgsProcessingParameterField(self.CLASS_FIELD, "Class field", parentLayerParameterName=self.LABELS, optional=True))
        self.addParameter(
            QgsProcessingParameterFile(self.MODEL, "Model file for class names (class areas; optional)", extension="geodl", optional=True)
        )
        bins = QgsProcessingParameterNumber(
            self.BINS, "Histogram bins", QgsProcessingParameterNumber.Type.Integer, 64, minValue=2, maxValue=4096
        )
        bins.setFlags(bins.flags() | QgsProcessingParameterNumber.Flag.FlagAdvanced)
        self.addParameter(bins)
        nodata = QgsProcessingParameterNumber(
            self.NODATA, "Nodata value (empty: the raster's)", QgsProcessingParameterNumber.Type.Double, optional=True
        )
        nodata.setFlags(nodata.flags() | QgsProcessingParameterNumber.Flag.FlagAdvanced)
        self.addParameter(nodata)
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "Summary (JSON)", "JSON (*.json)"))
        self.addParameter(
            QgsProcessingParameterFileDestination(self.PLOT, "Plot (PNG)", "PNG (*.png)", optional=True, createByDefault=False)
        )
        self.addOutput(QgsProcessingOutputNumber(self.MIN_JM, "Lowest Jeffries–Matusita distance of a class pair"))

    def processAlgorithm(self, parameters, context, feedback):
        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        if not layers:
            raise QgsProcessingException("No raster given. Choose the imagery or the classified map.")
        rasters = [layer.source() for layer in layers]
        mode = self.parameterAsEnum(parameters, self.MODE, context)
        path, layer_name = None, None
        if parameters.get(self.LABELS) not in (None, ""):
            path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
                parameters, self.LABELS, context, ["gpkg", "shp"], "gpkg", feedback
            )
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
        if path and not field and mode == BANDS:
            raise QgsProcessingException("Choose the labels' class field.")
        model = self.parameterAsFile(parameters, self.MODEL, context)
        bins = self.parameterAsInt(parameters, self.BINS, context)
        nodata = None
        if parameters.get(self.NODATA) not in (None, ""):
            nodata = self.parameterAsDouble(parameters, self.NODATA, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        plot = self.parameterAsFileOutput(parameters, self.PLOT, context) or None

        def work(progress):
            if mode == CLASSIFIED:
                classes = None
                if model:
                    from ...core.models.model_file import read_model_info

                    classes = read_model_info(model).classes
                return summarize_classified(rasters[0], output, plot, classes=classes, progress=progress)
            labels = None
            if path:
                labels = read_labels(path, field, layer=layer_name or None, target_crs_wkt=stack_info(rasters)[0].crs_wkt)
            return summarize_bands(rasters, output, plot, labels=labels, nodata=nodata, bins=bins, progress=progress)

        report = self.run_core(feedback, work)
        for w in report.get("warnings", []):
            feedback.reportError(w, False)
        min_jm = (report.get("separability") or {}).get("min_jeffries_matusita")
        if report["kind"] == "classified":
            feedback.pushInfo(", ".join(f"{c['name']} {c['area_ha']:.1f} ha ({c['percent']:.1f}%)" for c in report["classes"]))
        elif min_jm is not None:
            feedback.pushInfo(f"lowest Jeffries–Matusita distance {min_jm:.2f} (of 2)")
        return {self.OUTPUT: output, self.PLOT: plot, self.MIN_JM: min_jm}
