"""Time-series imagery: co-registered rasters over dates, read as (dates, bands, h, w) with missing values NaN.

A series is either **one raster per date** (each with the same bands, on one grid; the date from the file
name, the raster's metadata, or given) or **one stack with a band per date** (``order="date"``: all bands of
the first date, then the second…; ``order="band"``: every date of the first band, then the second…; dates
from the band descriptions or given). Dates are sorted; the same date twice is an error.

Missing observations are never zero-filled: a pixel that is nodata (or non-finite) in any band of a date is
missing on that date, and is read as NaN in every band of it. The networks (``models/temporal.py``) take NaN
as "not observed" and carry their state over it, so a cloud-masked pixel costs one date, not a made-up value.

The network input puts, for every date, its bands then its day of year (1-366) in the channels: see
:func:`model_channels`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..io.raster import RasterInfo, open_raster, raster_info, read_into, same_grid
from ..runtime.errors import GeoDLError

# YYYYMMDD, YYYY-MM-DD or YYYY_MM_DD, not inside a longer run of digits.
_DATE = re.compile(r"(?<!\d)((?:19|20)\d\d)[-_]?(0[1-9]|1[0-2])[-_]?(0[1-9]|[12]\d|3[01])(?!\d)")
# GDAL metadata items that carry an acquisition date (GeoTIFF, Sentinel-2 and Landsat readers, EE downloads).
_DATE_TAGS = (
    "ACQUISITION_DATE",
    "ACQUISITIONDATE",
    "DATE_ACQUIRED",
    "SENSING_TIME",
    "PRODUCT_START_TIME",
    "system:time_start",
    "DATE",
    "TIFFTAG_DATETIME",
)
ORDERS = ("date", "band")
DOY = "doy"


def parse_date(text: str) -> Optional[dt.date]:
    """The first date written as YYYYMMDD / YYYY-MM-DD / YYYY_MM_DD (or ``YYYY:MM:DD``, TIFF's) in ``text``."""
    match = _DATE.search(text) or re.search(r"((?:19|20)\d\d):(0[1-9]|1[0-2]):(0[1-9]|[12]\d|3[01])", text)
    if not match:
        return None
    try:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:  # 20200231
        return None


def as_date(value: str | dt.date | dt.datetime) -> dt.date:
    """A date from a ``date``, a ``datetime`` or text holding one (``2020-05-18``, ``20200518``)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    date = parse_date(str(value))
    if date is None:
        raise GeoDLError(f"'{value}' is not a date; write dates as YYYY-MM-DD (e.g. 2020-05-18).")
    return date


def date_key(date: dt.date) -> str:
    return date.strftime("%Y%m%d")


def day_of_year(dates: Sequence[dt.date]) -> np.ndarray:
    return np.array([d.timetuple().tm_yday for d in dates], np.float32)


def _date_from_metadata(path: str) -> Optional[dt.date]:
    import rasterio

    with rasterio.open(path) as ds:
        tags = {k.upper(): v for k, v in ds.tags().items()}
    for key in _DATE_TAGS:
        value = tags.get(key.upper())
        if value is None:
            continue
        if key == "system:time_start" and str(value).isdigit():  # milliseconds since 1970, as Earth Engine
            return dt.datetime.fromtimestamp(int(value) / 1000, tz=dt.UTC).date()
        date = parse_date(str(value))
        if date is not None:
            return date
    return None


@dataclass(frozen=True)
class SeriesImage:
    """An opened series: its rasters, dates (sorted), the band names of one date and the nodata value."""

    infos: tuple[RasterInfo, ...]
    dates: tuple[dt.date, ...]
    bands: tuple[str, ...]
    nodata: Optional[float]
    order: str = "files"  # "files": one raster per date; "date"/"band": one stack in that band order
    band_index: tuple[tuple[int, ...], ...] = ()  # per date: the 0-based bands of the stack (stack only)
    file_index: tuple[int, ...] = ()  # per date: which of ``infos`` holds it (files only)

    @property
    def n_dates(self) -> int:
        return len(self.dates)

    @property
    def n_bands(self) -> int:
        return len(self.bands)

    @property
    def info(self) -> RasterInfo:
        return self.infos[0]

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height

    @property
    def doy(self) -> np.ndarray:
        return day_of_year(self.dates)

    def open(self, stack: contextlib.ExitStack) -> list[Any]:
        """The series' rasters opened (GDAL datasets, one per ``infos``), closed with ``stack``: a caller
        reading many windows (tiled prediction: every strip, every date) opens them once. GDAL's own API,
        not rasterio's: its ``open`` costs ~2 ms a file, and GDAL reads straight into the float buffer."""
        opened = [open_raster(info.path) for info in self.infos]
        stack.callback(opened.clear)  # dropping the last reference closes a dataset
        return opened

    def feature_names(self) -> list[str]:
        """``{band}_{YYYYMMDD}`` for every date and band, date-major: the sample features (one per band and
        date, as an Earth Engine export of a multi-date image names them)."""
        return [f"{b}_{date_key(d)}" for d in self.dates for b in self.bands]

    def read(
        self, col: int, row: int, width: int, height: int, edge: str = "reflect", datasets: Optional[Sequence[Any]] = None
    ) -> np.ndarray:
        """(dates, bands, h, w) float32; missing observations NaN. Outside the raster: mirrored
        (``edge="reflect"``, as tiled prediction wants) or NaN (``edge="missing"``). ``datasets``: the
        rasters already open (:meth:`open`), one per ``infos``; else each is opened for this read."""
        from osgeo import gdal_array

        info = self.info
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + width, info.width), min(row + height, info.height)
        if c1 <= c0 or r1 <= r0:
            raise GeoDLError(f"The window ({col}, {row}, {width}×{height}) lies outside the series' rasters.")
        w, h = c1 - c0, r1 - r0
        out = np.empty((self.n_dates, self.n_bands, h, w), np.float32)
        with contextlib.ExitStack() as stack:
            sources = list(datasets) if datasets is not None else self.open(stack)
            integers = all(
                np.issubdtype(gdal_array.GDALTypeCodeToNumericTypeCode(source.GetRasterBand(b).DataType), np.integer)
                for source in sources
                for b in range(1, source.RasterCount + 1)
            )
            if self.order == "files":
                for t, i in enumerate(self.file_index):
                    read_into(sources[i], self.infos[i].path, c0, r0, out[t])  # converted to float32 as it is read
            else:
                block = np.empty((sources[0].RasterCount, h, w), np.float32)
                read_into(sources[0], info.path, c0, r0, block)
                for t, idx in enumerate(self.band_index):
                    out[t] = block[list(idx)]
        # A date is missing at a pixel where any band is non-finite or nodata. Integer rasters (the usual case)
        # hold no non-finite value; masked by copyto, not by boolean indexing (a tenth of the time a strip).
        missing = np.zeros((self.n_dates,) + out.shape[2:], bool) if integers else ~np.isfinite(out).all(axis=1)
        if self.nodata is not None and np.isfinite(self.nodata):
            missing |= (out == np.float32(self.nodata)).any(axis=1)
        if missing.any():
            np.copyto(out, np.float32(np.nan), where=missing[:, None])
        pad = ((0, 0), (0, 0), (r0 - row, row + height - r1), (c0 - col, col + width - c1))
        if any(p for pair in pad for p in pair):
            out = np.pad(out, pad, mode="symmetric") if edge == "reflect" else np.pad(out, pad, mode="constant", constant_values=np.nan)
        return out


