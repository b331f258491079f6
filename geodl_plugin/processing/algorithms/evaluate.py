"""geodl:evaluate — accuracy report of a model on samples, or of a map against reference points."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
)

from ...core.data.labels import read_labels
from ...core.evaluate.accuracy import evaluate_map
from ...core.evaluate.metrics import save_report
from ...core.evaluate.regression_metrics import save_regression_report
from ...core.evaluate.reports import AccuracyReport, RegressionReport
from ...core.families import evaluate_model
from ...core.models.model_file import read_model_info
from ...core.runtime.errors import GeoDLError
from ...core.runtime.worker import run_in_worker
from ..base import GeoDLAlgorithm


class EvaluateAlgorithm(GeoDLAlgorithm):
    NAME = "evaluate"
    DISPLAY = "Evaluate accuracy"
    HELP = (
        "Scores a model on labelled samples (e.g. the held-out samples saved by 'Train a model'): confusion "
        "matrix, overall accuracy, kappa, per-class precision, recall, F1 and IoU, as JSON and a PNG plot. "
        "Given a classified map and reference points instead (or as well), it scores the map and adds the "
        "area-adjusted estimates of Olofsson et al. (2014): estimated area per class with a 95% confidence "
        "interval, user's and producer's accuracy. A regression model (a number per pixel) is scored on its "
        "samples with RMSE, MAE, R² and bias, and the plot is predicted against observed."
    )
    MODEL, SAMPLES, CLASSIFIED, REFERENCE, REFERENCE_FIELD = "MODEL", "SAMPLES", "CLASSIFIED", "REFERENCE", "REFERENCE_FIELD"
    OUTPUT, OUTPUT_PLOT, OVERALL_ACCURACY, KAPPA = "OUTPUT", "OUTPUT_PLOT", "OVERALL_ACCURACY", "KAPPA"
    R2, RMSE = "R2", "RMSE"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFile(self.MODEL, "Model file", fileFilter="GeoDL model (*.geodl)", optional=True))
        self.addParameter(
            QgsProcessingParameterFile(
                self.SAMPLES, "Labelled samples (TFRecord)", optional=True, fileFilter="TFRecord (*.tfrecord.gz *.tfrecord *.gz)"
            )
        )
        self.addParameter(QgsProcessingParameterRasterLayer(self.CLASSIFIED, "Classified map", optional=True))
        self.addParameter(
            QgsProcessingParameterVectorLayer(self.REFERENCE, "Reference points", [QgsProcessing.SourceType.TypeVectorPoint], optional=True)
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.REFERENCE_FIELD, "Reference class field", parentLayerParameterName=self.REFERENCE, optional=True
            )
        )
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "Report (JSON)", "JSON (*.json)"))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_PLOT, "Confusion matrix (PNG)", "PNG (*.png)", optional=True))
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL_ACCURACY, "Overall accuracy"))
        self.addOutput(QgsProcessingOutputNumber(self.KAPPA, "Kappa"))
        self.addOutput(QgsProcessingOutputNumber(self.R2, "R² (regression)"))
        self.addOutput(QgsProcessingOutputNumber(self.RMSE, "RMSE (regression)"))

    def processAlgorithm(self, parameters, context, feedback):
        model = self.parameterAsFile(parameters, self.MODEL, context)
        samples = self.parameterAsFile(parameters, self.SAMPLES, context)
        classified = self.parameterAsRasterLayer(parameters, self.CLASSIFIED, context)
        reference = self.parameterAsVectorLayer(parameters, self.REFERENCE, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        plot = self.parameterAsFileOutput(parameters, self.OUTPUT_PLOT, context) or None
        if not ((model and samples) or (classified and reference)):
            raise GeoDLError("Give a model file and samples, or a classified map and reference points (or both).")
        ref_path = ref_layer = field = ""
        if classified and reference:
            ref_path, ref_layer = self.parameterAsCompatibleSourceLayerPathAndLayerName(
                parameters, self.REFERENCE, context, ["gpkg", "shp"], "gpkg", feedback
            )
            field = self.parameterAsString(parameters, self.REFERENCE_FIELD, context)
            if not field:
                raise GeoDLError("Choose the reference points' class field.")

        def work(progress) -> AccuracyReport | RegressionReport:
            on_samples: AccuracyReport | None = None
            classes = None
            if model and samples:
                scored = run_in_worker(evaluate_model, None, progress.sub(0, 50), model=model, samples=[samples])
                if isinstance(scored, RegressionReport):
                    save_regression_report(scored, output, plot)
                    return scored
                on_samples, classes = scored, read_model_info(model).classes
            if not (classified and reference):
                assert on_samples is not None  # checked above: a model and samples, or a map and points
                save_report(on_samples, output, plot)
                return on_samples
            from ...core.evaluate.accuracy import map_class_table
            from ...core.io.raster import raster_info

            classes = classes or map_class_table(classified.source())
            labels = read_labels(
                ref_path, field, layer=ref_layer or None, target_crs_wkt=raster_info(classified.source()).crs_wkt, classes=classes
            )
            report = evaluate_map(classified.source(), labels, progress.sub(50, 100), classes)
            report.on_samples = on_samples
            save_report(report, output, plot)
            return report

        report = self.run_core(feedback, work)
        nested = report.on_samples.warnings if isinstance(report, AccuracyReport) and report.on_samples else []
        for w in report.warnings + nested:
            self.warn(feedback, w)
        feedback.pushInfo(report.summary())
        if isinstance(report, RegressionReport):
            return {self.OUTPUT: output, self.R2: report.r2, self.RMSE: report.rmse, self.OUTPUT_PLOT: plot}
        out = {self.OUTPUT: output, self.OVERALL_ACCURACY: report.overall_accuracy, self.KAPPA: report.kappa}
        if plot:
            out[self.OUTPUT_PLOT] = plot
        return out
