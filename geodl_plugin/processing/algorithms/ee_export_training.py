"""geodl:eeexporttraining — labelled points sampled on an Earth Engine composite, exported as TFRecord."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..base import GeoDLAlgorithm
from .ee_composite import add_composite_parameters, add_connection_parameters, composite_params, connect

DEST_LABELS = ["Cloud Storage bucket", "Google Drive folder"]
DEST_KINDS = ["gcs", "drive"]


def add_destination_parameters(alg: GeoDLAlgorithm, default_prefix: str) -> None:
    alg.addParameter(QgsProcessingParameterEnum("DESTINATION", "Export to", options=DEST_LABELS, defaultValue=0))
    alg.addParameter(QgsProcessingParameterString("BUCKET", "Cloud Storage bucket", defaultValue="", optional=True))
    alg.addParameter(QgsProcessingParameterString("FOLDER", "Drive folder", defaultValue="geodl", optional=True))
    alg.addParameter(QgsProcessingParameterString("PREFIX", "File name prefix", defaultValue=default_prefix))


def add_download_parameter(alg: GeoDLAlgorithm) -> None:
    alg.addParameter(
        QgsProcessingParameterFolderDestination(
            "DOWNLOAD_FOLDER",
            "Wait for the export and download it here (Cloud Storage; empty: only start it)",
            optional=True,
            createByDefault=False,
        )
    )


def wait_and_download_exports(alg: GeoDLAlgorithm, parameters, context, feedback, started: list) -> list[str]:
    """The task monitor: poll the started exports (Processing's task shows their progress; cancelling it
    cancels them on Earth Engine), then fetch the Cloud Storage files into the chosen folder."""
    folder = alg.parameterAsString(parameters, "DOWNLOAD_FOLDER", context).strip()
    if not folder or folder == "TEMPORARY_OUTPUT":
        return []
    from ...core.earthengine.monitor import wait_and_download

    paths = alg.run_core(feedback, lambda progress: wait_and_download(started, folder, progress=progress))
    feedback.pushInfo(f"Downloaded {len(paths)} file(s) into {folder}.")
    return [str(p) for p in paths]


def destination(alg: GeoDLAlgorithm, parameters, context):
    from ...core.earthengine.exports import Destination

    return Destination(
        kind=DEST_KINDS[alg.parameterAsEnum(parameters, "DESTINATION", context)],
        bucket=alg.parameterAsString(parameters, "BUCKET", context).strip(),
        folder=alg.parameterAsString(parameters, "FOLDER", context).strip(),
        prefix=alg.parameterAsString(parameters, "PREFIX", context).strip(),
    )


class EEExportTrainingAlgorithm(GeoDLAlgorithm):
    NAME = "eeexporttraining"
    DISPLAY = "Earth Engine export training samples"
    GROUP = "Earth Engine"
    REQUIRES = ("earth_engine",)
    HELP = (
        "Samples an Earth Engine composite at labelled points (sampleRegions) — single pixels, or k×k patches "
        "(neighborhoodToArray) — and starts TFRecord table exports to Cloud Storage or Drive with one float "
        "feature per band and the label as 'class': the same format as 'Extract training samples', so the "
        "files train locally as they are. Large point sets are split into several exports that stay within "
        "Earth Engine's limits. Samples are taken on the region's UTM grid at the pixel size (whole pixels, "
        "the grid of 'Earth Engine direct download'); masked pixels carry -9999, and the downloaded files get "
        "a sidecar with that nodata and the grid, so training leaves them out and the model records the grid. "
        "Returns the started task ids; watch them in the task monitor."
    )
    INPUT, CLASS_FIELD, PATCH_SIZE, SCALE, TASK_IDS = "INPUT", "CLASS_FIELD", "PATCH_SIZE", "SCALE", "TASK_IDS"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFeatureSource(self.INPUT, "Labelled points", [QgsProcessing.SourceType.TypeVectorPoint]))
        self.addParameter(
            QgsProcessingParameterField(
                self.CLASS_FIELD,
                "Class field (numeric)",
                parentLayerParameterName=self.INPUT,
                type=QgsProcessingParameterField.DataType.Numeric,
            )
        )
        add_connection_parameters(self)
        add_composite_parameters(self, "Composite region")
        self.addParameter(
            QgsProcessingParameterNumber(
                self.PATCH_SIZE,
                "Patch size (1 = pixels; odd)",
                QgsProcessingParameterNumber.Type.Integer,
                1,
                minValue=1,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.SCALE, "Pixel size (m)", QgsProcessingParameterNumber.Type.Double, 10.0, minValue=0.01)
        )
        add_destination_parameters(self, "geodl/training")
        add_download_parameter(self)
        self.addOutput(QgsProcessingOutputString(self.TASK_IDS, "Earth Engine task ids (comma-separated)"))

    def processAlgorithm(self, parameters, context, feedback):
        from ...core.earthengine import composites, exports

        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException("The labelled points layer cannot be read.")
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        transform = QgsCoordinateTransform(source.sourceCrs(), wgs84, context.transformContext())
        points, skipped = [], 0
        for feature in source.getFeatures():
            value = feature[field]
            geometry = feature.geometry()
            if value is None or geometry.isNull() or str(value) == "NULL":
                skipped += 1
                continue
            geometry.transform(transform)
            for part in geometry.constParts():
                points.append(exports.LabelledPoint(part.x(), part.y(), float(value)))
        if skipped:
            self.warn(feedback, f"{skipped} point(s) without a class or geometry were left out.")
        from ...core.earthengine.grid import region_grid

        params = composite_params(self, parameters, context)
        scale = self.parameterAsDouble(parameters, self.SCALE, context)
        export_params = exports.TrainingExportParams(
            bands=params.output_bands(),
            scale=scale,
            destination=destination(self, parameters, context),
            patch_size=self.parameterAsInt(parameters, self.PATCH_SIZE, context),
            grid=region_grid(params.region, scale),  # the grid 'direct download' of the region uses
        )

        def work(progress):
            export_params.validate()
            connect(self, parameters, context)
            image = composites.build_composite(params)
            return exports.export_training_samples(image, points, export_params, progress)

        started = self.run_core(feedback, work)
        for s in started:
            feedback.pushInfo(f"Started {s.task_id}: {s.destination.kind} {s.destination.bucket or s.destination.folder}/{s.prefix}")
        wait_and_download_exports(self, parameters, context, feedback, started)
        return {self.TASK_IDS: ",".join(s.task_id for s in started)}
