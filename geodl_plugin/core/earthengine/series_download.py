"""A time series downloaded from Earth Engine: one GeoTIFF per date on one grid, and a stack of them.

Each window's composite goes through the direct download (``download.download_image``: computePixels in
tiles under the request limits, retries with backoff, resumable from its ``.parts`` folder) into
``{prefix}_{YYYYMMDD}.tif`` with the window's middle day in the name and as ``ACQUISITION_DATE``, so
``core/data/series.open_series`` reads the files as they are. A window without scenes is written locally as
nodata (``grid.NODATA``) without a request. Every date lands on the same grid (by default the region's UTM
zone at the pixel size, aligned to whole pixels).

``{prefix}_series.vrt`` stacks the dates band-per-date (bands named ``{band}_{YYYYMMDD}``, date-major): one
raster that ``geodl:predict``, sample extraction and the dock take as the whole series. ``{prefix}_series.json``
records the windows, scene counts and grid.

A rerun keeps every date file whose request is unchanged (its ``GEODL_REQUEST`` fingerprint), so a failed or
cancelled run resumes; outputs are written to temporary names and renamed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..io.atomic import atomic_path, atomic_write_text
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .download import DEFAULT_WORKERS, REQUEST_TAG, DownloadParams, download_image, request_fingerprint
from .grid import NODATA
from .series import EESeries, SeriesParams, Window, build_series, default_prefix
from .session import require_connected

log = logging.getLogger("geodl")

_SAFE_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_QUICKLOOK = 256  # the observed fraction of a date is counted on at most this many pixels a side


@dataclass
class SeriesDownloadParams:
    """A series to download into ``folder``. ``scale`` is the pixel size in ``crs`` units; an empty ``crs``
    means the region's UTM zone. ``prefix`` names the files (empty: ``s2`` or ``landsat``)."""

    series: SeriesParams
    folder: str
    scale: float = 10.0
    crs: str = ""
    prefix: str = ""
    bounds: Optional[tuple[float, float, float, float]] = None  # in ``crs`` units; None: the region's grid
    workers: int = DEFAULT_WORKERS
    max_attempts: int = 6
    backoff_seconds: float = 1.0
    tile_size: Optional[int] = None
    keep_parts: bool = False

    def file_prefix(self) -> str:
        return self.prefix.strip() or default_prefix(self.series)

    def download_params(self) -> DownloadParams:
        options: dict[str, Any] = dict(
            workers=self.workers,
            max_attempts=self.max_attempts,
            backoff_seconds=self.backoff_seconds,
            tile_size=self.tile_size,
            keep_parts=self.keep_parts,
        )
        bands = self.series.output_bands()
        if self.bounds is not None:
            if not self.crs:
                raise GeoDLError("Bounds were given without their CRS; give the CRS of the bounds too.")
            return DownloadParams(bands=bands, crs=self.crs, bounds=tuple(self.bounds), scale=self.scale, **options)  # type: ignore[arg-type]
        return DownloadParams.for_region(bands, self.series.composite.region, self.scale, self.crs, **options)

    def validate(self) -> SeriesDownloadParams:
        from ..data.series import parse_date

        self.series.validate()
        prefix = self.file_prefix()
        if not _SAFE_PREFIX.fullmatch(prefix):
            raise GeoDLError(f"The file prefix '{prefix}' must be letters, digits, '.', '_' or '-' (up to 64), e.g. s2_farm.")
        if parse_date(prefix):
            raise GeoDLError(f"The file prefix '{prefix}' holds a date; the date of each file follows it. Choose a prefix without one.")
        if not str(self.folder).strip():
            raise GeoDLError("Choose a folder for the series' files.")
        self.download_params().validate()
        return self


