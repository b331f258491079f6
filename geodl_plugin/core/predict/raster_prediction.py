"""Classify a raster window by window with a model file.

Never holds the whole raster: it reads a block of every band, classifies its valid pixels in one large
batch, and writes the block to the outputs. Outputs sit on exactly the input's grid and CRS: the class
raster (uint8, nodata 255, tiled GeoTIFF with overviews and a colour table), the confidence (the highest
class probability, float32) and optionally one probability band per class. Every output is written to a
temporary file and renamed at the end, so a cancel or a crash leaves no partial file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..data.classes import CLASSES_TAG, NODATA_CLASS
from ..data.samples import read_stack_window, stack_info
from ..io.atomic import atomic_path, check_writable
from ..io.overviews import aligned, mean_levels_fast, mode_levels_fast, overview_factors
from ..io.raster import RasterInfo, iter_windows, valid_mask
from ..models.family import TilingParams
from ..models.model_file import BlockAnswer, ModelBundle, cached_model
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure

log = logging.getLogger("geodl")

CONFIDENCE_NODATA = -1.0


@dataclass
class PredictParams:
    rasters: list[str]
    model: str
    output: str
    confidence_output: Optional[str] = None
    probabilities_output: Optional[str] = None
    entropy_output: Optional[str] = None  # uncertainty: class entropy / ln(classes), 0 sure … 1 undecided
    margin_output: Optional[str] = None  # uncertainty: best minus second-best probability, 0 undecided … 1 sure
    nodata: Optional[float] = None  # overrides the raster's and the model's
    extent: Optional[tuple[float, float, float, float]] = None  # xmin, ymin, xmax, ymax in the raster's CRS
    block_size: int = 1024  # pixels a side read, classified and written at once
    overviews: bool = True
    # The raster's bands named in order (e.g. ["B2", "B3", "B4"]), for rasters whose bands carry no names or
    # wrong ones; overrides the band descriptions when matching the model's bands.
    band_order: Optional[list[str]] = None
    tiling: TilingParams = field(default_factory=TilingParams)  # for the convolutional families
    dates: Optional[list[str]] = None  # a time series' dates, one per raster (None: from the file names)

    def __post_init__(self) -> None:
        if isinstance(self.tiling, dict):  # as it arrives from the worker's pipe
            self.tiling = TilingParams(**self.tiling)

    def validate(self) -> None:
        from ..io.paths_guard import check_outputs_against_inputs

        if not self.rasters:
            raise GeoDLError("No raster given. Choose the imagery to classify.")
        if not self.model:
            raise GeoDLError("No model file given. Train a model first (geodl:train).")
        outputs = [
            p for p in (self.output, self.confidence_output, self.probabilities_output, self.entropy_output, self.margin_output) if p
        ]
        if len(set(map(str, outputs))) != len(outputs):
            raise GeoDLError("Two outputs have the same file name; give each output its own file.")
        check_outputs_against_inputs([*self.rasters, self.model], outputs)
        for p in outputs:
            check_writable(p)
        if self.block_size < 16:
            raise GeoDLError("The block size must be at least 16 pixels.")
        self.tiling.validate()


@dataclass
class PredictResult:
    output: str
    confidence_output: Optional[str]
    probabilities_output: Optional[str]
    pixels: int  # classified (valid) pixels
    seconds: float
    class_pixel_counts: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    raster_pixels: int = 0  # width × height of the output grid: every one is read and written
    details: dict[str, Any] = field(default_factory=dict)  # how the family walked the raster (e.g. its tiles)
    entropy_output: Optional[str] = None
    margin_output: Optional[str] = None

    @property
    def megapixels_per_second(self) -> float:
        return self.pixels / 1e6 / self.seconds if self.seconds else 0.0


def _norm(name: str) -> str:
    return name.strip().lower()


def _default_names(n: int) -> list[str]:
    return [f"B{i}" for i in range(1, n + 1)]


def align_bands(
    infos: Sequence[RasterInfo], bundle: ModelBundle, band_order: Optional[Sequence[str]] = None
) -> tuple[list[RasterInfo], list[str]]:
    """Match the raster's bands to the model's by NAME: the band descriptions (or ``band_order``, the names
    the user gives the raster's bands in their order) against the model's band names. Returns the stack to
    read, in the model's band order, and notes saying what was done.

    Same names in the same order: as is. Same names in another order (or a raster with more bands that holds
    all of the model's): read in the model's order, and say so. Names that conflict: refused, since a model
    fed B4,B3,B2 as B2,B3,B4 gives a plausible-looking wrong map. Unnamed bands cannot be checked: taken in
    the model's order, with a note naming that order and the override."""
    import dataclasses

    from ..data.samples import stacked_band_names

    if ((bundle.manifest.get("training") or {}).get("series") or {}).get("bands"):
        return list(infos), []  # a series model matches the bands of each date itself (core/data/series.py)
    want = bundle.bands
    total = sum(i.count for i in infos)
    pieces: list[tuple[RasterInfo, int]] = [(i, b) for i in infos for b in range(1, i.count + 1)]
    if band_order:
        names = [str(b).strip() for b in band_order]
        if len(names) != total:
            raise GeoDLError(
                f"{len(names)} band names were given for the raster's band order, but the raster has "
                f"{total} band(s). Name every band, in the raster's order."
            )
        described = True
    else:
        described = any(info.described for info in infos)
        names = stacked_band_names(infos)
    model_unnamed = [_norm(b) for b in want] == [_norm(b) for b in _default_names(len(want))]
    if [_norm(n) for n in names] == [_norm(b) for b in want]:
        return list(infos), []
    if not described or model_unnamed:
        if total != len(want):
            return list(infos), []  # the band-count check says what is wrong
        why = "the raster's bands carry no names" if not described else "the model's bands carry no names"
        return list(infos), [
            f"Band order not checked: {why}. They were taken as the model's bands in its order "
            f"({', '.join(want)}); if the raster's bands are in another order, give the band "
            "order (BAND_ORDER)."
        ]
    position: dict[str, int] = {}
    for k, n in enumerate(names):
        position.setdefault(_norm(n), k)
    if len(position) != len(names):
        raise GeoDLError(f"The raster's band names repeat ({', '.join(names)}); give the band order (BAND_ORDER) with one name per band.")
    absent = [b for b in want if _norm(b) not in position]
    if absent:
        raise GeoDLError(
            f"The raster's bands are named {', '.join(names)} but the model was trained on {', '.join(want)} "
            f"({', '.join(absent)} not found). Choose imagery with the model's bands; if the band names are "
            "wrong, give the band order (BAND_ORDER)."
        )
    chosen = [pieces[position[_norm(b)]] for b in want]
    merged: list[RasterInfo] = []
    run: list[int] = []
    for k, (info, band) in enumerate(chosen):
        run.append(band)
        if k + 1 == len(chosen) or chosen[k + 1][0] is not info:
            picked = tuple(run)
            merged.append(
                dataclasses.replace(info, indexes=picked, count=len(picked), band_names=tuple(info.band_names[b - 1] for b in picked))
            )
            run = []
    what = "reordered" if total == len(want) else f"the {len(want)} it needs were selected"
    return merged, [
        f"The raster's bands are {', '.join(names)}; the model's are {', '.join(want)}: the bands were {what} to the model's order."
    ]


def check_raster_against_model(infos: Sequence[RasterInfo], bundle: ModelBundle) -> list[str]:
    """Errors for what makes a prediction wrong (band count, dtype, CRS units); warnings for the doubtful."""
    bands = sum(i.count for i in infos)
    want = bundle.bands
    first = infos[0]
    meta = bundle.raster_meta
    # A time-series model reads any number of dates of its bands (it checks the bands of a date itself).
    per_date = len(((bundle.manifest.get("training") or {}).get("series") or {}).get("bands") or [])
    if bands != len(want) and not (per_date and bands % per_date == 0):
        raise GeoDLError(
            f"The raster has {bands} band(s) but the model '{Path(bundle.path).name}' was trained on {len(want)} "
            f"({', '.join(want)}). Choose the raster (or stack) with those bands, in that order."
        )
    src_dtype = meta.get("source_dtype")
    dtypes = {i.dtype for i in infos}
    if src_dtype and dtypes != {src_dtype}:
        raise GeoDLError(
            f"The raster's data type is {', '.join(sorted(dtypes))} but the model was trained on {src_dtype} "
            "pixels. Values on another scale (e.g. reflectance 0-1 vs digital numbers) give wrong maps: use imagery "
            "processed like the training imagery."
        )
    warnings = []
    units = meta.get("crs_units")
    if units and first.crs_units and units != first.crs_units:
        raise GeoDLError(
            f"The raster's CRS is in {first.crs_units} but the model was trained on a grid in {units}. "
            "Reproject the raster to a CRS like the training one."
        )
    size = meta.get("pixel_size") or [0, 0]  # None or 0: unknown (samples without a sidecar)
    if size[0] and first.res[0] and not 0.5 <= first.res[0] / float(size[0]) <= 2.0:
        warnings.append(
            f"The raster's pixels are {first.res[0]:g} {first.crs_units} but the model was trained on "
            f"{float(size[0]):g}: expect lower accuracy."
        )
    elif size[0] and abs(first.res[0] / float(size[0]) - 1.0) > 0.01:
        warnings.append(
            f"The raster's pixels are {first.res[0]:g} {first.crs_units}, not the {float(size[0]):g} of "
            "the training grid: resample onto the training grid for the model's accuracy."
        )
    trained_crs = str(meta.get("crs_wkt") or "")
    if trained_crs and first.crs_wkt and not _same_crs(trained_crs, first.crs_wkt):
        warnings.append(
            "The raster's CRS is not the one the model's samples were taken in; pixels of another "
            "projection have another shape on the ground. Reproject the raster onto the training grid."
        )
    return warnings


def _same_crs(a: str, b: str) -> bool:
    from rasterio.crs import CRS

    try:
        return bool(CRS.from_wkt(a) == CRS.from_wkt(b))
    except Exception:  # noqa: BLE001 - an unreadable WKT is not evidence of a mismatch
        return True


def _window_of_extent(info: RasterInfo, extent: Optional[Sequence[float]]) -> tuple[int, int, int, int]:
    """The pixel window covering ``extent``: every pixel it touches, none beyond (an edge that falls exactly
    on a pixel boundary does not pull in the next pixel)."""
    if extent is None:
        return 0, 0, info.width, info.height
    xmin, ymin, xmax, ymax = extent
    a, b, c, d, e, f = info.transform
    det = a * e - b * d
    xs, ys = np.array([xmin, xmax, xmin, xmax]), np.array([ymax, ymax, ymin, ymin])
    cols = (e * (xs - c) - b * (ys - f)) / det
    rows = (-d * (xs - c) + a * (ys - f)) / det
    eps = 1e-6
    c0, c1 = max(0, int(np.floor(cols.min() + eps))), min(info.width, int(np.ceil(cols.max() - eps)))
    r0, r1 = max(0, int(np.floor(rows.min() + eps))), min(info.height, int(np.ceil(rows.max() - eps)))
    if c1 <= c0 or r1 <= r0:
        raise GeoDLError("The region to classify does not overlap the raster. Pick a region inside the imagery.")
    return c0, r0, c1 - c0, r1 - r0


# Float outputs holding continuous fields (a regression's value and spread): the floating-point predictor
# makes them much smaller. Probabilities and their kin are noisy in the last bits; there it costs time, not size.
SMOOTH_OUTPUTS = frozenset({"value", "spread"})


def compression_threads(float_bands: int, cores: Optional[int] = None) -> str:
    """GDAL's NUM_THREADS for a prediction's outputs. GDAL's pool hands every tile to a worker thread (a copy of
    the tile, a wake-up). On two cores, which the reader and the model already keep busy, that hand-off is pure
    cost: written in the writer's own thread, the DNN's class + confidence of the 15 Mpx mosaic took 0.33-0.40
    CPU-s against 0.42-0.50 through the pool, and the whole prediction ran ~5% faster in three of four A/B runs.
    With more to compress (probabilities, uncertainty, a regression's two rasters) the writer would become the
    slowest stage, and the pool shares its work (the DNN writing its probabilities, entropy and margin too: 12%
    slower without it); with more cores, spare ones absorb the pool's cost."""
    cores = cores or os.cpu_count() or 1
    return "1" if cores <= 2 and float_bands <= 1 else "ALL_CPUS"


def _creation_options(width: int, height: int, dtype: str, key: str, threads: str) -> list[str]:
    """Tiled GeoTIFF, compressed (``threads``: :func:`compression_threads`): compression was the largest cost of a prediction. Class maps:
    DEFLATE level 1 without a predictor (their values are labels, not magnitudes: the horizontal predictor
    made the sample DNN's 15 Mpx map larger and slower, 1.9 MB in 0.086 s against 1.7 MB in 0.069 s), small and
    readable by every tool. Float rasters: ZSTD level 1, measured on the DNN's confidence of the sample scene
    (15 Mpx) against DEFLATE level 1 + floating-point predictor: 42 MB instead of 38 MB at a quarter of the CPU
    time (0.19 s instead of 0.7 s); a regression's value and spread keep the floating-point predictor
    (:data:`SMOOTH_OUTPUTS`). QGIS and every GDAL ≥ 2.3 read ZSTD; ``gdal_translate -co COMPRESS=DEFLATE`` makes
    a copy for tools that do not."""
    block = 256 if min(width, height) >= 256 else 16 * max(1, min(width, height) // 16)
    block = max(16, block)
    if not dtype.startswith("float"):
        codec = ["COMPRESS=DEFLATE", "ZLEVEL=1"]
    else:
        codec = ["COMPRESS=ZSTD", "ZSTD_LEVEL=1", f"PREDICTOR={3 if key in SMOOTH_OUTPUTS else 1}"]
    return ["TILED=YES", f"BLOCKXSIZE={block}", f"BLOCKYSIZE={block}", *codec, f"NUM_THREADS={threads}", "BIGTIFF=IF_SAFER"]


def pipeline_windows(width: int, height: int, block: int, align: int = 32) -> list[tuple[int, int, int, int]]:
    """The blocks a prediction walks (row-major, at most block×block), the first and the last cut into strips
    a quarter block high. Reading, classifying and writing overlap block by block, except at the ends: nothing
    can be classified until the first block is read, and the last one is classified and written after the
    reader has finished. Strips shorten both ends (measured on the DNN over the 15 Mpx sample mosaic: its first
    block written after ~28 ms instead of ~72, and ~20 ms less from the last read to the end). Strip offsets
    stay multiples of ``align`` (the largest overview factor), so each strip's overview pieces line up."""
    windows = list(iter_windows(width, height, block))
    strip = max(align, block // 4 // align * align)

    def strips(window: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
        c, r, w, h = window
        return [(c, r + k, w, min(strip, h - k)) for k in range(0, h, strip)]

    if len(windows) == 1:
        return strips(windows[0])
    return [*strips(windows[0]), *windows[1:-1], *strips(windows[-1])]


def _blocks_ahead(infos: Sequence[RasterInfo], origin: tuple[int, int], windows: list, depth: int = 2):
    """Read the next blocks in a background thread while the current one is classified and written
    (GDAL and the model both release the GIL, so reading, computing and writing overlap)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def reader() -> None:
        try:
            for c, r, w, h in windows:
                if stop.is_set():
                    return
                q.put((c, r, w, h, read_stack_window(infos, origin[0] + c, origin[1] + r, w, h)))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        for _ in windows:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class PredictionOutputs:
    """The class raster, confidence and optional per-class probabilities of one prediction. Each is written
    to a temporary file in ``stack`` and renamed over its target only if the whole prediction succeeds.

    Blocks are written by a background thread, so writing one block overlaps classifying the next. That
    thread also computes the block's overview pieces (``overviews.py``: mode for classes, mean for floats)
    and flushes the block: GDAL compresses tiles only when they leave its cache, so without the flush all
    the compression would wait for the close, after the last block. The files are written through GDAL's own
    API because rasterio has neither a flush nor access to overview levels."""

    def __init__(
        self,
        stack: contextlib.ExitStack,
        params: PredictParams,
        info: RasterInfo,
        width: int,
        height: int,
        transform: Any,
        classes: Any,
        layout: Optional[dict[str, tuple[Optional[str], int, str, float]]] = None,
    ) -> None:
        """``layout`` (key → target path, bands, dtype, nodata) replaces the classifier's outputs, e.g. a
        regression's float value and spread; a key other than "class" gets mean overviews."""
        from osgeo import gdal

        gdal.UseExceptions()
        self.classes = classes
        self.factors = overview_factors(width, height) if params.overviews else []
        self.progressive = True  # overviews from the blocks; False once a block is off the overview grid
        targets = layout or {
            "class": (params.output, 1, "uint8", NODATA_CLASS),
            "confidence": (params.confidence_output, 1, "float32", CONFIDENCE_NODATA),
            "probabilities": (params.probabilities_output, len(classes), "float32", CONFIDENCE_NODATA),
            "entropy": (getattr(params, "entropy_output", None), 1, "float32", CONFIDENCE_NODATA),
            "margin": (getattr(params, "margin_output", None), 1, "float32", CONFIDENCE_NODATA),
        }
        self.nodata = {key: t[3] for key, t in targets.items()}
        types = {"uint8": gdal.GDT_Byte, "float32": gdal.GDT_Float32}
        geotransform = (transform.c, transform.a, transform.b, transform.f, transform.d, transform.e)
        self.paths: dict[str, Any] = {}
        self.datasets: dict[str, Any] = {}
        threads = compression_threads(sum(t[1] for t in targets.values() if t[0] and t[2].startswith("float")))
        for key, (target, count, dtype, nodata) in targets.items():
            if not target:
                continue
            self.paths[key] = path = stack.enter_context(atomic_path(target))
            try:
                ds = gdal.GetDriverByName("GTiff").Create(
                    str(path), width, height, count, types[dtype], _creation_options(width, height, dtype, key, threads)
                )
            except RuntimeError as exc:
                raise GeoDLError(f"Cannot create the output '{target}': {exc}") from exc
            ds.SetGeoTransform(geotransform)
            ds.SetProjection(info.crs_wkt or "")
            for band in range(1, count + 1):
                ds.GetRasterBand(band).SetNoDataValue(nodata)
            self.datasets[key] = ds
            # Closed (the last reference dropped) before its temporary file is renamed or removed: the
            # stack unwinds last-in, first-out. A finished prediction has closed it already.
            stack.callback(self.datasets.pop, key, None)
            if self.factors:
                ds.BuildOverviews("NONE", self.factors)  # empty levels, filled block by block
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: Optional[BaseException] = None
        self._writer = threading.Thread(target=self._write_blocks, daemon=True)
        self._writer.start()
        stack.callback(self._stop)  # runs before the datasets close, also when the prediction fails

    def _write_blocks(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # drain after a failure
            col, row, blocks, pyramid = item
            try:
                if "uncertainty" in blocks:  # computed here, overlapping the classification of the next block
                    probabilities, valid = blocks.pop("uncertainty")
                    blocks.update(uncertainty_blocks(probabilities, valid, len(self.classes)))
                for key, block in blocks.items():
                    ds = self.datasets.get(key)
                    if ds is None:
                        continue
                    ds.WriteArray(block, xoff=col, yoff=row)
                    if pyramid:
                        self._write_overviews(ds, key, col, row, block)
                    ds.FlushCache()  # compress now, in this thread, not at the close
            except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
                self._error = exc

    def _write_overviews(self, ds: Any, key: str, col: int, row: int, block: np.ndarray) -> None:
        """Write the block's piece of every overview level. Blocks come row by row; after the last block of a
        row, a level whose tile row is now complete is flushed (compressed, and out of GDAL's cache), so
        memory holds at most one tile row per level, whatever the raster's size."""
        h, w = block.shape[1:]
        row_done = col + w == ds.RasterXSize
        for b, band_block in enumerate(block, start=1):
            levels = (
                mode_levels_fast(band_block, self.factors, NODATA_CLASS)
                if key == "class"
                else mean_levels_fast(band_block, self.factors, self.nodata[key])
            )
            band = ds.GetRasterBand(b)
            for i, (factor, level) in enumerate(zip(self.factors, levels)):
                overview = band.GetOverview(i)
                overview.WriteArray(level, col // factor, row // factor)
                tile_rows = factor * overview.GetBlockSize()[1]
                if row_done and ((row + h) % tile_rows == 0 or row + h == ds.RasterYSize):
                    overview.FlushCache()

    def _stop(self) -> None:
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join()

    def _close(self) -> None:
        self.datasets.clear()  # dropping the last reference to a GDAL dataset closes it

    def _raise_writer_error(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, window: Any, classes: np.ndarray, confidence: np.ndarray, probabilities: np.ndarray) -> None:
        """(h, w) class ids and confidence, (C, h, w) probabilities, at ``window``."""
        self._raise_writer_error()
        col, row = int(window.col_off), int(window.row_off)
        self.progressive = self.progressive and aligned(col, row, self.factors)
        blocks: dict[str, Any] = {"class": classes[None], "confidence": confidence[None], "probabilities": probabilities}
        if self.wants_uncertainty:
            blocks["uncertainty"] = (probabilities, classes != NODATA_CLASS)
        self._queue.put((col, row, blocks, bool(self.factors) and self.progressive))

    def write_blocks(self, window: Any, blocks: dict[str, np.ndarray]) -> None:
        """(bands, h, w) blocks by output key, at ``window``."""
        self._raise_writer_error()
        col, row = int(window.col_off), int(window.row_off)
        self.progressive = self.progressive and aligned(col, row, self.factors)
        self._queue.put((col, row, blocks, bool(self.factors) and self.progressive))

    @property
    def wants_probabilities(self) -> bool:
        return "probabilities" in self.datasets

    @property
    def wants_uncertainty(self) -> bool:
        return "entropy" in self.datasets or "margin" in self.datasets

    @property
    def needs_probabilities(self) -> bool:
        """Whether ``write`` must be given every class's probabilities (for that output or the uncertainty)."""
        return self.wants_probabilities or self.wants_uncertainty

    def finish(self, progress: Progress) -> None:
        """Colour table and descriptions, then close. Overviews were written with the blocks; if a block was
        off the overview grid, they are built now from the closed files (mode for classes, average for
        floats), one thread per output."""
        self._stop()
        self._raise_writer_error()
        if "class" in self.datasets:
            _describe(self.datasets, self.classes)
        self._close()
        if self.factors and not self.progressive:
            progress.check()
            self._build_overviews()
        progress.check()  # a cancel during the last block still leaves nothing

    def _build_overviews(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import rasterio
        from rasterio.enums import Resampling

        def build(key: str) -> None:
            with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(self.paths[key], "r+") as ds:
                ds.build_overviews(self.factors, Resampling.mode if key == "class" else Resampling.average)

        with ThreadPoolExecutor(max_workers=len(self.paths)) as pool:
            list(pool.map(build, self.paths))


@dataclass
class PredictContext:
    """A prediction after the checks every family shares: the model against the raster, the window of the
    region, the output grid's transform and the nodata value. A family's predictor takes it from here."""

    params: PredictParams
    bundle: ModelBundle
    infos: list[RasterInfo]
    region: tuple[int, int, int, int]  # col0, row0, width, height in the raster
    transform: Any  # the output grid's affine transform
    nodata: Optional[float]
    warnings: list[str]
    progress: Progress
    started: float

    def result(self, n_pixels: int, counts: np.ndarray, verb: str = "classified") -> PredictResult:
        params, classes = self.params, self.bundle.classes
        seconds = time.perf_counter() - self.started
        width, height = self.region[2:]
        result = PredictResult(
            params.output,
            params.confidence_output,
            params.probabilities_output,
            n_pixels,
            seconds,
            {c.name: int(counts[i]) for i, c in enumerate(classes)},
            self.warnings,
            width * height,
            entropy_output=getattr(params, "entropy_output", None),
            margin_output=getattr(params, "margin_output", None),
        )
        self.progress.update(100, f"{verb} {n_pixels / 1e6:.2f} Mpx in {seconds:.1f} s ({result.megapixels_per_second:.2f} Mpx/s)")
        return result


def prepare_prediction(params: PredictParams, progress: Optional[Progress] = None, bundle: Optional[ModelBundle] = None) -> PredictContext:
    import rasterio
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    progress = ensure(progress)
    params.validate()
    started = time.perf_counter()
    bundle = bundle or cached_model(params.model)
    infos, notes = align_bands(stack_info(params.rasters), bundle, params.band_order)
    warnings = notes + check_raster_against_model(infos, bundle)
    for w in warnings:
        log.warning(w)
    info = infos[0]
    nodata = params.nodata if params.nodata is not None else (info.nodata if info.nodata is not None else bundle.raster_meta.get("nodata"))
    col0, row0, width, height = _window_of_extent(info, params.extent)
    transform = window_transform(Window(col0, row0, width, height), rasterio.Affine(*info.transform))
    return PredictContext(params, bundle, infos, (col0, row0, width, height), transform, nodata, warnings, progress, started)


def predict_pixels(ctx: PredictContext) -> PredictResult:
    """The per-pixel families: blocks of valid pixels through the model, class and confidence back."""
    from rasterio.windows import Window

    params, bundle, progress = ctx.params, ctx.bundle, ctx.progress
    col0, row0, width, height = ctx.region
    classes = bundle.classes
    ids = np.array(classes.ids, dtype=np.uint8)
    counts = np.zeros(len(classes), dtype=np.int64)
    with contextlib.ExitStack() as stack:
        outputs = PredictionOutputs(stack, params, ctx.infos[0], width, height, ctx.transform, classes)
        windows = pipeline_windows(width, height, params.block_size)
        for n, (c, r, w, h, block) in enumerate(_blocks_ahead(ctx.infos, (col0, row0), windows)):
            progress.check()
            flat = block.reshape(block.shape[0], -1)
            wanted = outputs.needs_probabilities
            # The pixel DNN takes the block as read (one compiled pass); other models get valid float pixels.
            answer = bundle.classify_block(flat, ctx.nodata, ids, NODATA_CLASS, CONFIDENCE_NODATA, wanted)
            if answer is None:
                answer = classify_valid(bundle, flat, ctx.nodata, ids, wanted)
            counts += answer.counts
            probabilities = answer.probabilities if answer.probabilities is not None else np.empty((0, 0), np.float32)
            window = Window(c, r, w, h)
            outputs.write(window, answer.classes.reshape(h, w), answer.confidence.reshape(h, w), probabilities.reshape(-1, h, w))
            progress.update(95.0 * (n + 1) / len(windows), "")
        outputs.finish(progress)
    return ctx.result(int(counts.sum()), counts)


def classify_valid(bundle: ModelBundle, flat: np.ndarray, nodata: Optional[float], ids: np.ndarray, probabilities: bool) -> BlockAnswer:
    """(bands, n) raster values through ``bundle.classify``: only the valid pixels, as float32; class ids, the
    confidence and the probabilities back in place, nodata elsewhere."""
    n = flat.shape[1]
    ok = valid_mask(flat[:, None, :], nodata).ravel()
    every = bool(ok.all())  # the usual block: no nodata, so no masked copies either way
    # (n, bands) as a view of band-major floats: a plain conversion, no transposing copy
    pixels = (flat if every else flat[:, ok]).astype(np.float32).T
    class_block = np.full(n, NODATA_CLASS, dtype=np.uint8)
    conf_block = np.full(n, CONFIDENCE_NODATA, dtype=np.float32)
    prob_block = np.full((len(ids), n), CONFIDENCE_NODATA, dtype=np.float32) if probabilities else None
    counts = np.zeros(len(ids), np.int64)
    if len(pixels):
        classified = bundle.classify(pixels, probabilities=probabilities)
        if every:
            class_block, conf_block = ids[classified.index], np.asarray(classified.confidence, np.float32)
        else:
            class_block[ok] = ids[classified.index]
            conf_block[ok] = classified.confidence
        counts = np.bincount(classified.index, minlength=len(ids)).astype(np.int64)
        if prob_block is not None and classified.probabilities is not None:
            prob_block[:, ok] = classified.probabilities.T
    return BlockAnswer(class_block, conf_block, prob_block, counts)


def _describe(outputs: dict, classes: Any) -> None:
    """Colour table and band descriptions, so the outputs read well outside QGIS too."""
    from osgeo import gdal

    table = gdal.ColorTable()
    for c in classes:
        table.SetColorEntry(int(c.id), tuple(int(c.color[i : i + 2], 16) for i in (1, 3, 5)) + (255,))
    band = outputs["class"].GetRasterBand(1)
    band.SetRasterColorTable(table)
    band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
    band.SetDescription("class")
    # The class table travels inside the map (a GeoTIFF metadata tag), so evaluating it against named
    # reference points matches by name.
    import json

    outputs["class"].SetMetadataItem(CLASSES_TAG, json.dumps(classes.to_json()))
    if "confidence" in outputs:
        outputs["confidence"].GetRasterBand(1).SetDescription("confidence (highest class probability)")
    if "entropy" in outputs:
        outputs["entropy"].GetRasterBand(1).SetDescription("entropy / ln(classes): 0 sure, 1 undecided")
    if "margin" in outputs:
        outputs["margin"].GetRasterBand(1).SetDescription("margin: best minus second-best probability (low = unsure)")
    if "probabilities" in outputs:
        for i, c in enumerate(classes, start=1):
            outputs["probabilities"].GetRasterBand(i).SetDescription(f"p({c.name})")


def uncertainty_from_probabilities(probs: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(normalised entropy, margin) of class probabilities along ``axis``: entropy / ln(classes) in [0, 1]
    (1 = all classes equally likely) and best minus second-best probability in [0, 1] (0 = a tie). The same
    for every model family, from the probabilities it predicts."""
    p = np.moveaxis(np.asarray(probs, np.float32), axis, 0)
    n = p.shape[0]
    if n < 2:
        zeros = np.zeros(p.shape[1:], np.float32)
        return zeros, np.ones_like(zeros)
    # One pass per class over float32 planes (no (C, n) temporaries, no sort): several times faster than
    # partition/where on a block of a million pixels, which matters because it runs for every block.
    entropy = np.zeros(p.shape[1:], np.float32)
    top1 = np.full(p.shape[1:], -1.0, np.float32)
    top2 = np.full(p.shape[1:], -1.0, np.float32)
    term = np.empty(p.shape[1:], np.float32)
    for plane in p:
        np.clip(plane, 1e-12, 1.0, out=term)
        np.log(term, out=term)
        term *= plane
        entropy -= term
        np.maximum(top2, np.minimum(top1, plane), out=top2)
        np.maximum(top1, plane, out=top1)
    entropy /= np.float32(np.log(n))
    return np.clip(entropy, 0.0, 1.0, out=entropy), np.clip(top1 - top2, 0.0, 1.0)


def uncertainty_blocks(probabilities: np.ndarray, valid: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """The entropy and margin blocks (1, h, w) for the writer from (C, h, w) probabilities; nodata where the
    class block is nodata."""
    h, w = valid.shape
    entropy = np.full((h, w), CONFIDENCE_NODATA, np.float32)
    margin = np.full((h, w), CONFIDENCE_NODATA, np.float32)
    if probabilities.size == n_classes * h * w and valid.any():
        probs = probabilities.reshape(n_classes, h, w)
        if valid.all():
            entropy, margin = uncertainty_from_probabilities(probs, axis=0)
        else:
            e, m = uncertainty_from_probabilities(probs[:, valid], axis=0)
            entropy[valid], margin[valid] = e, m
    return {"entropy": entropy[None], "margin": margin[None]}


def predict_samples(bundle: ModelBundle, x: np.ndarray) -> np.ndarray:
    """Class ids for sample vectors, through the same predictor as the raster path."""
    return np.array(bundle.classes.ids)[bundle.classify(x).index]
