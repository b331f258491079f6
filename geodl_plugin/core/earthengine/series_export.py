"""A time series exported from Earth Engine as TFRecords in the series-sample layout.

The stacked series (``series.EESeries.stacked``: every band of every date, named ``{band}_{YYYYMMDD}``) goes
out through the existing exports, on the same aligned grid as the download:

- ``points``: labelled points → one Example per point with a k×k patch per band and date and the class
  (a table export, ``exports.export_training_samples``): patch sequences;
- ``patches``: the region cut into k×k patches (an image export with its mixer, ``exports.export_image_patches``),
  with a k×k ``class`` band painted from labelled geometries (255 = unlabelled) when labels are given: chip
  sequences; without labels, patches to predict on (``mixer.export_to_geotiff`` makes them a series stack).

The dates, and with them the day of year of each date, are in the feature names, which is what
``core/data/series_samples.load_series_samples`` reads; the sidecar the export carries (written beside the
downloaded files by the task monitor) adds the dates, the bands of one date and the nodata value masked
pixels (and whole empty windows) carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..data.chips import CHIPS_KIND, IGNORE
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .exports import (
    LABEL,
    MAX_PIXELS_DEFAULT,
    Destination,
    ImageExportParams,
    LabelledPoint,
    StartedExport,
    TrainingExportParams,
    export_image_patches,
    export_training_samples,
)
from .grid import region_grid
from .series import EESeries, SeriesParams, Window, build_series
from .session import ee_errors, require_connected

MODES = ("points", "patches")
DEFAULT_PATCH = {"points": 9, "patches": 24}
SERIES_KIND = "series"  # as core/data/series_samples.py marks point patch sequences


@dataclass(frozen=True)
class LabelledGeometry:
    """A labelled geometry as GeoJSON in EPSG:4326 (a polygon, a line, a point) painted into the class band."""

    geojson: dict
    label: float


@dataclass
class SeriesExportParams:
    """``mode`` "points" (patch sequences at labelled points) or "patches" (the region as k×k patches).
    ``patch_size`` 0: 9 px for points, 24 px for patches."""

    series: SeriesParams
    destination: Destination
    scale: float = 10.0
    mode: str = "points"
    patch_size: int = 0
    crs: str = ""  # empty: the region's UTM zone (the download's grid)
    tile_scale: float = 1.0  # points: sampleRegions tileScale
    compressed: bool = True  # patches
    max_file_size: int = 1_000_000_000  # patches: bytes per TFRecord file
    max_pixels: int = MAX_PIXELS_DEFAULT  # patches
    extra: dict = field(default_factory=dict)

    def patch(self) -> int:
        return int(self.patch_size) or DEFAULT_PATCH.get(self.mode, 1)

    def validate(self) -> SeriesExportParams:
        if self.mode not in MODES:
            raise GeoDLError(f"Unknown export mode '{self.mode}'; choose 'points' (samples at labelled points) or 'patches'.")
        self.series.validate()
        k = self.patch()
        if self.mode == "points" and (k < 1 or k % 2 == 0):
            raise GeoDLError(f"The patch size {k} must be odd (1, 3, 5, …) so the patch is centred on the point.")
        if self.mode == "patches" and k < 2:
            raise GeoDLError(f"The patch size {k} must be at least 2 pixels for patches (24 is usual for the temporal models).")
        if not self.scale or self.scale <= 0:
            raise GeoDLError(f"The scale {self.scale} must be a positive pixel size in metres.")
        self.destination.validate()
        return self


@dataclass
class SeriesExport:
    """The started exports (one or more), the windows and their scene counts, and warnings."""

    started: list[StartedExport]
    windows: list[Window]
    image_counts: list[int]
    warnings: list[str] = field(default_factory=list)

    @property
    def empty_windows(self) -> list[str]:
        return [w.label for w, n in zip(self.windows, self.image_counts) if n == 0]


def series_sidecar(series: EESeries, kind: str, patch_size: int) -> dict[str, Any]:
    """What a downloaded export's sidecar adds for the series reader: dates, bands of one date, the windows."""
    return {
        "kind": kind,
        "bands": series.params.stacked_bands(),
        "label": LABEL,
        "patch_size": int(patch_size),
        "ignore_value": IGNORE,
        "series": {"dates": [w.date.isoformat() for w in series.windows], "bands": series.params.output_bands()},
        "windows": [{"start": w.start.isoformat(), "end": w.end.isoformat(), "scenes": n} for w, n in zip(series.windows, series.counts)],
        "empty_windows": [w.label for w in series.empty],
        "sensor": series.params.composite.sensor,
    }


def label_image(labels: Sequence[LabelledGeometry]) -> Any:
    """A float ``class`` band: the labels' values painted on 255 (unlabelled)."""
    import ee

    features = [ee.Feature(ee.Geometry(g.geojson), {LABEL: float(g.label)}) for g in labels]
    return ee.Image.constant(IGNORE).toFloat().paint(ee.FeatureCollection(features), LABEL).rename(LABEL)


def _export_points(
    series: EESeries, points: Sequence[LabelledPoint], params: SeriesExportParams, progress: Progress
) -> list[StartedExport]:
    grid = region_grid(series.params.composite.region, params.scale, params.crs)
    training = TrainingExportParams(
        bands=series.params.stacked_bands(),
        scale=params.scale,
        destination=params.destination,
        patch_size=params.patch(),
        grid=grid,
        tile_scale=params.tile_scale,
    )
    started = export_training_samples(series.stacked(), points, training, progress)
    for export in started:
        export.sidecar.update(series_sidecar(series, SERIES_KIND, params.patch()))
    return started


def _export_patches(series: EESeries, labels: Sequence[LabelledGeometry], params: SeriesExportParams, progress: Progress) -> StartedExport:
    bands = series.params.stacked_bands()
    with ee_errors("add the label band"):
        image = series.stacked()
        if labels:
            image = image.addBands(label_image(labels))
            bands = bands + [LABEL]
    export = ImageExportParams(
        bands=bands,
        region=series.params.composite.region,
        scale=params.scale,
        destination=params.destination,
        crs=params.crs,
        patch_size=params.patch(),
        compressed=params.compressed,
        max_file_size=params.max_file_size,
        max_pixels=params.max_pixels,
    )
    started = export_image_patches(image, export, progress)
    if labels:  # chips: the monitor writes this sidecar beside the downloaded files
        started.sidecar.update(series_sidecar(series, CHIPS_KIND, params.patch()))
    else:
        started.sidecar.update({"series": series_sidecar(series, CHIPS_KIND, params.patch())["series"]})
    return started


def export_series(
    params: SeriesExportParams,
    points: Optional[Sequence[LabelledPoint]] = None,
    labels: Optional[Sequence[LabelledGeometry]] = None,
    progress: Optional[Progress] = None,
) -> SeriesExport:
    """Start the export of a series: at labelled ``points`` (mode "points", coordinates in EPSG:4326) or as
    the region's patches (mode "patches", with ``labels`` painted as the class band when given)."""
    progress = ensure(progress)
    params.validate()
    require_connected()
    if params.mode == "points" and not points:
        raise GeoDLError("The points export needs labelled points; give a point layer with a class field.")
    series = build_series(params.series)
    for text in series.warnings():
        progress.message(text)
    if params.mode == "points":
        started = _export_points(series, list(points or []), params, progress)
    else:
        started = [_export_patches(series, list(labels or []), params, progress)]
    return SeriesExport(started, series.windows, series.counts, series.warnings())
