"""geodl:predict — classify a raster with a model file; styled class and confidence rasters."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ...core.families import family_of_model, predict_raster
from ...core.models.family import TilingParams
from ...core.models.model_file import read_model_info
from ...core.predict.raster_prediction import PredictParams
from ...core.runtime.worker import run_in_worker
from ..base import GeoDLAlgorithm
from ..option_parameters import add_option_parameters, read_option_parameters


class PredictAlgorithm(GeoDLAlgorithm):
    NAME = "predict"
    DISPLAY = "Classify a raster"
    HELP = (
        "Classifies a raster with a GeoDL model file, block by block (never the whole raster in memory). "
        "Outputs lie on exactly the input's grid and CRS: the class raster (uint8, nodata 255, tiled GeoTIFF "
        "with overviews and the classes' colours) and optionally the confidence (highest class probability), "
        "one probability band per class, and two uncertainty rasters: the entropy of the class probabilities "
        "divided by ln(classes) (0 sure, 1 undecided) and the margin between the best and second-best "
        "probability (low = unsure), which geodl:suggestpoints uses to pick where to label next. Each output "
        "is written to a temporary file and renamed when complete, so a cancel leaves nothing half-written. "
        "The raster is checked against the model's bands, data type and CRS units first. With a regression "
        "model the output is a float32 raster of the predicted number (nodata -9999) and, for a random-forest "
        "regressor, the 'confidence' output holds the spread of its trees (their standard deviation, in target "
        "units); both get a continuous colour ramp. Bands are matched by name (the band descriptions): bands "
        "in another order are reordered (and the log says so), conflicting names are refused; for a raster "
        "without band names, give its band order under Advanced. A time-series model maps a series: the raster "
        "is its first date and 'More dates' the others (one raster per date; dates from the file names, e.g. "
        "s2_20200518.tif, or typed in 'Dates' in the same order), or one stack with a band per date; "
        "unobserved (nodata) dates are skipped per pixel."
    )
    INPUT, MODEL, NODATA, EXTENT, BAND_ORDER = "INPUT", "MODEL", "NODATA", "EXTENT", "BAND_ORDER"
    SERIES, DATES = "SERIES", "DATES"
    OUTPUT, OUTPUT_CONFIDENCE, OUTPUT_PROBABILITIES = "OUTPUT", "OUTPUT_CONFIDENCE", "OUTPUT_PROBABILITIES"
    OUTPUT_ENTROPY, OUTPUT_MARGIN = "OUTPUT_ENTROPY", "OUTPUT_MARGIN"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Raster to classify"))
        self.addParameter(QgsProcessingParameterFile(self.MODEL, "Model file", fileFilter="GeoDL model (*.geodl)"))
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.SERIES, "More dates of a time series (time-series models)", QgsProcessing.SourceType.TypeRaster, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.DATES, "Dates of the series, in order, e.g. 2020-05-18, 2020-06-18 (empty: from the file names)", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.NODATA, "Nodata value (empty: the raster's, else the model's)", QgsProcessingParameterNumber.Type.Double, optional=True
            )
        )
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, "Only this extent", optional=True))
        band_order = QgsProcessingParameterString(
            self.BAND_ORDER, "The raster's band names in order, comma-separated (empty: its band descriptions)", optional=True
        )
        band_order.setFlags(band_order.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(band_order)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Classes"))
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT_CONFIDENCE, "Confidence", optional=True, createByDefault=True)
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT_PROBABILITIES, "Class probabilities", optional=True, createByDefault=False)
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.OUTPUT_ENTROPY, "Uncertainty: entropy (0 sure … 1 undecided)", optional=True, createByDefault=False
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.OUTPUT_MARGIN, "Uncertainty: margin (best − second-best probability)", optional=True, createByDefault=False
            )
        )
        add_option_parameters(self, TilingParams, "TILE", "Tiles (convolutional models)")

    def processAlgorithm(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        model = self.parameterAsFile(parameters, self.MODEL, context)
        nodata = parameters.get(self.NODATA)
        nodata = None if nodata in (None, "") else self.parameterAsDouble(parameters, self.NODATA, context)
        extent = None
        if parameters.get(self.EXTENT):
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
            extent = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        confidence = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE, context) or None
        probabilities = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context) or None
        series = [other.source() for other in self.parameterAsLayerList(parameters, self.SERIES, context) or []]
        dates_text = self.parameterAsString(parameters, self.DATES, context).replace(";", ",")
        dates = [d.strip() for d in dates_text.split(",") if d.strip()] or None
        params = PredictParams(
            rasters=[layer.source(), *series],
            model=model,
            dates=dates,
            output=self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            confidence_output=confidence,
            probabilities_output=probabilities,
            nodata=nodata,
            extent=extent,
            band_order=[b.strip() for b in self.parameterAsString(parameters, self.BAND_ORDER, context).split(",") if b.strip()] or None,
            tiling=read_option_parameters(self, parameters, context, TilingParams, "TILE"),
            entropy_output=self.parameterAsOutputLayer(parameters, self.OUTPUT_ENTROPY, context) or None,
            margin_output=self.parameterAsOutputLayer(parameters, self.OUTPUT_MARGIN, context) or None,
        )
        spec, info = self.run_core(feedback, lambda progress: (family_of_model(model), read_model_info(model)))
        result = self.run_core(feedback, lambda progress: run_in_worker(predict_raster, params, progress), requires=spec.requires)
        for w in result.warnings:
            self.warn(feedback, w)
        from ...layers import write_default_styles, write_value_styles

        if spec.task == "regression":
            write_value_styles(result.output, result.confidence_output)
        else:
            write_default_styles(result.output, info.classes, result.confidence_output, result.entropy_output, result.margin_output)
        feedback.pushInfo(f"{result.pixels} pixels predicted at {result.megapixels_per_second:.2f} Mpx/s")
        out = {self.OUTPUT: result.output}
        if result.confidence_output:
            out[self.OUTPUT_CONFIDENCE] = result.confidence_output
        if result.probabilities_output:
            out[self.OUTPUT_PROBABILITIES] = result.probabilities_output
        if result.entropy_output:
            out[self.OUTPUT_ENTROPY] = result.entropy_output
        if result.margin_output:
            out[self.OUTPUT_MARGIN] = result.margin_output
        return out
