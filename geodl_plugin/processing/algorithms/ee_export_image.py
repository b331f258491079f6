"""geodl:eeexportimage — an Earth Engine composite exported as TFRecord patches (+ mixer) for prediction."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterNumber,
)

from ..base import GeoDLAlgorithm
from .ee_composite import add_composite_parameters, add_connection_parameters, composite_params, connect
from .ee_export_training import add_destination_parameters, add_download_parameter, destination, wait_and_download_exports


class EEExportImageAlgorithm(GeoDLAlgorithm):
    NAME = "eeexportimage"
    DISPLAY = "Earth Engine export image patches"
    GROUP = "Earth Engine"
    REQUIRES = ("earth_engine",)
    HELP = (
        "Exports an Earth Engine composite over the region as TFRecord patches (patchDimensions, plus a "
        "kernelSize margin for models that need context) with the PREFIX-mixer.json that georeferences them, "
        "to Cloud Storage or Drive. geodl turns a downloaded export into a GeoTIFF for local prediction, and "
        "predictions back into a TFRecord on the same grid for 'Earth Engine upload predictions'. Set "
        "'Maximum pixels' high enough for the region (Earth Engine's default stops at 1e8). The grid is the "
        "region's UTM zone at the pixel size, aligned to whole pixels (the grid training samples and direct "
        "downloads use); masked pixels are filled with -9999, the GeoTIFF's nodata."
    )
    CRS, SCALE, PATCH, KERNEL, COMPRESSED, MAX_FILE_MB, MAX_PIXELS, TASK_ID = (
        "CRS",
        "SCALE",
        "PATCH_SIZE",
        "KERNEL_SIZE",
        "COMPRESSED",
        "MAX_FILE_MB",
        "MAX_PIXELS",
        "TASK_ID",
    )

    def initAlgorithm(self, config=None):
        add_connection_parameters(self)
        add_composite_parameters(self, "Region to export")
        self.addParameter(
            QgsProcessingParameterCrs(self.CRS, "Output CRS (empty: the region's UTM zone, the grid training samples use)", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.SCALE, "Pixel size (m)", QgsProcessingParameterNumber.Type.Double, 10.0, minValue=0.01)
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.PATCH, "Patch size (px)", QgsProcessingParameterNumber.Type.Integer, 256, minValue=1)
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.KERNEL,
                "Kernel margin (px, even; half on each side)",
                QgsProcessingParameterNumber.Type.Integer,
                0,
                minValue=0,
            )
        )
        self.addParameter(QgsProcessingParameterBoolean(self.COMPRESSED, "Compress (GZIP)", True))
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_FILE_MB, "Maximum file size (MB)", QgsProcessingParameterNumber.Type.Integer, 1000, minValue=1
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.MAX_PIXELS, "Maximum pixels", QgsProcessingParameterNumber.Type.Double, 1e10, minValue=1)
        )
        add_destination_parameters(self, "geodl/image")
        add_download_parameter(self)
        self.addOutput(QgsProcessingOutputString(self.TASK_ID, "Earth Engine task id"))

    def processAlgorithm(self, parameters, context, feedback):
        from ...core.earthengine import composites, exports

        params = composite_params(self, parameters, context)
        crs = self.parameterAsCrs(parameters, self.CRS, context)
        export_params = exports.ImageExportParams(
            bands=params.output_bands(),
            region=params.region,
            scale=self.parameterAsDouble(parameters, self.SCALE, context),
            destination=destination(self, parameters, context),
            crs=crs.authid() if crs.isValid() else "",  # "": the region's UTM zone, aligned to whole pixels
            patch_size=self.parameterAsInt(parameters, self.PATCH, context),
            kernel_size=self.parameterAsInt(parameters, self.KERNEL, context),
            compressed=self.parameterAsBool(parameters, self.COMPRESSED, context),
            max_file_size=self.parameterAsInt(parameters, self.MAX_FILE_MB, context) * 1_000_000,
            max_pixels=int(self.parameterAsDouble(parameters, self.MAX_PIXELS, context)),
        )

        def work(progress):
            export_params.validate()
            connect(self, parameters, context)
            return exports.export_image_patches(composites.build_composite(params), export_params, progress)

        started = self.run_core(feedback, work)
        feedback.pushInfo(f"Started {started.task_id}; about {exports.estimated_patches(export_params)} patches.")
        wait_and_download_exports(self, parameters, context, feedback, [started])
        return {self.TASK_ID: started.task_id}