def _check_grid(infos: Sequence[RasterInfo]) -> None:
    first = infos[0]
    for info in infos[1:]:
        if not same_grid(info, first):
            raise GeoDLError(
                f"'{info.path}' is not on the grid of '{first.path}' ({info.width}×{info.height} vs "
                f"{first.width}×{first.height}). Resample the dates onto one grid (e.g. gdal:warpreproject)."
            )
        if info.count != first.count:
            raise GeoDLError(
                f"'{info.path}' has {info.count} bands and '{first.path}' {first.count}; every date of a series needs the same bands."
            )


def raster_date(path: str | os.PathLike) -> Optional[dt.date]:
    """The date of one raster of a series: from its file name (not its folder's: a folder named by the day of a
    download is not the date of the image), else from its metadata (e.g. ``ACQUISITION_DATE``); None if neither
    holds one."""
    return parse_date(Path(path).name) or _date_from_metadata(str(path))


def _file_dates(infos: Sequence[RasterInfo], dates: Optional[Sequence]) -> list[dt.date]:
    if dates:
        if len(dates) != len(infos):
            raise GeoDLError(f"{len(dates)} dates given for {len(infos)} rasters; give one date per raster.")
        return [as_date(d) for d in dates]
    found = []
    for info in infos:
        date = raster_date(info.path)
        if date is None:
            raise GeoDLError(
                f"No date found for '{info.path}' (neither in its file name, e.g. "
                "'s2_20200518.tif', nor in its metadata). Give the dates explicitly."
            )
        found.append(date)
    return found


def _stack_layout(
    info: RasterInfo, dates: Optional[Sequence], order: str, bands_per_date: Optional[int]
) -> tuple[list[dt.date], list[tuple[int, ...]], int]:
    """(dates, per date its band indices, bands per date) of a band-per-date stack."""
    if order not in ORDERS:
        raise GeoDLError(f"Unknown band order '{order}'; choose 'date' (all bands of a date together) or 'band'.")
    if dates:
        parsed = [as_date(d) for d in dates]
    else:  # from band descriptions such as "B2_20200518" or "20200518_B2"
        per_band = [parse_date(name) for name in info.band_names]
        if any(d is None for d in per_band):
            raise GeoDLError(
                f"'{info.path}' is one raster: give the dates of its bands (its band descriptions {list(info.band_names)[:4]}… carry none)."
            )
        parsed = list(dict.fromkeys(d for d in per_band if d is not None))
    n = len(parsed)
    if info.count % n:
        raise GeoDLError(f"'{info.path}' has {info.count} bands, not a multiple of its {n} dates.")
    b = bands_per_date or info.count // n
    if b * n != info.count:
        raise GeoDLError(f"{n} dates × {b} bands is {b * n}, but '{info.path}' has {info.count} bands.")
    if order == "date":
        index = [tuple(range(t * b, (t + 1) * b)) for t in range(n)]
    else:
        index = [tuple(k * n + t for k in range(b)) for t in range(n)]
    return parsed, index, b


