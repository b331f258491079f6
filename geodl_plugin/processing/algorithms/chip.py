"""geodl:chip — image+mask chips (Earth Engine-style patch TFRecord), spatially blocked split, histograms."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ...core.data.chips import chip_raster
from ...core.runtime.errors import GeoDLError
from ..base import GeoDLAlgorithm


class ChipAlgorithm(GeoDLAlgorithm):
    NAME = "chip"
    DISPLAY = "Cut image and mask chips"
    GROUP = "Segmentation"
    HELP = (
        "Cuts k×k chips of the image (one raster or a co-registered stack) with their mask (from "
        "geodl:rasterizemask) every 'stride' pixels, with 'padding' pixels beyond the raster edge (the image "
        "mirrored, the mask unlabelled). Chips without a labelled pixel or touching nodata are skipped. "
        "Written as TFRecord in the layout of an Earth Engine neighborhoodToArray export (one float feature "
        "per band of k×k values, the label array 'class' with 255 = unlabelled, x/y of the chip centre), so "
        "Earth Engine patches train through the same reader. Optionally whole spatial blocks of chips go to a "
        "test file, and per-band histograms (by class) are drawn to a PNG. For a U-Net of depth d, k must be "
        "divisible by 2^d (e.g. 64, 128, 256)."
    )
    INPUT, MASK, PATCH_SIZE, STRIDE, PADDING, TEST_FRACTION, OUTPUT, TEST_OUTPUT, HISTOGRAM = (
        "INPUT",
        "MASK",
        "PATCH_SIZE",
        "STRIDE",
        "PADDING",
        "TEST_FRACTION",
        "OUTPUT",
        "TEST_OUTPUT",
        "HISTOGRAM",
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers(self.INPUT, "Raster(s), co-registered", QgsProcessing.SourceType.TypeRaster))
        self.addParameter(QgsProcessingParameterRasterLayer(self.MASK, "Mask (geodl:rasterizemask)"))
        self.addParameter(
            QgsProcessingParameterNumber(self.PATCH_SIZE, "Chip size (pixels)", QgsProcessingParameterNumber.Type.Integer, 64, minValue=2)
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.STRIDE, "Stride (pixels; 0 = chip size, no overlap)", QgsProcessingParameterNumber.Type.Integer, 0, minValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.PADDING, "Padding beyond the raster edge (pixels)", QgsProcessingParameterNumber.Type.Integer, 0, minValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.TEST_FRACTION,
                "Test fraction (whole spatial blocks)",
                QgsProcessingParameterNumber.Type.Double,
                0.2,
                minValue=0.0,
                maxValue=0.9,
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT, "Training chips (TFRecord)", "TFRecord (*.tfrecord.gz *.tfrecord)")
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.TEST_OUTPUT, "Test chips (TFRecord)", "TFRecord (*.tfrecord.gz *.tfrecord)", optional=True, createByDefault=False
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.HISTOGRAM, "Per-band histograms (PNG)", "PNG (*.png)", optional=True, createByDefault=False
            )
        )

    def processAlgorithm(self, parameters, context, feedback):
        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        if not layers:
            raise GeoDLError("No raster given. Choose the imagery.")
        rasters = [layer.source() for layer in layers]
        mask = self.parameterAsRasterLayer(parameters, self.MASK, context).source()
        k = self.parameterAsInt(parameters, self.PATCH_SIZE, context)
        stride = self.parameterAsInt(parameters, self.STRIDE, context) or None
        padding = self.parameterAsInt(parameters, self.PADDING, context)
        test_fraction = self.parameterAsDouble(parameters, self.TEST_FRACTION, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        test_output = self.parameterAsFileOutput(parameters, self.TEST_OUTPUT, context) or None
        histogram = self.parameterAsFileOutput(parameters, self.HISTOGRAM, context) or None

        report = self.run_core(
            feedback,
            lambda progress: chip_raster(
                rasters,
                mask,
                output,
                patch_size=k,
                stride=stride,
                padding=padding,
                test_output=test_output,
                test_fraction=test_fraction,
                histogram_output=histogram,
                progress=progress,
            ),
        )
        for w in report.warnings:
            self.warn(feedback, w)
        feedback.pushInfo(
            f"{report.count} training chips, {report.test_count} test chips; skipped "
            f"{report.skipped_unlabelled} without labels, {report.skipped_nodata} on nodata. "
            "Labelled pixels: " + ", ".join(f"{k} {v}" for k, v in report.per_class_pixels.items())
        )
        return {self.OUTPUT: output, self.TEST_OUTPUT: report.test_path, self.HISTOGRAM: report.histogram_path}
