"""geodl:samplepoints — stratified random points inside labelled polygons."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterVectorLayer,
)

from ...core.data.labels import read_labels, write_points
from ...core.data.point_sampling import sample_points_in_polygons
from ..base import GeoDLAlgorithm


class SamplePointsAlgorithm(GeoDLAlgorithm):
    NAME = "samplepoints"
    DISPLAY = "Sample points in labelled polygons"
    HELP = (
        "Draws stratified random points inside labelled polygons: the same number per class, at least a "
        "minimum distance apart, reproducible with a seed. A class whose polygons are too small for that "
        "many points gets fewer, with a warning naming it. The output points carry the class name "
        "(field class_name) and id (class_id) and feed 'Extract training samples'."
    )
    INPUT, CLASS_FIELD, PER_CLASS, MIN_DISTANCE, SEED, OUTPUT = ("INPUT", "CLASS_FIELD", "PER_CLASS", "MIN_DISTANCE", "SEED", "OUTPUT")

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterVectorLayer(self.INPUT, "Labelled polygons", [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField(self.CLASS_FIELD, "Class field", parentLayerParameterName=self.INPUT))
        self.addParameter(
            QgsProcessingParameterNumber(self.PER_CLASS, "Points per class", QgsProcessingParameterNumber.Type.Integer, 100, minValue=1)
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MIN_DISTANCE,
                "Minimum distance between points (layer units)",
                QgsProcessingParameterNumber.Type.Double,
                0.0,
                minValue=0.0,
            )
        )
        self.addParameter(QgsProcessingParameterNumber(self.SEED, "Random seed", QgsProcessingParameterNumber.Type.Integer, 0))
        self.addParameter(QgsProcessingParameterVectorDestination(self.OUTPUT, "Sample points", QgsProcessing.SourceType.TypeVectorPoint))

    def processAlgorithm(self, parameters, context, feedback):
        path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, self.INPUT, context, ["gpkg", "shp"], "gpkg", feedback
        )
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
        per_class = self.parameterAsInt(parameters, self.PER_CLASS, context)
        distance = self.parameterAsDouble(parameters, self.MIN_DISTANCE, context)
        seed = self.parameterAsInt(parameters, self.SEED, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)

        def work(progress):
            labels = read_labels(path, field, layer=layer_name or None)
            points = sample_points_in_polygons(labels, per_class, distance, seed, progress)
            for w in points.warnings:
                self.warn(feedback, w)
            write_points(output, points)
            return points

        points = self.run_core(feedback, work)
        feedback.pushInfo("points per class: " + ", ".join(f"{k} {v}" for k, v in points.counts().items()))
        return {self.OUTPUT: output}
