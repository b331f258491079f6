"""geodl:train — train a pixel DNN, a random forest or a U-Net from sample TFRecords."""

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

from ...core.models.networks import MODEL_TYPES
from ...core.runtime.errors import GeoDLError
from ...core.runtime.worker import call_in_worker
from ...core.train.trainer import TrainParams
from ..base import GeoDLAlgorithm

MODEL_LABELS = ["Pixel DNN (Keras)", "Random forest (scikit-learn)", "U-Net (Keras, patches)"]


class TrainAlgorithm(GeoDLAlgorithm):
    NAME = "train"
    DISPLAY = "Train a model"
    HELP = ("Trains a classifier from sample TFRecords (from 'Extract training samples' or an Earth Engine table "
            "export) and writes one shareable model file (.geodl: the Keras model or forest plus a manifest with "
            "bands, normalisation, classes, grid, metrics and provenance). A held-out split — spatially blocked by "
            "default, since neighbouring pixels inflate accuracy — is scored at the end; the held-out samples can "
            "be saved for 'Evaluate'. Normalisation is learned from the training split and stored in the model.")
    SAMPLES, MODEL_TYPE, EPOCHS, BATCH_SIZE, HIDDEN_UNITS, DROPOUT, LEARNING_RATE = (
        "SAMPLES", "MODEL_TYPE", "EPOCHS", "BATCH_SIZE", "HIDDEN_UNITS", "DROPOUT", "LEARNING_RATE")
    SPLIT, BLOCK_SIZE, TEST_FRACTION, SEED, OUTPUT, OUTPUT_TEST_SAMPLES = (
        "SPLIT", "BLOCK_SIZE", "TEST_FRACTION", "SEED", "OUTPUT", "OUTPUT_TEST_SAMPLES")
    OVERALL_ACCURACY, KAPPA = "OVERALL_ACCURACY", "KAPPA"
    CLASS_NAMES, SOURCE_PIXEL_SIZE = "CLASS_NAMES", "SOURCE_PIXEL_SIZE"

    def initAlgorithm(self, config=None):
        Number = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterFile(
            self.SAMPLES, "Samples (TFRecord)", fileFilter="TFRecord (*.tfrecord.gz *.tfrecord *.gz)"))
        self.addParameter(QgsProcessingParameterEnum(self.MODEL_TYPE, "Model", MODEL_LABELS, defaultValue=0))
        self.addParameter(Number(self.EPOCHS, "Epochs", Number.Type.Integer, 50, minValue=1))
        self.addParameter(Number(self.BATCH_SIZE, "Batch size", Number.Type.Integer, 64, minValue=1))
        self.addParameter(QgsProcessingParameterString(self.HIDDEN_UNITS, "Hidden units per layer (DNN)", "64"))
        self.addParameter(Number(self.DROPOUT, "Dropout (DNN)", Number.Type.Double, 0.2, minValue=0.0, maxValue=0.9))
        self.addParameter(Number(self.LEARNING_RATE, "Learning rate", Number.Type.Double, 0.001, minValue=0.0))
        self.addParameter(QgsProcessingParameterEnum(self.SPLIT, "Held-out split", ["Spatial blocks", "Random"],
                                                     defaultValue=0))
        self.addParameter(Number(self.BLOCK_SIZE, "Block size (pixels)", Number.Type.Integer, 8, minValue=1))
        self.addParameter(Number(self.TEST_FRACTION, "Held-out fraction", Number.Type.Double, 0.2, minValue=0.0,
                                 maxValue=0.9))
        self.addParameter(Number(self.SEED, "Random seed", Number.Type.Integer, 42))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "Model file", "GeoDL model (*.geodl)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_TEST_SAMPLES, "Held-out samples (TFRecord)", "TFRecord (*.tfrecord.gz)", optional=True,
            createByDefault=False))
        for extra in (
            QgsProcessingParameterString(
                self.CLASS_NAMES, "Class names, in class-id order (samples without a .json sidecar, e.g. Earth "
                "Engine exports)", optional=True),
            Number(self.SOURCE_PIXEL_SIZE, "Pixel size of the source imagery (samples without a sidecar)",
                   Number.Type.Double, optional=True, minValue=0.0)):
            extra.setFlags(extra.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(extra)
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL_ACCURACY, "Held-out overall accuracy"))
        self.addOutput(QgsProcessingOutputNumber(self.KAPPA, "Held-out kappa"))

    def processAlgorithm(self, parameters, context, feedback):
        model_type = MODEL_TYPES[self.parameterAsEnum(parameters, self.MODEL_TYPE, context)]
        units_text = self.parameterAsString(parameters, self.HIDDEN_UNITS, context)
        try:
            units = tuple(int(u) for u in units_text.replace(" ", "").split(","))
        except ValueError as exc:
            raise GeoDLError(f"Hidden units '{units_text}' must be whole numbers separated by commas, e.g. 64,32.") from exc
        test_out = self.parameterAsFileOutput(parameters, self.OUTPUT_TEST_SAMPLES, context) or None
        params = TrainParams(
            samples=[self.parameterAsFile(parameters, self.SAMPLES, context)],
            output=self.parameterAsFileOutput(parameters, self.OUTPUT, context),
            model_type=model_type,
            hidden_units=units,
            dropout=self.parameterAsDouble(parameters, self.DROPOUT, context),
            epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            split=("blocked", "random")[self.parameterAsEnum(parameters, self.SPLIT, context)],
            block_size_pixels=self.parameterAsInt(parameters, self.BLOCK_SIZE, context),
            test_fraction=self.parameterAsDouble(parameters, self.TEST_FRACTION, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            test_samples_output=test_out,
            class_names=[n.strip() for n in self.parameterAsString(parameters, self.CLASS_NAMES, context).split(",")
                         if n.strip()] or None,
            source_pixel_size=(self.parameterAsDouble(parameters, self.SOURCE_PIXEL_SIZE, context)
                               if parameters.get(self.SOURCE_PIXEL_SIZE) not in (None, "") else None),
        )
        needs = ("classic_ml",) if model_type == "rf" else ("deep_learning",)
        result = self.run_core(feedback, lambda progress: call_in_worker("train_model", params, progress),
                               requires=needs)
        for w in result.warnings:
            self.warn(feedback, w)
        metrics = result.metrics
        out = {self.OUTPUT: result.model_path, self.OVERALL_ACCURACY: metrics.get("overall_accuracy"),
               self.KAPPA: metrics.get("kappa")}
        if result.test_samples_path:
            out[self.OUTPUT_TEST_SAMPLES] = result.test_samples_path
        return out