@dataclass
class SeriesDownload:
    """What was written: per date its file (in date order), the stack, the windows and what they hold."""

    folder: Path
    files: list[Path]
    stack: Path
    manifest: Path
    windows: list[Window]
    image_counts: list[int]
    observed: list[float]  # per date, the fraction of pixels observed (on a decimated read)
    kept: list[Path] = field(default_factory=list)  # files of an earlier run reused as they were
    warnings: list[str] = field(default_factory=list)

    @property
    def dates(self) -> list[str]:
        return [w.date.isoformat() for w in self.windows]

    @property
    def empty_windows(self) -> list[str]:
        return [w.label for w, n in zip(self.windows, self.image_counts) if n == 0]


def _existing_request(path: Path) -> str:
    import rasterio

    try:
        with rasterio.open(path) as ds:
            return str(ds.tags().get(REQUEST_TAG, ""))
    except Exception:  # noqa: BLE001 - an unreadable leftover is fetched again
        return ""


def _date_tags(window: Window, count: int, sensor: str) -> dict[str, str]:
    return {
        "ACQUISITION_DATE": window.date.isoformat(),
        "GEODL_WINDOW": f"{window.start.isoformat()}/{window.end.isoformat()}",
        "GEODL_SCENES": str(count),
        "GEODL_SENSOR": sensor,
    }


def _empty_fingerprint(window: Window, params: DownloadParams) -> str:
    text = json.dumps(
        {
            "empty": window.label,
            "bands": list(params.bands),
            "crs": params.crs,
            "bounds": list(params.pixel_grid().bounds),
            "scale": params.scale,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _write_empty(path: Path, params: DownloadParams, tags: dict[str, str]) -> None:
    """A date with nothing observed: every pixel nodata (never 0), same grid and bands as the others."""
    import rasterio

    width, height = params.grid()
    profile = dict(
        driver="GTiff",
        width=width,
        height=height,
        count=len(params.bands),
        dtype="float32",
        crs=params.crs,
        transform=params.transform(),
        nodata=NODATA,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        BIGTIFF="IF_SAFER",
    )
    block = np.full((256, 256), NODATA, np.float32)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            from rasterio.windows import Window as RasterWindow

            for _, win in dst.block_windows(1):
                for band in range(1, len(params.bands) + 1):
                    dst.write(block[: win.height, : win.width], band, window=RasterWindow(win.col_off, win.row_off, win.width, win.height))
            for i, name in enumerate(params.bands, start=1):
                dst.set_band_description(i, name)
            dst.update_tags(**tags)


def observed_fraction(path: Path) -> float:
    """The share of pixels observed in every band (read decimated to at most 256 px a side)."""
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path) as ds:
        shape = (ds.count, min(ds.height, _QUICKLOOK), min(ds.width, _QUICKLOOK))
        data = ds.read(out_shape=shape, resampling=Resampling.nearest)
    ok = np.isfinite(data).all(axis=0) & (data != np.float32(NODATA)).all(axis=0)
    return float(ok.mean())


def write_series_vrt(path: Path, files: list[Path], series: SeriesParams, params: DownloadParams) -> Path:
    """A VRT stacking the per-date files band-per-date (date-major), bands described ``{band}_{YYYYMMDD}``,
    sources relative to the VRT so the folder can move."""
    width, height = params.grid()
    from rasterio.crs import CRS

    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    ET.SubElement(root, "SRS").text = CRS.from_user_input(params.crs).to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in params.transform().to_gdal())
    number = 0
    for file, window in zip(files, series.window_list()):
        for index, name in enumerate(series.dated_bands(window), start=1):
            number += 1
            band = ET.SubElement(root, "VRTRasterBand", dataType="Float32", band=str(number))
            ET.SubElement(band, "Description").text = name
            ET.SubElement(band, "NoDataValue").text = repr(NODATA)
            source = ET.SubElement(band, "SimpleSource")
            ET.SubElement(source, "SourceFilename", relativeToVRT="1").text = file.name
            ET.SubElement(source, "SourceBand").text = str(index)
            rect = {"xOff": "0", "yOff": "0", "xSize": str(width), "ySize": str(height)}
            ET.SubElement(source, "SrcRect", rect)
            ET.SubElement(source, "DstRect", rect)
    ET.indent(root)
    atomic_write_text(path, ET.tostring(root, encoding="unicode") + "\n")
    return path


