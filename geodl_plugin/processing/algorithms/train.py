"""geodl:train — train a model of any family in the table (core/families.py) from sample TFRecords."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ...core.evaluate.reports import AccuracyReport, RegressionReport
from ...core.families import FAMILIES, train_model
from ...core.runtime.worker import run_in_worker
from ...core.train.trainer import TrainParams
from ..base import GeoDLAlgorithm
from ..option_parameters import add_option_parameters, read_option_parameters

FAMILY_LIST = list(FAMILIES.values())


class TrainAlgorithm(GeoDLAlgorithm):
    NAME = "train"
    DISPLAY = "Train a model"
    HELP = (
        "Trains a model of any geodl family (pixel DNN, random forest, U-Net, time series, and the regression "
        "families for a number per pixel from regression samples; each family's own options are "
        "under Advanced) from sample TFRecords (from 'Extract training samples' or an Earth Engine table "
        "export) and writes one shareable model file (.geodl: the Keras model or forest plus a manifest with "
        "bands, normalisation, classes, grid, metrics and provenance). A held-out split — spatially blocked by "
        "default, since neighbouring pixels inflate accuracy — is scored at the end; the held-out samples can "
        "be saved for 'Evaluate'. Normalisation is learned from the training split and stored in the model."
    )
    SAMPLES, MODEL_TYPE, EPOCHS, BATCH_SIZE, LEARNING_RATE = ("SAMPLES", "MODEL_TYPE", "EPOCHS", "BATCH_SIZE", "LEARNING_RATE")
    SPLIT, BLOCK_SIZE, TEST_FRACTION, SEED, OUTPUT, OUTPUT_TEST_SAMPLES = (
        "SPLIT",
        "BLOCK_SIZE",
        "TEST_FRACTION",
        "SEED",
        "OUTPUT",
        "OUTPUT_TEST_SAMPLES",
    )
    OVERALL_ACCURACY, KAPPA, R2, RMSE = "OVERALL_ACCURACY", "KAPPA", "R2", "RMSE"
    CLASS_NAMES, SOURCE_PIXEL_SIZE = "CLASS_NAMES", "SOURCE_PIXEL_SIZE"

    def initAlgorithm(self, config=None):
        Number = QgsProcessingParameterNumber
        self.addParameter(
            QgsProcessingParameterFile(self.SAMPLES, "Samples (TFRecord)", fileFilter="TFRecord (*.tfrecord.gz *.tfrecord *.gz)")
        )
        defaults = TrainParams(samples=[], output="")
        self.addParameter(QgsProcessingParameterEnum(self.MODEL_TYPE, "Model", [f.label for f in FAMILY_LIST], defaultValue=0))
        self.addParameter(Number(self.EPOCHS, "Epochs", Number.Type.Integer, defaults.epochs, minValue=1))
        self.addParameter(Number(self.BATCH_SIZE, "Batch size", Number.Type.Integer, defaults.batch_size, minValue=1))
        self.addParameter(Number(self.LEARNING_RATE, "Learning rate", Number.Type.Double, defaults.learning_rate, minValue=1e-7))
        self.addParameter(QgsProcessingParameterEnum(self.SPLIT, "Held-out split", ["Spatial blocks", "Random"], defaultValue=0))
        self.addParameter(Number(self.BLOCK_SIZE, "Block size (pixels)", Number.Type.Integer, 8, minValue=1))
        self.addParameter(Number(self.TEST_FRACTION, "Held-out fraction", Number.Type.Double, 0.2, minValue=0.0, maxValue=0.9))
        self.addParameter(Number(self.SEED, "Random seed", Number.Type.Integer, 42))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "Model file", "GeoDL model (*.geodl)"))
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_TEST_SAMPLES, "Held-out samples (TFRecord)", "TFRecord (*.tfrecord.gz)", optional=True, createByDefault=False
            )
        )
        for spec in FAMILY_LIST:  # every option of every family, as advanced parameters
            add_option_parameters(self, spec.params_type, spec.family.name, spec.label)
        for extra in (
            QgsProcessingParameterString(
                self.CLASS_NAMES,
                "Class names, in class-id order (samples without a .json sidecar, e.g. Earth Engine exports)",
                optional=True,
            ),
            Number(
                self.SOURCE_PIXEL_SIZE,
                "Pixel size of the source imagery (samples without a sidecar)",
                Number.Type.Double,
                optional=True,
                minValue=0.0,
            ),
        ):
            extra.setFlags(extra.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(extra)
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL_ACCURACY, "Held-out overall accuracy"))
        self.addOutput(QgsProcessingOutputNumber(self.KAPPA, "Held-out kappa"))
        self.addOutput(QgsProcessingOutputNumber(self.R2, "Held-out R² (regression)"))
        self.addOutput(QgsProcessingOutputNumber(self.RMSE, "Held-out RMSE (regression)"))

    def processAlgorithm(self, parameters, context, feedback):
        spec = FAMILY_LIST[self.parameterAsEnum(parameters, self.MODEL_TYPE, context)]
        test_out = self.parameterAsFileOutput(parameters, self.OUTPUT_TEST_SAMPLES, context) or None
        params = self.run_core(
            feedback,
            lambda progress: TrainParams(
                samples=[self.parameterAsFile(parameters, self.SAMPLES, context)],
                output=self.parameterAsFileOutput(parameters, self.OUTPUT, context),
                family=spec.family,
                options=read_option_parameters(self, parameters, context, spec.params_type, spec.family.name),
                epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
                split=("blocked", "random")[self.parameterAsEnum(parameters, self.SPLIT, context)],
                block_size_pixels=self.parameterAsInt(parameters, self.BLOCK_SIZE, context),
                test_fraction=self.parameterAsDouble(parameters, self.TEST_FRACTION, context),
                seed=self.parameterAsInt(parameters, self.SEED, context),
                test_samples_output=test_out,
                class_names=[n.strip() for n in self.parameterAsString(parameters, self.CLASS_NAMES, context).split(",") if n.strip()]
                or None,
                source_pixel_size=(
                    self.parameterAsDouble(parameters, self.SOURCE_PIXEL_SIZE, context)
                    if parameters.get(self.SOURCE_PIXEL_SIZE) not in (None, "")
                    else None
                ),
            ),
        )
        result = self.run_core(feedback, lambda progress: run_in_worker(train_model, params, progress), requires=spec.requires)
        for w in result.warnings:
            self.warn(feedback, w)
        metrics = result.metrics
        classified = metrics if isinstance(metrics, AccuracyReport) else None
        regressed = metrics if isinstance(metrics, RegressionReport) else None
        out = {
            self.OUTPUT: result.model_path,
            self.OVERALL_ACCURACY: classified.overall_accuracy if classified else None,
            self.KAPPA: classified.kappa if classified else None,
            self.R2: regressed.r2 if regressed else None,
            self.RMSE: regressed.rmse if regressed else None,
        }
        if result.test_samples_path:
            out[self.OUTPUT_TEST_SAMPLES] = result.test_samples_path
        return out
