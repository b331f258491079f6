"""geodl:flatten — pixels (all, inside polygons or at points) to a CSV, Parquet or GeoPackage table."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterVectorLayer,
)

from ...core.data.flatten import flatten_rasters
from ...core.data.labels import read_labels, read_targets
from ...core.data.samples import stack_info
from ..base import GeoDLAlgorithm

CLASS, TARGET = 0, 1


class FlattenAlgorithm(GeoDLAlgorithm):
    NAME = "flatten"
    DISPLAY = "Flatten pixels to a table"
    GROUP = "Raster preparation"
    HELP = (
        "Writes one row per pixel of one raster or a co-registered stack: longitude/latitude (WGS 84) and "
        "map x/y of the pixel centre, row/column, one column per band, and, with labels, the class (id and "
        "name) or the numeric target of the polygon the pixel lies in or the point on it. Without labels every "
        "valid pixel is written. Pixels where a band is nodata are left out. The format follows the file "
        "name: .csv (values written to read back exactly), .parquet (needs pyarrow) or .gpkg (points). The "
        "raster is read block by block, so any size works; mind the table's size (one row per pixel)."
    )
    INPUT, LABELS, FIELD, FIELD_KIND, NODATA, ALL_TOUCHED, OUTPUT = (
        "INPUT",
        "LABELS",
        "FIELD",
        "FIELD_KIND",
        "NODATA",
        "ALL_TOUCHED",
        "OUTPUT",
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers(self.INPUT, "Raster(s), co-registered", QgsProcessing.SourceType.TypeRaster))
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                self.LABELS,
                "Only inside these polygons / at these points (optional)",
                [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterField(self.FIELD, "Class or target field", parentLayerParameterName=self.LABELS, optional=True)
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.FIELD_KIND, "The field holds", ["Classes (names or ids)", "A numeric target (regression)"], defaultValue=CLASS
            )
        )
        nodata = QgsProcessingParameterNumber(
            self.NODATA, "Nodata value (empty: the raster's)", QgsProcessingParameterNumber.Type.Double, optional=True
        )
        nodata.setFlags(nodata.flags() | QgsProcessingParameterNumber.Flag.FlagAdvanced)
        self.addParameter(nodata)
        touched = QgsProcessingParameterBoolean(self.ALL_TOUCHED, "Every pixel a polygon touches", False)
        touched.setFlags(touched.flags() | QgsProcessingParameterBoolean.Flag.FlagAdvanced)
        self.addParameter(touched)
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT, "Table", "CSV (*.csv);;Parquet (*.parquet);;GeoPackage (*.gpkg)")
        )

    def processAlgorithm(self, parameters, context, feedback):
        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        if not layers:
            raise QgsProcessingException("No raster given. Choose the imagery.")
        rasters = [layer.source() for layer in layers]
        path, layer_name = None, None
        if parameters.get(self.LABELS) not in (None, ""):
            path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
                parameters, self.LABELS, context, ["gpkg", "shp"], "gpkg", feedback
            )
        field = self.parameterAsString(parameters, self.FIELD, context)
        if path and not field:
            raise QgsProcessingException("Choose the labels' class or target field.")
        kind = self.parameterAsEnum(parameters, self.FIELD_KIND, context)
        nodata = None
        if parameters.get(self.NODATA) not in (None, ""):
            nodata = self.parameterAsDouble(parameters, self.NODATA, context)
        all_touched = self.parameterAsBoolean(parameters, self.ALL_TOUCHED, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)

        def work(progress):
            labels = None
            if path:
                crs = stack_info(rasters)[0].crs_wkt
                reader = read_targets if kind == TARGET else read_labels
                labels = reader(path, field, layer=layer_name or None, target_crs_wkt=crs)
            return flatten_rasters(rasters, output, labels=labels, nodata=nodata, all_touched=all_touched, progress=progress)

        report = self.run_core(feedback, work)
        for w in report.warnings:
            feedback.reportError(w, False)
        feedback.pushInfo(f"{report.rows} rows × {len(report.columns)} columns ({', '.join(report.columns)})")
        return {self.OUTPUT: report.path}