def _manifest(series: EESeries, params: DownloadParams, files: list[Path], observed: list[float]) -> dict[str, Any]:
    pixels = params.pixel_grid()
    return {
        "kind": "earth_engine_series",
        "sensor": series.params.composite.sensor,
        "bands": series.params.output_bands(),
        "dates": [w.date.isoformat() for w in series.windows],
        "windows": [{"start": w.start.isoformat(), "end": w.end.isoformat()} for w in series.windows],
        "scenes": series.counts,
        "empty_windows": [w.label for w in series.empty],
        "observed_fraction": [round(v, 4) for v in observed],
        "files": [f.name for f in files],
        "nodata": NODATA,
        "grid": {
            "crs": pixels.crs,
            "pixel_size": pixels.scale,
            "crs_transform": pixels.crs_transform,
            "width": pixels.width,
            "height": pixels.height,
        },
        "cloud_mask": series.params.composite.cloud_mask if series.params.composite.sensor == "sentinel2" else "QA_PIXEL+QA_RADSAT",
    }


def _fetch_date(series: EESeries, index: int, params: DownloadParams, target: Path, progress: Progress) -> bool:
    """Download (or write empty) one date unless the file of the same request is there; True if it was kept."""
    window, count, image = series.windows[index], series.counts[index], series.images[index]
    tags = _date_tags(window, count, series.params.composite.sensor)
    fingerprint = _empty_fingerprint(window, params) if count == 0 else request_fingerprint(image, params)
    if target.exists() and _existing_request(target) == fingerprint:
        return True
    if count == 0:
        _write_empty(target, params, {**tags, REQUEST_TAG: fingerprint})
    else:
        download_image(image, params, target, progress, tags=tags)
    return False


def download_series(params: SeriesDownloadParams, progress: Optional[Progress] = None) -> SeriesDownload:
    """Build the series' composites on Earth Engine and download one GeoTIFF per date into ``params.folder``
    (plus the stack VRT and a JSON record); what ``geodl:eeseries`` and the dock run. Earth Engine must be
    connected."""
    progress = ensure(progress)
    params.validate()
    require_connected()
    folder = Path(params.folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GeoDLError(f"Cannot create the folder '{folder}' ({exc.strerror}). Choose another folder.") from exc
    prefix = params.file_prefix()
    download = params.download_params()
    progress.update(1, "Counting the scenes of each window")
    series = build_series(params.series)
    for text in series.warnings():
        progress.message(text)
    files, kept = [], []
    n = len(series.windows)
    for index, window in enumerate(series.windows):
        progress.check()
        target = folder / f"{prefix}_{window.key}.tif"
        progress.message(f"Date {index + 1}/{n}: {window.date.isoformat()} (window {window.label}, {series.counts[index]} scene(s))")
        if _fetch_date(series, index, download, target, progress.sub(2 + 93 * index / n, 2 + 93 * (index + 1) / n)):
            kept.append(target)
            progress.message(f"Kept {target.name}: downloaded before with the same request.")
        files.append(target)
    progress.update(96, "Writing the series stack")
    observed = [observed_fraction(f) for f in files]
    warnings = series.warnings()
    for window, count, share in zip(series.windows, series.counts, observed):
        if count and share == 0.0:
            warnings.append(f"Every pixel of the window {window.label} is cloudy or masked: its date {window.date.isoformat()} is nodata.")
    stack = write_series_vrt(folder / f"{prefix}_series.vrt", files, params.series, download)
    manifest = folder / f"{prefix}_series.json"
    atomic_write_text(manifest, json.dumps(_manifest(series, download, files, observed), indent=2))
    progress.update(100, f"Downloaded {n} dates into {folder} (stack: {stack.name}).")
    return SeriesDownload(folder, files, stack, manifest, series.windows, series.counts, observed, kept, warnings)
