"""geodl:rasterizemask — labelled polygons or points burnt onto a raster's grid as a segmentation mask."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
)

from ...core.data.chips import rasterize_mask
from ...core.data.labels import read_labels
from ...core.io.raster import raster_info
from ..base import GeoDLAlgorithm


class RasterizeMaskAlgorithm(GeoDLAlgorithm):
    NAME = "rasterizemask"
    DISPLAY = "Rasterize labels to a mask"
    GROUP = "Segmentation"
    HELP = (
        "Burns labelled polygons (or points, one pixel each: sparse labels) onto exactly the grid of the "
        "raster, as a uint8 GeoTIFF mask: the class id where a label lies, 255 (unlabelled, ignored by the "
        "U-Net's loss) elsewhere. Labels in another CRS are reprojected. A JSON sidecar keeps the class "
        "names and colours. An empty mask (no label on any pixel) is an error. Cut chips from the image and "
        "this mask with geodl:chip."
    )
    INPUT, LABELS, CLASS_FIELD, ALL_TOUCHED, OUTPUT = "INPUT", "LABELS", "CLASS_FIELD", "ALL_TOUCHED", "OUTPUT"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Raster whose grid the mask takes"))
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                self.LABELS,
                "Labelled polygons or points",
                [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint],
            )
        )
        self.addParameter(QgsProcessingParameterField(self.CLASS_FIELD, "Class field", parentLayerParameterName=self.LABELS))
        self.addParameter(
            QgsProcessingParameterBoolean(self.ALL_TOUCHED, "Burn every pixel a polygon touches (not only pixel centres inside)", False)
        )
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "Mask", "GeoTIFF (*.tif)"))

    def processAlgorithm(self, parameters, context, feedback):
        raster = self.parameterAsRasterLayer(parameters, self.INPUT, context).source()
        path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, self.LABELS, context, ["gpkg", "shp"], "gpkg", feedback
        )
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
        all_touched = self.parameterAsBoolean(parameters, self.ALL_TOUCHED, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)

        def work(progress):
            info = raster_info(raster)
            labels = read_labels(path, field, layer=layer_name or None, target_crs_wkt=info.crs_wkt)
            return rasterize_mask(raster, labels, output, all_touched=all_touched, progress=progress)

        report = self.run_core(feedback, work)
        for w in report.warnings:
            self.warn(feedback, w)
        feedback.pushInfo(f"{report.labelled_pixels} labelled pixels: " + ", ".join(f"{k} {v}" for k, v in report.per_class.items()))
        return {self.OUTPUT: output}
