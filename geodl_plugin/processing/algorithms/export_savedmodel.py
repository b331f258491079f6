"""geodl:exportsavedmodel — a convolutional model as a Vertex AI SavedModel Earth Engine can call."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingOutputString,
    QgsProcessingParameterCrs,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..base import GeoDLAlgorithm


class ExportSavedModelAlgorithm(GeoDLAlgorithm):
    NAME = "exportsavedmodel"
    DISPLAY = "Export a model for Vertex AI (Earth Engine hosted model)"
    GROUP = "Earth Engine"
    REQUIRES = ("deep_learning",)
    HELP = (
        "Writes a TensorFlow SavedModel of a U-Net (or other convolutional) model whose serving signature "
        "answers Earth Engine's default request format (SERIALIZED_TF_TENSORS: one base64 tensor per band; "
        "per-pixel class probabilities back; normalisation inside the model). It measures the network's "
        "receptive-field margin and picks the largest tile whose requests stay under Vertex AI's 1.5 MB, then "
        "prints the gcloud commands that upload and deploy it, and an estimate (tiles, requests, node-hours, "
        "cost) for the region. After deploying, run it again with the endpoint name to record it in the model "
        "file: 'Earth Engine classify' then classifies through the endpoint (ee.Model.fromVertexAi)."
    )
    MODEL, OUTPUT, PROJECT, REGION, BUCKET, EXTENT, SCALE, CRS, ENDPOINT = (
        "MODEL",
        "OUTPUT",
        "PROJECT",
        "REGION",
        "BUCKET",
        "EXTENT",
        "SCALE",
        "CRS",
        "ENDPOINT",
    )
    COMMANDS, ESTIMATE = "COMMANDS", "ESTIMATE"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFile(self.MODEL, "Model file (.geodl, U-Net)", extension="geodl"))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "SavedModel folder"))
        self.addParameter(QgsProcessingParameterString(self.PROJECT, "Google Cloud project", defaultValue="my-project"))
        self.addParameter(QgsProcessingParameterString(self.REGION, "Vertex AI region", defaultValue="us-central1"))
        self.addParameter(QgsProcessingParameterString(self.BUCKET, "Cloud Storage bucket for the model", defaultValue="my-bucket"))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, "Region to estimate for", optional=True))
        self.addParameter(
            QgsProcessingParameterNumber(self.SCALE, "Pixel size (m)", QgsProcessingParameterNumber.Type.Double, 10.0, minValue=0.01)
        )
        self.addParameter(QgsProcessingParameterCrs(self.CRS, "Projection of the requests", "EPSG:3857"))
        self.addParameter(
            QgsProcessingParameterString(self.ENDPOINT, "Deployed endpoint to record (projects/…/locations/…/endpoints/…)", optional=True)
        )
        self.addOutput(QgsProcessingOutputString(self.COMMANDS, "gcloud commands"))
        self.addOutput(QgsProcessingOutputString(self.ESTIMATE, "Estimate"))

    def processAlgorithm(self, parameters, context, feedback):
        from ...core.earthengine import vertex
        from ...core.runtime.worker import run_in_worker

        model = self.parameterAsFile(parameters, self.MODEL, context)
        output = self.parameterAsString(parameters, self.OUTPUT, context)
        project = self.parameterAsString(parameters, self.PROJECT, context).strip()
        region_name = self.parameterAsString(parameters, self.REGION, context).strip()
        bucket = self.parameterAsString(parameters, self.BUCKET, context).strip().removeprefix("gs://")
        scale = self.parameterAsDouble(parameters, self.SCALE, context)
        crs = self.parameterAsCrs(parameters, self.CRS, context)
        endpoint = self.parameterAsString(parameters, self.ENDPOINT, context).strip()
        extent = self.parameterAsExtent(parameters, self.EXTENT, context, QgsCoordinateReferenceSystem("EPSG:4326"))

        # TensorFlow runs in the worker process (it cannot load inside QGIS).
        info = self.run_core(
            feedback, lambda progress: run_in_worker(vertex.export_savedmodel, progress=progress, model=model, output=output)
        )
        plan = vertex.TilePlan(
            info["tile"], info["overlap"], info["request_bytes"], info["response_bytes"], info["margin"], info["divisor"]
        )
        feedback.pushInfo(
            f"SavedModel in {output}: tiles of {plan.tile} px + {plan.overlap} px overlap "
            f"(receptive field {plan.margin} px); requests {plan.request_bytes / 1e6:.2f} MB, "
            f"answers {plan.response_bytes / 1e6:.2f} MB; {info['seconds_per_tile']:.2f} s a tile here."
        )
        name = model.rsplit("/", 1)[-1].removesuffix(".geodl").replace(".", "_") or "geodl"
        commands = "\n".join(vertex.deploy_commands(output, project, region_name, bucket, name))
        feedback.pushInfo("Deploy with:\n" + commands)
        text = ""
        if not extent.isNull() and not extent.isEmpty():
            region = (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum())
            text = vertex.estimate(region, scale, plan, info["seconds_per_tile"]).text()
            feedback.pushInfo("Estimate: " + text)
        if endpoint:
            recorded = {
                **{k: info[k] for k in ("tile", "overlap", "request_bytes", "response_bytes", "margin", "divisor", "seconds_per_tile")},
                "crs": crs.authid() if crs.isValid() else "EPSG:3857",
                "scale": scale,
            }
            self.run_core(feedback, lambda progress: vertex.record_endpoint(model, endpoint, recorded))
            feedback.pushInfo(f"Recorded {endpoint} in {model}.")
        return {self.OUTPUT: output, self.COMMANDS: commands, self.ESTIMATE: text}
