"""geodl:eedownload — an Earth Engine composite fetched directly into a GeoTIFF (no bucket)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..base import GeoDLAlgorithm
from .ee_composite import EXTENT, add_composite_parameters, add_connection_parameters, composite_params, connect


class EEDownloadAlgorithm(GeoDLAlgorithm):
    NAME = "eedownload"
    DISPLAY = "Earth Engine direct download"
    GROUP = "Earth Engine"
    REQUIRES = ("earth_engine", "rasters")
    HELP = (
        "Downloads an Earth Engine composite straight into one GeoTIFF with computePixels — no Cloud Storage "
        "bucket needed. The region is cut into requests under Earth Engine's 48 MiB / 32768 px limits, fetched "
        "a few at a time, retried with backoff when Earth Engine is busy (HTTP 429/5xx), and kept in a "
        "'.parts' folder beside the output so running it again after a failure fetches only what is missing. "
        "The GeoTIFF (float32, one band per composite band) goes into the local pipeline unchanged. By default "
        "the grid is the region's UTM zone at the pixel size, aligned to whole pixels — the grid Earth Engine "
        "training samples use; a Web-Mercator 'metre' is 1/cos(latitude) ground metres. Pixels masked on "
        "Earth Engine (cloudy in every scene, no data) are -9999, the file's nodata, so they stay unclassified. "
        "The Satellite Embedding source gives 64 float bands A00–A63 (10 m, one year). For very large regions "
        "use 'Earth Engine export image patches'."
    )
    CRS, SCALE, WORKERS, RESUME, OUTPUT = "CRS", "SCALE", "WORKERS", "KEEP_PARTS", "OUTPUT"

    def initAlgorithm(self, config=None):
        add_connection_parameters(self)
        add_composite_parameters(self, "Region to download")
        self.addParameter(
            QgsProcessingParameterCrs(self.CRS, "Output CRS (empty: the region's UTM zone; projected, metres)", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.SCALE,
                "Pixel size (output CRS units)",
                QgsProcessingParameterNumber.Type.Double,
                10.0,
                minValue=0.01,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.WORKERS,
                "Parallel requests (1-40)",
                QgsProcessingParameterNumber.Type.Integer,
                8,
                minValue=1,
                maxValue=40,
            )
        )
        self.addParameter(QgsProcessingParameterBoolean(self.RESUME, "Keep the downloaded tiles after the mosaic", False))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Downloaded composite"))

    def processAlgorithm(self, parameters, context, feedback):
        from ...core.earthengine.download import DownloadParams, download_composite

        params = composite_params(self, parameters, context)
        crs = self.parameterAsCrs(parameters, self.CRS, context)
        if crs.isValid() and crs.isGeographic():
            raise QgsProcessingException(
                f"{crs.authid()} is in degrees; choose a projected CRS or leave it empty for the region's UTM zone."
            )
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        options = dict(
            workers=self.parameterAsInt(parameters, self.WORKERS, context),
            keep_parts=self.parameterAsBool(parameters, self.RESUME, context),
        )
        scale = self.parameterAsDouble(parameters, self.SCALE, context)
        if crs.isValid():
            extent = self.parameterAsExtent(parameters, EXTENT, context, crs)
            download = DownloadParams(
                bands=params.output_bands(),
                crs=crs.authid(),
                bounds=(extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()),
                scale=scale,
                **options,
            )  # snapped to whole pixels by the core
        else:
            download = DownloadParams.for_region(params.output_bands(), params.region, scale, **options)

        def work(progress):
            download.validate()
            connect(self, parameters, context)
            return download_composite(params, download, output, progress)

        self.run_core(feedback, work)
        return {self.OUTPUT: output}
