"""geodl:suggestpoints — where to label next: points where the model is least sure, spread out."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateTransform,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from ...core.predict.suggest import MEASURES, SuggestParams, suggest_points
from ..base import GeoDLAlgorithm


class SuggestPointsAlgorithm(GeoDLAlgorithm):
    NAME = "suggestpoints"
    DISPLAY = "Suggest points to label (active learning)"
    HELP = (
        "Uncertainty sampling on a finished map: picks the pixels where the model is least sure (highest "
        "entropy, or smallest margin between the two most probable classes; the uncertainty outputs of "
        "geodl:predict), spread out (a minimum distance between suggestions and from existing labels), with a "
        "share of the points divided equally among the predicted classes so rare classes are asked about "
        "too, never on nodata and only inside the region when one is given. Writes a point layer ranked by "
        "uncertainty (rank 1 = least sure) with the predicted class and a status field, to label and retrain "
        "on. Minimum distance 0 = automatic (half the spacing of the points on a square grid)."
    )
    CLASSES, UNCERTAINTY, MEASURE, COUNT = "CLASSES", "UNCERTAINTY", "MEASURE", "COUNT"
    MIN_DISTANCE, CLASS_SHARE, REGION, EXISTING, OUTPUT = "MIN_DISTANCE", "CLASS_SHARE", "REGION", "EXISTING", "OUTPUT"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.CLASSES, "Class raster (geodl:predict)"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.UNCERTAINTY, "Entropy or margin raster"))
        self.addParameter(QgsProcessingParameterEnum(self.MEASURE, "The uncertainty raster holds", options=list(MEASURES), defaultValue=0))
        self.addParameter(
            QgsProcessingParameterNumber(
                self.COUNT, "Number of points", QgsProcessingParameterNumber.Type.Integer, 20, minValue=1, maxValue=10000
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.REGION, "Only inside these polygons", [QgsProcessing.SourceType.TypeVectorPolygon], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.EXISTING, "Existing labels (kept at a distance)", [QgsProcessing.SourceType.TypeVectorPoint], optional=True
            )
        )
        distance = QgsProcessingParameterNumber(
            self.MIN_DISTANCE, "Minimum distance (map units; 0 = automatic)", QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0
        )
        share = QgsProcessingParameterNumber(
            self.CLASS_SHARE,
            "Share divided equally among predicted classes",
            QgsProcessingParameterNumber.Type.Double,
            0.5,
            minValue=0.0,
            maxValue=1.0,
        )
        for p in (distance, share):
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterVectorDestination(self.OUTPUT, "Points to label", QgsProcessing.SourceType.TypeVectorPoint))

    def processAlgorithm(self, parameters, context, feedback):
        classes = self.parameterAsRasterLayer(parameters, self.CLASSES, context)
        uncertainty = self.parameterAsRasterLayer(parameters, self.UNCERTAINTY, context)
        crs = uncertainty.crs()
        region_wkt = None
        region = self.parameterAsSource(parameters, self.REGION, context)
        if region is not None:
            to_raster = QgsCoordinateTransform(region.sourceCrs(), crs, context.transformContext())
            parts = [QgsGeometry(f.geometry()) for f in region.getFeatures()]
            for g in parts:
                g.transform(to_raster)
            if not parts:
                raise QgsProcessingException("The region layer has no polygons.")
            region_wkt = QgsGeometry.unaryUnion(parts).asWkt()
        existing = []
        source = self.parameterAsSource(parameters, self.EXISTING, context)
        if source is not None:
            to_raster = QgsCoordinateTransform(source.sourceCrs(), crs, context.transformContext())
            for f in source.getFeatures():
                if f.hasGeometry():
                    p = to_raster.transform(f.geometry().asPoint())
                    existing.append((p.x(), p.y()))
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if not output.lower().endswith(".gpkg"):
            output = output.rsplit(".", 1)[0] + ".gpkg" if "." in output.rsplit("/", 1)[-1] else output + ".gpkg"
        params = SuggestParams(
            classes_raster=classes.source(),
            uncertainty_raster=uncertainty.source(),
            measure=MEASURES[self.parameterAsEnum(parameters, self.MEASURE, context)],
            count=self.parameterAsInt(parameters, self.COUNT, context),
            min_distance=self.parameterAsDouble(parameters, self.MIN_DISTANCE, context),
            class_share=self.parameterAsDouble(parameters, self.CLASS_SHARE, context),
            region_wkt=region_wkt,
            existing_xy=existing,
            output=output,
        )
        result = self.run_core(feedback, lambda progress: suggest_points(params, progress))
        for w in result.warnings:
            feedback.reportError(w, False)
        feedback.pushInfo(
            f"{len(result.suggestions)} points suggested from {result.candidates} pixels, at least {result.min_distance:g} map units apart"
        )
        return {self.OUTPUT: f"{result.output}|layername=to_label"}
