"""geodl:mosaic — tiles of one grid joined into one raster (VRT, tiled GeoTIFF or COG), nodata-aware."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ...core.io.mosaic import COG, GTIFF, RESAMPLING, VRT, mosaic_rasters
from ..base import GeoDLAlgorithm

_FORMATS = [
    (None, "From the file name (.vrt → VRT, else tiled GeoTIFF)"),
    (VRT, "VRT (no pixels copied)"),
    (GTIFF, "Tiled, compressed GeoTIFF"),
    (COG, "Cloud-Optimised GeoTIFF"),
]


class MosaicAlgorithm(GeoDLAlgorithm):
    NAME = "mosaic"
    DISPLAY = "Mosaic tiles"
    GROUP = "Raster preparation"
    HELP = (
        "Joins raster tiles (layers, and/or every raster in a folder) into one raster: a VRT that copies no "
        "pixels, a tiled and compressed GeoTIFF, or a Cloud-Optimised GeoTIFF with overviews. The tiles must "
        "share CRS, pixel size, pixel grid, band count and data type; the first tile that does not is named. "
        "Ticking 'reproject' warps tiles of another CRS, pixel size or grid onto the first tile's instead "
        "(band count and data type must still agree). Where tiles overlap, the later tile's valid pixels win "
        "and its nodata pixels let the earlier one show through. The nodata value defaults to the tiles' own."
    )
    INPUT, FOLDER, FORMAT, NODATA, REPROJECT, RESAMPLING, OUTPUT = (
        "INPUT",
        "FOLDER",
        "FORMAT",
        "NODATA",
        "REPROJECT",
        "RESAMPLING",
        "OUTPUT",
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers(self.INPUT, "Tiles", QgsProcessing.SourceType.TypeRaster, optional=True))
        self.addParameter(
            QgsProcessingParameterFile(self.FOLDER, "…or a folder of tiles", QgsProcessingParameterFile.Behavior.Folder, optional=True)
        )
        self.addParameter(QgsProcessingParameterEnum(self.FORMAT, "Format", [label for _, label in _FORMATS], defaultValue=0))
        nodata = QgsProcessingParameterNumber(
            self.NODATA, "Nodata value (empty: the tiles' own)", QgsProcessingParameterNumber.Type.Double, optional=True
        )
        nodata.setFlags(nodata.flags() | QgsProcessingParameterNumber.Flag.FlagAdvanced)
        self.addParameter(nodata)
        self.addParameter(
            QgsProcessingParameterBoolean(self.REPROJECT, "Reproject tiles of another CRS, pixel size or grid onto the first tile's", False)
        )
        resampling = QgsProcessingParameterEnum(self.RESAMPLING, "Resampling when reprojecting", list(RESAMPLING), defaultValue=0)
        resampling.setFlags(resampling.flags() | QgsProcessingParameterEnum.Flag.FlagAdvanced)
        self.addParameter(resampling)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Mosaic"))

    def processAlgorithm(self, parameters, context, feedback):
        inputs = [layer.source() for layer in self.parameterAsLayerList(parameters, self.INPUT, context)]
        folder = self.parameterAsFile(parameters, self.FOLDER, context)
        if folder:
            inputs.append(folder)
        if not inputs:
            raise QgsProcessingException("No tile given. Choose tile layers or a folder of tiles.")
        fmt = _FORMATS[self.parameterAsEnum(parameters, self.FORMAT, context)][0]
        nodata = None
        if parameters.get(self.NODATA) not in (None, ""):
            nodata = self.parameterAsDouble(parameters, self.NODATA, context)
        reproject = self.parameterAsBoolean(parameters, self.REPROJECT, context)
        resampling = RESAMPLING[self.parameterAsEnum(parameters, self.RESAMPLING, context)]
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)

        report = self.run_core(
            feedback,
            lambda progress: mosaic_rasters(
                inputs, output, fmt=fmt, nodata=nodata, reproject=reproject, resampling=resampling, progress=progress
            ),
        )
        for w in report.warnings:
            feedback.reportError(w, False)
        feedback.pushInfo(f"{report.tiles} tiles → {report.width}×{report.height} px, {report.bands} band(s), {report.format}")
        return {self.OUTPUT: report.path}