def _strip_dates(names: Sequence[str]) -> list[str]:
    out = []
    for name in names:
        stripped = _DATE.sub("", name).strip("_- ")
        out.append(stripped or name)
    return out


def open_series(
    rasters: Sequence[str | os.PathLike],
    dates: Optional[Sequence[str | dt.date]] = None,
    band_names: Optional[Sequence[str]] = None,
    order: Optional[str] = None,
    nodata: Optional[float] = None,
    infos: Optional[Sequence[RasterInfo]] = None,
) -> SeriesImage:
    """Open a series. Several rasters: one per date (``order`` ignored). One raster: a single date if it has
    one, or a band-per-date stack when ``order`` (``"date"`` or ``"band"``) is given or its band descriptions
    carry dates. ``band_names`` name the bands of one date (default: the first raster's, dates removed).
    ``infos``: the rasters' facts when the caller already has them (one per raster, in order)."""
    if not rasters:
        raise GeoDLError("No raster given. Choose the dates of the series (one raster per date, or one stack).")
    infos = list(infos) if infos is not None and len(infos) == len(rasters) else [raster_info(r) for r in rasters]
    _check_grid(infos)
    first = infos[0]
    nodata_value = nodata if nodata is not None else first.nodata
    stacked = len(infos) == 1 and (
        order in ORDERS
        or (not dates and len({parse_date(b) for b in first.band_names} - {None}) > 1)
        or (dates is not None and len(dates) > 1)
    )
    if stacked:
        parsed, index, b = _stack_layout(first, dates, order or "date", None)
        default_names = _strip_dates([first.band_names[i] for i in index[0]])
        names = list(band_names) if band_names else default_names
        order_used = order or "date"
        band_index: list[tuple[int, ...]] = index
        file_index: list[int] = []
    else:
        parsed = _file_dates(infos, dates)
        b = first.count
        names = list(band_names) if band_names else _strip_dates(first.band_names)
        order_used, band_index, file_index = "files", [], list(range(len(infos)))
    if len(names) != b:
        raise GeoDLError(f"{len(names)} band names given for {b} bands per date; give one name per band.")
    if len(set(names)) != len(names):
        names = [f"B{i + 1}" for i in range(b)]
    repeated = sorted({date_key(d) for d in parsed if parsed.count(d) > 1})
    if repeated:
        raise GeoDLError(f"The date(s) {repeated} occur twice in the series; give each date once (merge or drop the duplicate).")
    sort = sorted(range(len(parsed)), key=lambda t: parsed[t])
    return SeriesImage(
        infos=tuple(infos),
        dates=tuple(parsed[t] for t in sort),
        bands=tuple(names),
        nodata=nodata_value,
        order=order_used,
        band_index=tuple(band_index[t] for t in sort) if band_index else (),
        file_index=tuple(file_index[t] for t in sort) if file_index else (),
    )


def model_channels(series_block: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """(dates, bands, h, w) with NaN → (dates·(bands+1), h, w): per date its bands then its day of year, the
    network input layout (``models/temporal.py``)."""
    t, b, h, w = series_block.shape
    out = np.empty((t, b + 1, h, w), np.float32)
    out[:, :b] = series_block
    out[:, b] = np.asarray(doy, np.float32).reshape(t, 1, 1)
    return out.reshape(t * (b + 1), h, w)


def pad_dates(channels: np.ndarray, n_bands: int, n_dates: int, doy: np.ndarray) -> np.ndarray:
    """Extend (T·(B+1), h, w) model channels to ``n_dates`` dates with missing (all-NaN) dates at the end,
    so a network built for more dates takes a shorter series."""
    t = channels.shape[0] // (n_bands + 1)
    if t == n_dates:
        return channels
    extra = np.full(((n_dates - t) * (n_bands + 1),) + channels.shape[1:], np.nan, np.float32)
    if len(doy):
        extra.reshape(n_dates - t, n_bands + 1, *channels.shape[1:])[:, n_bands] = float(doy[-1])
    return np.concatenate([channels, extra])


def observed_mask(series_block: np.ndarray) -> np.ndarray:
    """(dates, bands, h, w) → (h, w): True where at least one date is observed."""
    return np.isfinite(series_block).all(axis=1).any(axis=0)
