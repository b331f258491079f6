"""geodl:modelcard — a model file's manifest as a STAC item with the Machine Learning Model extension."""

from __future__ import annotations

from qgis.core import QgsProcessingParameterFile, QgsProcessingParameterFileDestination

from ...core.models.model_file import read_manifest
from ...core.models.stac_item import write_stac_item
from ..base import GeoDLAlgorithm


class ModelCardAlgorithm(GeoDLAlgorithm):
    NAME = "modelcard"
    DISPLAY = "Model card (STAC MLM item)"
    GROUP = "Models"
    HELP = (
        "Writes the model file's description as a STAC item with the Machine Learning Model extension (v1.5): "
        "name, architecture, tasks, framework, input bands with their normalisation, output classes with "
        "their colours, training hyper-parameters and held-out accuracy, and the model file as an asset with "
        "the role mlm:model. Catalogues and other tools (STAC browsers, pystac, stac-model) read it. Any "
        "family, including the random forest; geodl:exportonnx writes one for the ONNX file too."
    )
    MODEL, OUTPUT = "MODEL", "OUTPUT"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFile(self.MODEL, "Model file", fileFilter="GeoDL model (*.geodl)"))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "STAC item", "JSON (*.json)"))

    def processAlgorithm(self, parameters, context, feedback):
        model = self.parameterAsFile(parameters, self.MODEL, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        path = self.run_core(feedback, lambda progress: write_stac_item(output, read_manifest(model), model_path=model))
        feedback.pushInfo(f"STAC item written to {path}")
        return {self.OUTPUT: str(path)}
