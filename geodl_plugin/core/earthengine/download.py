"""Direct download of an Earth Engine image into one GeoTIFF, without a bucket (``ee.data.computePixels``).

The region is cut into tiles small enough for one request: at most 50,331,648 bytes counting one mask byte
per pixel per band besides the data, and at most 32768 px a side. Tiles are fetched by a small thread pool
(Earth Engine allows about 40 concurrent interactive requests per project), retried with exponential backoff
on 429 and 5xx, and kept in a sidecar folder (``OUT.tif.parts/``) so a rerun after a failure or a cancel
fetches only what is missing. The mosaic is written atomically; the sidecar goes once it is done.

The grid is snapped outward to whole multiples of the pixel size (``grid.aligned_grid``), and masked pixels are
filled with ``grid.NODATA`` on the server and declared as the GeoTIFF's nodata: NPY carries no mask, and
without the fill a cloudy-in-every-scene pixel would arrive as a real 0.0 reflectance.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import json
import logging
import math
import os
import random
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..io.atomic import atomic_path, check_writable
from ..runtime.errors import Cancelled, GeoDLError
from ..runtime.progress import Progress, ensure
from .grid import NODATA, PixelGrid, aligned_grid, fill_masked, float_geotiff_profile, region_grid
from .grid import utm_crs as utm_crs  # re-exported: the dock imports it from here
from .session import ee_errors, http_status, is_retryable, require_connected

log = logging.getLogger("geodl")

MAX_REQUEST_BYTES = 50_331_648
MAX_SIDE = 32768
MAX_BANDS = 1024
DEFAULT_WORKERS = 8
MAX_WORKERS = 40
BYTES_PER_VALUE = 4  # float32: the image is sent through .toFloat()
MAX_TOTAL_PIXELS = 2_000_000_000  # a sanity stop: beyond this, use a batch export
REQUEST_TAG = "GEODL_REQUEST"  # GeoTIFF metadata item: the fingerprint of the request that made the file


@dataclass(frozen=True)
class Tile:
    row: int  # pixel offsets in the output grid
    col: int
    height: int
    width: int

    @property
    def key(self) -> str:
        return f"r{self.row:06d}_c{self.col:06d}_{self.height}x{self.width}"


def request_bytes(width: int, height: int, bands: int, bytes_per_value: int = BYTES_PER_VALUE) -> int:
    """What the server counts for one computePixels request: data plus one mask byte per pixel per band."""
    return width * height * bands * (bytes_per_value + 1)


def plan_tiles(
    width: int,
    height: int,
    bands: int,
    bytes_per_value: int = BYTES_PER_VALUE,
    max_bytes: int = MAX_REQUEST_BYTES,
    max_side: int = MAX_SIDE,
    tile_size: Optional[int] = None,
) -> list[Tile]:
    """Square-ish tiles, row-major, each within the request limits (``tile_size`` caps the side further)."""
    if bands < 1 or bands > MAX_BANDS:
        raise GeoDLError(f"{bands} bands: Earth Engine returns 1 to {MAX_BANDS} bands per request; choose fewer bands.")
    per_pixel = bands * (bytes_per_value + 1)
    max_pixels = max_bytes // per_pixel
    if max_pixels < 1:
        raise GeoDLError("Too many bands for one request; choose fewer bands.")
    side = min(max_side, int(math.isqrt(max_pixels)))
    if tile_size:
        side = min(side, int(tile_size))
    if side >= 256:
        side -= side % 256  # EE computes in 256-px tiles; aligned requests waste less
    tiles = []
    for row in range(0, height, side):
        for col in range(0, width, side):
            tiles.append(Tile(row, col, min(side, height - row), min(side, width - col)))
    for t in tiles:
        assert request_bytes(t.width, t.height, bands, bytes_per_value) <= max_bytes and max(t.width, t.height) <= max_side
    return tiles


@dataclass
class DownloadParams:
    bands: Sequence[str]
    crs: str  # e.g. "EPSG:32633"; the output grid's CRS
    bounds: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax in ``crs`` units
    scale: float  # pixel size in ``crs`` units
    workers: int = DEFAULT_WORKERS
    max_attempts: int = 6  # per tile, for 429/5xx/network errors
    backoff_seconds: float = 1.0  # first wait; doubles each attempt (with jitter), capped at 60 s
    tile_size: Optional[int] = None  # cap on the tile side (the request limits always apply)
    keep_parts: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def for_region(cls, bands: Sequence[str], region: Sequence[float], scale: float, crs: str = "", **kwargs: Any) -> DownloadParams:
        """The default grid for a (west, south, east, north) region in degrees: its UTM zone at ``scale``
        metres, aligned to whole pixels (the grid the training export samples on)."""
        pixels = region_grid(region, scale, crs)
        return cls(bands=list(bands), crs=pixels.crs, bounds=pixels.bounds, scale=scale, **kwargs)

    def pixel_grid(self) -> PixelGrid:
        """``bounds`` snapped outward to whole multiples of ``scale``."""
        return aligned_grid(self.crs, self.bounds, self.scale)

    def grid(self) -> tuple[int, int]:
        pixels = self.pixel_grid()
        return pixels.width, pixels.height

    def validate(self) -> DownloadParams:
        if not self.bands:
            raise GeoDLError("Choose at least one band to download.")
        if not self.scale or self.scale <= 0:
            raise GeoDLError(f"The pixel size {self.scale} must be positive.")
        xmin, ymin, xmax, ymax = self.bounds
        if not (xmin < xmax and ymin < ymax):
            raise GeoDLError(f"The region {self.bounds} is empty; give xmin < xmax and ymin < ymax.")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise GeoDLError(
                f"{self.workers} parallel requests: choose 1 to {MAX_WORKERS} (Earth Engine allows about 40 "
                f"concurrent requests per project; {DEFAULT_WORKERS} is a good default)."
            )
        width, height = self.grid()
        if width * height > MAX_TOTAL_PIXELS:
            raise GeoDLError(
                f"The region is {width}×{height} pixels at {self.scale} per pixel, too large to download directly. "
                "Use a coarser pixel size, a smaller region, or 'Export image to Cloud Storage/Drive' instead."
            )
        if self.max_attempts < 1:
            raise GeoDLError("Allow at least one attempt per tile.")
        return self

    def transform(self):
        from rasterio.transform import Affine

        pixels = self.pixel_grid()
        return Affine(self.scale, 0.0, pixels.x0, 0.0, -self.scale, pixels.y0)

    def geotiff_profile(self, count: int) -> dict[str, Any]:
        """The downloaded GeoTIFF's rasterio profile: float32 on this grid, −9999 nodata, tiled, deflated."""
        width, height = self.grid()
        return float_geotiff_profile(width, height, count, self.crs, self.transform())


