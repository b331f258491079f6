"""Batch exports to Cloud Storage or Drive: labelled samples as a TFRecord table, and images as TFRecord
patches (+ the mixer JSON) for prediction.

The training table has the layout of the local sample format (see ``core/io/tfrecord.py``): one Example per
sample, one float feature per band (a k×k patch flattened row-major when ``patch_size`` > 1) and the class
as the float property ``class``; so an export goes into the local trainer unchanged.

Both exports run on one explicit grid (``grid.region_grid``: the region's UTM zone at the pixel size, aligned
to whole pixels) and fill masked pixels with ``grid.NODATA``. What the files cannot say — the grid, the
nodata value, band order, patch size — travels as ``StartedExport.sidecar``, written beside the downloaded
files as the local samples' sidecar, so the model manifest records the grid the samples came from.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .grid import NODATA, PixelGrid, fill_masked, points_region, region_grid
from .session import ee_errors, require_connected

LABEL = "class"
DESTINATIONS = ("gcs", "drive")
# How many labelled points go into one export. The points travel inline in the request (about 100 bytes
# each, EE refuses requests over 10 MB) and every sample is held in memory by one export worker; beyond a few
# tens of millions of values a table export risks "User memory limit exceeded". Larger sets become several
# exports (the seeds' saveCNN_batch idea, sized from the data instead of a fixed count).
MAX_POINTS_PER_EXPORT = 20_000
MAX_VALUES_PER_EXPORT = 25_000_000
MAX_PIXELS_DEFAULT = 10_000_000_000  # EE's default of 1e8 stops most real regions; exports are paid by EECU


@dataclass(frozen=True)
class LabelledPoint:
    x: float
    y: float
    label: float


@dataclass
class Destination:
    """Where an export goes: a Cloud Storage bucket or a Drive folder, and the file-name prefix."""

    kind: str = "gcs"
    bucket: str = ""
    folder: str = ""
    prefix: str = "geodl"

    def validate(self) -> Destination:
        if self.kind not in DESTINATIONS:
            raise GeoDLError(f"Unknown export destination '{self.kind}'; choose Cloud Storage (gcs) or Drive.")
        if self.kind == "gcs" and not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]", self.bucket or ""):
            raise GeoDLError(
                f"'{self.bucket}' is not a Cloud Storage bucket name. Give the name of a bucket in your Cloud "
                "project (lower case, no gs:// prefix), or export to Drive."
            )
        if not self.prefix or self.prefix.startswith("/"):
            raise GeoDLError("Give a file-name prefix for the export, e.g. geodl/training (no leading '/').")
        return self


@dataclass
class StartedExport:
    task_id: str
    operation: str  # projects/…/operations/ID, what the monitor polls
    description: str
    destination: Destination
    prefix: str  # the file-name prefix of this export's files
    kind: str = "table"  # "table" (training samples) or "image" (patches + mixer)
    sidecar: dict = field(default_factory=dict)  # the samples' sidecar (grid, nodata, bands) for table exports


@dataclass
class TrainingExportParams:
    bands: Sequence[str]
    scale: float
    destination: Destination
    patch_size: int = 1  # 1: pixels; odd k > 1: k×k patches centred on the points
    crs: str = "EPSG:4326"  # of the points' coordinates
    grid: Optional[PixelGrid] = None  # the sampling grid; None: the points' UTM zone at ``scale``, aligned
    tile_scale: float = 1.0  # sampleRegions tileScale; raise it after "User memory limit exceeded"
    max_points_per_export: int = MAX_POINTS_PER_EXPORT
    max_values_per_export: int = MAX_VALUES_PER_EXPORT

    def validate(self) -> TrainingExportParams:
        if not self.bands:
            raise GeoDLError("Choose at least one band to export.")
        if LABEL in self.bands:
            raise GeoDLError(f"A band is named '{LABEL}', the label's name; rename the band.")
        if self.patch_size < 1 or self.patch_size % 2 == 0:
            raise GeoDLError(
                f"The patch size {self.patch_size} must be an odd number of pixels (1 for pixels, 3, 5, …) so "
                "the patch is centred on the point."
            )
        if not self.scale or self.scale <= 0:
            raise GeoDLError(f"The scale {self.scale} must be a positive pixel size in metres.")
        if not 1 <= self.tile_scale <= 16:
            raise GeoDLError(f"The tile scale {self.tile_scale} must be between 1 and 16.")
        self.destination.validate()
        return self

    def points_per_export(self) -> int:
        values_per_point = len(self.bands) * self.patch_size * self.patch_size
        return max(1, min(self.max_points_per_export, self.max_values_per_export // max(1, values_per_point)))


def _description(text: str) -> str:
    # EE task descriptions: at most 100 characters of letters, digits, spaces and .,:;_-
    return re.sub(r"[^A-Za-z0-9 .,:;_-]", "_", text)[:100]


def _start(task: Any, destination: Destination, prefix: str, kind: str = "table", sidecar: Optional[dict] = None) -> StartedExport:
    task.start()
    return StartedExport(task.id, task.name or "", task.config.get("description", ""), destination, prefix, kind, dict(sidecar or {}))


def sample_sidecar(bands: Sequence[str], patch_size: int, grid: PixelGrid) -> dict[str, Any]:
    """The local sample sidecar for an Earth Engine table export: band order, patch size, the grid (CRS,
    pixel size) and the nodata value masked pixels carry."""
    meta = {
        "bands": list(bands),
        "label": LABEL,
        "patch_size": int(patch_size),
        "source_dtype": "float32",
        "nodata": NODATA,
        "source": "earth_engine",
    }
    meta.update(grid.sidecar())
    return meta


def split_points(points: Sequence[LabelledPoint], per_export: int) -> list[Sequence[LabelledPoint]]:
    return [points[i : i + per_export] for i in range(0, len(points), per_export)]


def export_training_samples(
    image: Any,
    points: Sequence[LabelledPoint],
    params: TrainingExportParams,
    progress: Optional[Progress] = None,
) -> list[StartedExport]:
    """Start table exports of ``image`` sampled at ``points``; one export per chunk of points."""
    import ee

    progress = ensure(progress)
    params.validate()
    require_connected()
    points = list(points)
    if not points:
        raise GeoDLError(
            "There are no labelled points to export. Create or select a point layer with a class field (e.g. "
            "with 'Sample points in polygons') and check the region overlaps it."
        )
    chunks = split_points(points, params.points_per_export())
    dest = params.destination
    selectors = list(params.bands) + [LABEL]
    if params.grid is not None:
        grid = params.grid
    elif params.crs.upper() in ("EPSG:4326", "WGS84"):
        grid = region_grid(points_region(points), params.scale)
    else:
        raise GeoDLError(f"Points in {params.crs}: give their coordinates in EPSG:4326 or give the sampling grid.")
    sidecar = sample_sidecar(params.bands, params.patch_size, grid)
    with ee_errors("start the training export"):
        # integer bands can arrive as bytes; masked pixels become NODATA (kept in patches, dropped locally)
        image = fill_masked(ee.Image(image).select(list(params.bands)).toFloat())
        if params.patch_size > 1:
            radius = params.patch_size // 2
            image = image.neighborhoodToArray(ee.Kernel.square(radius, "pixels"), NODATA)
        started = []
        for index, chunk in enumerate(chunks):
            progress.check()
            features = [ee.Feature(ee.Geometry.Point([float(p.x), float(p.y)], params.crs), {LABEL: float(p.label)}) for p in chunk]
            samples = image.sampleRegions(
                collection=ee.FeatureCollection(features),
                properties=[LABEL],
                projection=grid.projection(),  # the download's grid, not the composite's default one
                tileScale=params.tile_scale,
                geometries=False,
            )
            prefix = dest.prefix if len(chunks) == 1 else f"{dest.prefix}-part{index:03d}"
            description = _description(f"geodl training {prefix.rsplit('/', 1)[-1]}")
            common: dict[str, Any] = dict(description=description, fileNamePrefix=prefix, fileFormat="TFRecord", selectors=selectors)
            if dest.kind == "gcs":
                task = ee.batch.Export.table.toCloudStorage(samples, bucket=dest.bucket, **common)
            else:
                task = ee.batch.Export.table.toDrive(samples, folder=dest.folder or None, **common)
            started.append(_start(task, dest, prefix, "table", sidecar))
            progress.update(100.0 * (index + 1) / len(chunks), f"Started export {index + 1}/{len(chunks)}: {task.id}")
    return started


@dataclass
class ImageExportParams:
    bands: Sequence[str]
    region: tuple[float, float, float, float]  # west, south, east, north in degrees
    scale: float
    destination: Destination
    crs: str = ""  # empty: the region's UTM zone (the grid the training export samples on)
    patch_size: int = 256  # patchDimensions (square)
    kernel_size: int = 0  # kernelSize: margin pixels added in total per axis (kernel_size/2 on each side)
    compressed: bool = True
    max_file_size: int = 1_000_000_000  # bytes per TFRecord file
    max_pixels: int = MAX_PIXELS_DEFAULT

    def validate(self) -> ImageExportParams:
        if not self.bands:
            raise GeoDLError("Choose at least one band to export.")
        if self.patch_size < 1:
            raise GeoDLError(f"The patch size {self.patch_size} must be a positive number of pixels.")
        if self.kernel_size < 0 or self.kernel_size % 2:
            raise GeoDLError(
                f"The kernel size {self.kernel_size} must be an even number of pixels (half of it is added on "
                "each side of a patch), e.g. 0 for a pixel model or 32 for a U-Net's context."
            )
        if not self.scale or self.scale <= 0:
            raise GeoDLError(f"The scale {self.scale} must be a positive pixel size in metres.")
        if self.max_file_size < 1_000_000:
            raise GeoDLError("The maximum file size must be at least 1 MB.")
        west, south, east, north = self.region
        if not (west < east and south < north):
            raise GeoDLError(f"The region {self.region} is empty; give west < east and south < north.")
        self.destination.validate()
        return self


def export_image_patches(image: Any, params: ImageExportParams, progress: Optional[Progress] = None) -> StartedExport:
    """Start an image export as TFRecord patches; the files come with ``PREFIX-mixer.json``."""
    import ee

    from .composites import region_geometry

    progress = ensure(progress)
    params.validate()
    require_connected()
    dest = params.destination
    grid = region_grid(params.region, params.scale, params.crs)
    options: dict[str, Any] = {
        "patchDimensions": [params.patch_size, params.patch_size],
        "compressed": bool(params.compressed),
        "maxFileSize": int(params.max_file_size),
    }
    if params.kernel_size:
        options["kernelSize"] = [params.kernel_size, params.kernel_size]
    with ee_errors("start the image export"):
        image = fill_masked(ee.Image(image).select(list(params.bands)).toFloat())
        common = dict(
            description=_description(f"geodl image {dest.prefix.rsplit('/', 1)[-1]}"),
            fileNamePrefix=dest.prefix,
            region=region_geometry(params.region),
            crs=grid.crs,
            crsTransform=grid.crs_transform,  # whole pixels of the shared grid (no 'scale' with a transform)
            maxPixels=int(params.max_pixels),
            fileFormat="TFRecord",
            formatOptions=options,
        )
        if dest.kind == "gcs":
            task = ee.batch.Export.image.toCloudStorage(image, bucket=dest.bucket, **common)
        else:
            task = ee.batch.Export.image.toDrive(image, folder=dest.folder or None, **common)
        started = _start(task, dest, dest.prefix, "image", {"nodata": NODATA, **grid.sidecar()})
    progress.update(100, f"Started image export {started.task_id}")
    return started


def estimated_patches(params: ImageExportParams) -> int:
    """A rough patch count (equatorial metres per degree), to warn before very large exports."""
    west, south, east, north = params.region
    metres = 111_320.0
    width = (east - west) * metres * math.cos(math.radians((north + south) / 2)) / params.scale
    height = (north - south) * metres / params.scale
    return math.ceil(width / params.patch_size) * math.ceil(height / params.patch_size)
