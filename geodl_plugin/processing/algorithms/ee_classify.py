"""geodl:eeclassify — a pixel model (DNN or random forest) run inside Earth Engine over a region of any size."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsRasterLayer,
)

from ..base import GeoDLAlgorithm
from .ee_composite import add_composite_parameters, add_connection_parameters, composite_params, connect
from .ee_export_training import add_destination_parameters, destination

OUTPUT_LABELS = ["Earth Engine asset", "Cloud Storage GeoTIFF", "Google Drive GeoTIFF"]
OUTPUT_KINDS = ["asset", "gcs", "drive"]


class EEClassifyAlgorithm(GeoDLAlgorithm):
    NAME = "eeclassify"
    DISPLAY = "Earth Engine classify (model run inside Earth Engine)"
    GROUP = "Earth Engine"
    REQUIRES = ("earth_engine",)
    HELP = (
        "Classifies a region of any size — a county or a country — inside Earth Engine with a geodl pixel DNN "
        "or random forest: the DNN is written as Earth Engine array operations (normalisation, dense layers as "
        "matrix products, softmax), the forest as Earth Engine decision trees, and both give the same classes "
        "as the model does locally. Nothing to deploy and no cost beyond Earth Engine's. Build the composite "
        "exactly as for the model's training data (same sensor, bands and indices): a composite with other "
        "bands, or a model trained on integer DNs, is refused. The result (bands 'class' with the model's class "
        "ids and 'confidence' in per cent) goes to an asset or a GeoTIFF export watched until it ends when "
        "'Wait' is on; a tile layer shows it at once. A U-Net whose Vertex AI endpoint is recorded in its model "
        "file (geodl:exportsavedmodel) is run through that endpoint (ee.Model.fromVertexAi), with an estimate "
        "of requests, node-hours and cost first."
    )
    MODEL, SCALE, CRS, OUTPUT, ASSET_ID, PROBABILITIES, WAIT, LOAD = (
        "MODEL",
        "SCALE",
        "CRS",
        "OUTPUT",
        "ASSET_ID",
        "PROBABILITIES",
        "WAIT",
        "LOAD",
    )
    TASK_ID, TILE_URL = "TASK_ID", "TILE_URL"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFile(self.MODEL, "Model file (.geodl: pixel DNN or random forest)", extension="geodl"))
        add_connection_parameters(self)
        add_composite_parameters(self, "Region to classify (any size)")
        self.addParameter(
            QgsProcessingParameterNumber(self.SCALE, "Pixel size (m)", QgsProcessingParameterNumber.Type.Double, 10.0, minValue=0.01)
        )
        self.addParameter(QgsProcessingParameterCrs(self.CRS, "Output CRS", "EPSG:4326"))
        self.addParameter(QgsProcessingParameterEnum(self.OUTPUT, "Output", options=OUTPUT_LABELS, defaultValue=0))
        self.addParameter(
            QgsProcessingParameterString(self.ASSET_ID, "Asset id (projects/<project>/assets/<name>)", defaultValue="", optional=True)
        )
        add_destination_parameters(self, "geodl/classification")
        probabilities = QgsProcessingParameterBoolean(self.PROBABILITIES, "Also per-class probabilities (asset only)", False)
        probabilities.setFlags(probabilities.flags() | probabilities.Flag.FlagAdvanced)
        self.addParameter(probabilities)
        self.addParameter(QgsProcessingParameterBoolean(self.WAIT, "Wait until the Earth Engine task ends", False))
        self.addParameter(QgsProcessingParameterBoolean(self.LOAD, "Add a tile layer of the result", True))
        self.addOutput(QgsProcessingOutputString(self.TASK_ID, "Earth Engine task id"))
        self.addOutput(QgsProcessingOutputString(self.TILE_URL, "Tile URL template"))

    def processAlgorithm(self, parameters, context, feedback):
        from ...core.earthengine import classification, composites, monitor
        from ...core.earthengine.native import native_model_from_file
        from ...core.earthengine.vertex import VertexModel, estimate

        comp = composite_params(self, parameters, context)
        crs = self.parameterAsCrs(parameters, self.CRS, context)
        kind = OUTPUT_KINDS[self.parameterAsEnum(parameters, self.OUTPUT, context)]
        params = classification.ClassifyParams(
            region=comp.region,
            scale=self.parameterAsDouble(parameters, self.SCALE, context),
            output=kind,
            asset_id=self.parameterAsString(parameters, self.ASSET_ID, context).strip(),
            destination=None if kind == "asset" else destination(self, parameters, context),
            crs=crs.authid() if crs.isValid() else QgsCoordinateReferenceSystem("EPSG:4326").authid(),
            probabilities=self.parameterAsBool(parameters, self.PROBABILITIES, context),
        )
        model_path = self.parameterAsFile(parameters, self.MODEL, context)

        def work(progress):
            params.validate()
            comp.validate()
            bundle, model = native_model_from_file(model_path)  # the DNN's weights come from the worker
            progress.update(10, f"About {params.pixels():,} pixels at {params.scale:g} m")
            if isinstance(model, VertexModel):  # a deployed model: what it will cost, before it starts
                progress.message("Vertex AI: " + estimate(params.region, params.scale, model.plan, model.seconds_per_tile).text())
            connect(self, parameters, context)
            image = composites.build_composite(comp)
            bands = comp.output_bands()
            started = classification.start_classification(bundle, image, bands, params, progress, model=model)
            url = classification.classification_tile_url(bundle, image, bands, model=model)
            return started, url

        started, url = self.run_core(feedback, work)
        feedback.pushInfo(f"Started Earth Engine task {started.task_id} ({params.pixels():,} pixels).")
        if self.parameterAsBool(parameters, self.WAIT, context):
            status = self.run_core(feedback, lambda progress: monitor.wait_for_tasks([started.operation], progress))
            feedback.pushInfo(f"Task {started.task_id}: {status[0].state}.")
        self._uri = composites.xyz_layer_uri(url)
        self._load = self.parameterAsBool(parameters, self.LOAD, context)
        return {self.TASK_ID: started.task_id, self.TILE_URL: url}

    def postProcessAlgorithm(self, context, feedback):
        if getattr(self, "_load", False) and context.project() is not None:
            layer = QgsRasterLayer(self._uri, "EE classification", "wms")
            if layer.isValid():
                context.project().addMapLayer(layer)
            else:
                feedback.reportError("The tile layer could not be created; the URL is in the output.", False)
        return {}