def _grid(params: DownloadParams, tile: Tile) -> dict:
    pixels = params.pixel_grid()
    xmin, ymax = pixels.x0, pixels.y0
    return {
        "dimensions": {"width": tile.width, "height": tile.height},
        "affineTransform": {
            "scaleX": params.scale,
            "shearX": 0.0,
            "translateX": xmin + tile.col * params.scale,
            "shearY": 0.0,
            "scaleY": -params.scale,
            "translateY": ymax - tile.row * params.scale,
        },
        "crsCode": params.crs,
    }


def _to_array(data: bytes, bands: Sequence[str], tile: Tile) -> np.ndarray:
    try:
        structured = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise GeoDLError(f"Earth Engine sent a tile that is not an NPY array ({exc}); retry the download.") from exc
    if structured.dtype.names is None:
        array = np.asarray(structured, dtype=np.float32)
        array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    else:
        missing = [b for b in bands if b not in structured.dtype.names]
        if missing:
            raise GeoDLError(f"Earth Engine's tile lacks band(s) {', '.join(missing)}; check the band names.")
        array = np.stack([structured[b].astype(np.float32) for b in bands])
    if array.shape[1:] != (tile.height, tile.width):
        raise GeoDLError(
            f"Earth Engine sent a {array.shape[2]}×{array.shape[1]} tile for a {tile.width}×{tile.height} request; retry the download."
        )
    return array


