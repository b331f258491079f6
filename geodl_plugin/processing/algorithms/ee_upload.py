"""geodl:eeupload — a prediction raster ingested back into Earth Engine as an image asset: a GeoTIFF on any
grid, or predictions on an image export's grid sent as TFRecord patches with the export's mixer."""

from __future__ import annotations

import tempfile
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..base import GeoDLAlgorithm
from .ee_composite import add_connection_parameters, connect

PYRAMIDING = ["MODE", "MEAN", "SAMPLE", "MIN", "MAX"]


class EEUploadAlgorithm(GeoDLAlgorithm):
    NAME = "eeupload"
    DISPLAY = "Earth Engine upload predictions"
    GROUP = "Earth Engine"
    REQUIRES = ("earth_engine", "rasters")
    HELP = (
        "Creates an Earth Engine image asset from a prediction raster. Without a mixer, the raster (a GeoTIFF on "
        "any grid, e.g. geodl:predict's class map) is copied to a Cloud Storage bucket and ingested as it is; its "
        "nodata becomes the asset's missing data and band names default to the band descriptions. With an image "
        "export's PREFIX-mixer.json, the raster (made on that export's grid) is written as TFRecord patches in "
        "the mixer's order (margins cropped) and ingested with the mixer. Use the MODE pyramiding policy for "
        "class maps (the default) and MEAN for probabilities. Needs google-cloud-storage and application-default "
        "credentials (`gcloud auth application-default login`) for the bucket."
    )
    INPUT, MIXER, ASSET, BUCKET, PREFIX, BAND_NAMES, POLICY, OVERWRITE, TASK_ID = (
        "INPUT",
        "MIXER",
        "ASSET_ID",
        "BUCKET",
        "PREFIX",
        "BAND_NAMES",
        "PYRAMIDING",
        "OVERWRITE",
        "TASK_ID",
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Predictions (on the export's grid)"))
        self.addParameter(
            QgsProcessingParameterFile(
                self.MIXER,
                "The export's PREFIX-mixer.json (only for predictions on an image export's grid)",
                behavior=QgsProcessingParameterFile.Behavior.File,
                extension="json",
                optional=True,
            )
        )
        add_connection_parameters(self)
        self.addParameter(QgsProcessingParameterString(self.ASSET, "Asset id (e.g. geodl/landcover_2023)"))
        self.addParameter(QgsProcessingParameterString(self.BUCKET, "Cloud Storage bucket for the upload"))
        self.addParameter(QgsProcessingParameterString(self.PREFIX, "Folder in the bucket", defaultValue="geodl-upload"))
        self.addParameter(
            QgsProcessingParameterString(
                self.BAND_NAMES, "Band names, comma-separated (default: the band descriptions, or 'class')", defaultValue="", optional=True
            )
        )
        self.addParameter(QgsProcessingParameterEnum(self.POLICY, "Pyramiding policy", options=PYRAMIDING, defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean(self.OVERWRITE, "Overwrite an existing asset", False))
        self.addOutput(QgsProcessingOutputString(self.TASK_ID, "Earth Engine task id"))

    def processAlgorithm(self, parameters, context, feedback):
        from ...core.earthengine import mixer, upload

        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException("The predictions raster cannot be read.")
        raster = layer.source()
        mixer_path = self.parameterAsFile(parameters, self.MIXER, context)
        names = [n.strip() for n in self.parameterAsString(parameters, self.BAND_NAMES, context).split(",") if n.strip()]
        asset = self.parameterAsString(parameters, self.ASSET, context)
        bucket = self.parameterAsString(parameters, self.BUCKET, context).strip()
        prefix = self.parameterAsString(parameters, self.PREFIX, context).strip()
        policy = PYRAMIDING[self.parameterAsEnum(parameters, self.POLICY, context)]
        overwrite = self.parameterAsBool(parameters, self.OVERWRITE, context)

        def work(progress):
            connect(self, parameters, context)
            if not mixer_path:
                return upload.upload_geotiff(raster, asset, bucket, prefix, names or None, policy, overwrite, progress=progress)
            with tempfile.TemporaryDirectory(prefix="geodl-upload-") as tmp:
                stem = Path(mixer_path).name[: -len("-mixer.json")] if mixer_path.endswith("-mixer.json") else "predictions"
                band_names = names or ["class"]
                records = mixer.raster_to_upload_tfrecord(
                    raster, mixer_path, Path(tmp) / f"{stem}.tfrecord.gz", band_names, progress.sub(0, 40)
                )
                return upload.upload_predictions(
                    records,
                    mixer_path,
                    asset,
                    bucket,
                    band_names,
                    prefix,
                    policy,
                    overwrite,
                    progress=progress.sub(40, 100),
                    missing_data=mixer.upload_nodata(raster),
                )

        task_id = self.run_core(feedback, work)
        feedback.pushInfo(f"Started ingestion task {task_id}.")
        return {self.TASK_ID: task_id}
