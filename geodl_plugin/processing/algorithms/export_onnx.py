"""geodl:exportonnx — a model file as ONNX for the Deepness plugin (and any ONNX runtime), optionally with a
STAC item (MLM extension) describing it."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
)

from ...core.models.onnx_export import OnnxExportParams, export_onnx
from ...core.runtime.worker import run_in_worker
from ..base import GeoDLAlgorithm


class ExportOnnxAlgorithm(GeoDLAlgorithm):
    NAME = "exportonnx"
    DISPLAY = "Export a model to ONNX (Deepness)"
    GROUP = "Models"
    REQUIRES = ("deep_learning",)
    HELP = (
        "Writes a pixel DNN or U-Net model file as an ONNX model that the Deepness plugin runs as a "
        "segmentation model: NCHW tiles in, per-class probabilities out, with Deepness' metadata (model type, "
        "class names, resolution in cm/px, tile size, tile overlap, standardisation). Deepness divides every "
        "pixel by 255; the graph multiplies by 255 again and applies the model's own normalisation, so "
        "uint16 multispectral imagery is normalised exactly as in GeoDL. The export is checked with "
        "onnxruntime against the Keras model before the file is written. Optionally also writes a STAC item "
        "with the Machine Learning Model extension (v1.5) describing the model and both files. Needs the "
        "Python packages onnx, onnxruntime and tf2onnx. Random-forest models cannot be exported."
    )
    MODEL, TILE_SIZE, OVERLAP, OUTPUT, STAC = "MODEL", "TILE_SIZE", "OVERLAP", "OUTPUT", "STAC"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFile(self.MODEL, "Model file", fileFilter="GeoDL model (*.geodl)"))
        tile = QgsProcessingParameterNumber(
            self.TILE_SIZE,
            "Tile size (pixels; a U-Net's is rounded up to 2^depth)",
            QgsProcessingParameterNumber.Type.Integer,
            256,
            minValue=16,
            maxValue=4096,
        )
        overlap = QgsProcessingParameterNumber(
            self.OVERLAP, "Tile overlap suggested to Deepness (%)", QgsProcessingParameterNumber.Type.Integer, 15, minValue=0, maxValue=49
        )
        for p in (tile, overlap):
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "ONNX model", "ONNX model (*.onnx)"))
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.STAC, "STAC item (MLM extension)", "JSON (*.json)", optional=True, createByDefault=False
            )
        )

    def processAlgorithm(self, parameters, context, feedback):
        stac = self.parameterAsFileOutput(parameters, self.STAC, context) or None
        params = OnnxExportParams(
            model=self.parameterAsFile(parameters, self.MODEL, context),
            output=self.parameterAsFileOutput(parameters, self.OUTPUT, context),
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            tiles_overlap=self.parameterAsInt(parameters, self.OVERLAP, context),
            stac_output=stac,
        )
        params.validate()  # before starting a worker: a wrong suffix or folder fails at once
        result = self.run_core(feedback, lambda progress: run_in_worker(export_onnx, params, progress))
        feedback.pushInfo(
            f"ONNX model written ({result.route}); tiles {result.tile_size} px; largest difference "
            f"from the Keras model on a check tile: {result.max_abs_difference:.1e}"
        )
        out = {self.OUTPUT: result.output}
        if result.stac_output:
            out[self.STAC] = result.stac_output
        return out