def _fingerprint(expression: Any, params: DownloadParams, width: int, height: int) -> str:
    from ee import serializer

    text = json.dumps(
        {
            "expr": serializer.encode(expression, for_cloud_api=True),
            "bands": list(params.bands),
            "crs": params.crs,
            "bounds": list(params.pixel_grid().bounds),
            "nodata": NODATA,
            "scale": params.scale,
            "w": width,
            "h": height,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def request_fingerprint(image: Any, params: DownloadParams) -> str:
    """The fingerprint :func:`download_image` gives this request (image, bands, grid, nodata)."""
    import ee

    width, height = params.grid()
    with ee_errors("prepare the download"):
        expression = fill_masked(ee.Image(image).select(list(params.bands)).toFloat())
        return _fingerprint(expression, params, width, height)


def download_image(  # noqa: C901, PLR0915 - tiling, retries and the mosaic in one place; to split next
    image: Any,
    params: DownloadParams,
    out_path: str | os.PathLike,
    progress: Optional[Progress] = None,
    sleep: Callable[[float], None] = time.sleep,
    tags: Optional[dict[str, str]] = None,
) -> Path:
    """Fetch ``image`` (its ``params.bands``, as float32) over ``params``' grid into a GeoTIFF at ``out_path``;
    masked pixels are ``NODATA``, the file's nodata value. The file's metadata holds ``tags`` and the request's
    fingerprint (``REQUEST_TAG``), so a caller can tell a finished download of the same request."""
    import ee
    import rasterio

    progress = ensure(progress)
    params.validate()
    require_connected()
    out = check_writable(out_path)
    width, height = params.grid()
    bands = list(params.bands)
    tiles = plan_tiles(width, height, len(bands), tile_size=params.tile_size)
    with ee_errors("prepare the download"):
        expression = fill_masked(ee.Image(image).select(bands).toFloat())
        fingerprint = _fingerprint(expression, params, width, height)

    parts = out.with_name(out.name + ".parts")
    plan_file = parts / "plan.json"
    if parts.exists():
        try:
            same = json.loads(plan_file.read_text())["fingerprint"] == fingerprint
        except (OSError, ValueError, KeyError):
            same = False
        if not same:
            log.info("Discarding the finished tiles in %s: they belong to another download.", parts)
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    plan_file.write_text(json.dumps({"fingerprint": fingerprint, "width": width, "height": height, "tiles": [asdict(t) for t in tiles]}))

    def part_path(tile: Tile) -> Path:
        return parts / f"{tile.key}.npy"

    todo = [t for t in tiles if not part_path(t).exists()]
    done_before = len(tiles) - len(todo)
    if done_before:
        progress.message(f"Resuming: {done_before} of {len(tiles)} tiles already downloaded.")
    progress.message(f"Downloading {width}×{height} px, {len(bands)} band(s) in {len(tiles)} request(s).")
    stop = threading.Event()

    def fetch(tile: Tile) -> Tile:
        request = {"expression": expression, "fileFormat": "NPY", "bandIds": bands, "grid": _grid(params, tile)}
        for attempt in range(1, params.max_attempts + 1):
            if stop.is_set():
                raise Cancelled("Cancelled by the user.")
            try:
                data = ee.data.computePixels(request)
                break
            except Exception as exc:  # noqa: BLE001 - classified below
                if not is_retryable(exc):
                    with ee_errors(f"download tile {tile.key}"):
                        raise
                if attempt == params.max_attempts:
                    status = http_status(exc)
                    what = {429: "too many requests (HTTP 429)"}.get(status or 0, f"HTTP {status}" if status else str(exc))
                    raise GeoDLError(
                        f"Earth Engine kept refusing tile {tile.key}: {what}, {params.max_attempts} attempts with "
                        f"backoff. Wait a few minutes or lower the parallel requests (now {params.workers}), then run "
                        f"the download again: the {len(list(parts.glob('*.npy')))} finished tile(s) are kept "
                        "and skipped."
                    ) from exc
                wait = min(60.0, params.backoff_seconds * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                log.info("Tile %s: %s; retrying in %.1f s", tile.key, http_status(exc) or exc, wait)
                sleep(wait)
        array = _to_array(data, bands, tile)
        with atomic_path(part_path(tile)) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
        return tile

    workers = min(params.workers, MAX_WORKERS, max(1, len(todo)))
    fetch_progress = progress.sub(0, 90)
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="geodl-ee-download")
    try:
        futures = [pool.submit(fetch, t) for t in todo]
        finished = done_before
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for future in done:
                future.result()  # raises the first failure
                finished += 1
                fetch_progress.update(100.0 * finished / len(tiles))
            progress.check()
    except BaseException:
        stop.set()
        for future in futures:
            future.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    progress.update(92, "Mosaicking the tiles")
    with atomic_path(out) as tmp:
        profile = params.geotiff_profile(len(bands))
        with rasterio.open(tmp, "w", **profile) as dst:
            from rasterio.windows import Window

            for tile in tiles:
                progress.check()
                array = np.load(part_path(tile), allow_pickle=False)
                dst.write(array, window=Window(tile.col, tile.row, tile.width, tile.height))
            for i, name in enumerate(bands, start=1):
                dst.set_band_description(i, name)
            dst.update_tags(**{**(tags or {}), REQUEST_TAG: fingerprint})
    if not params.keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
    progress.update(100, f"Downloaded {out} ({width}×{height} px, {len(bands)} band(s)).")
    return out


def download_composite(composite: Any, download: DownloadParams, out_path: str | os.PathLike, progress: Optional[Progress] = None) -> Path:
    """Build the cloud-masked composite and fetch it over ``download``'s grid: what ``geodl:eedownload``
    and the dock's Imagery tab both run (Earth Engine must be connected)."""
    from .composites import build_composite

    composite.validate()
    download.validate()
    require_connected()
    return download_image(build_composite(composite), download, out_path, progress)
