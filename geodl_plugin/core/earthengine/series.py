"""Time series from Earth Engine: one cloud-masked median composite per time window.

A series is a list of windows (monthly over a date range, every few months, or windows the user writes), and
for each a median of the masked scenes in it (``composites.masked_collection``: Cloud Score+ or SCL for
Sentinel-2, QA_PIXEL + QA_RADSAT for Landsat 8/9). A window stands for one date, its middle day: that is the
date in the file names, band names (``{band}_{YYYYMMDD}``, as ``core/data/series.py`` and
``series_samples.py`` read them) and the day of year the temporal networks take.

A window with no scene at all is a date with nothing observed: a fully masked image (``grid.NODATA`` once
downloaded or exported), never zeros, and reported by name. Counting the scenes of every window is one small
request (:func:`window_image_counts`); the images themselves are built here and computed only by the
download or export that sends them.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

from ..data.series import date_key
from ..runtime.errors import GeoDLError
from .composites import OPTICAL, CompositeParams, masked_collection, median_composite
from .session import ee_errors

log = logging.getLogger("geodl")

MAX_MONTHS_PER_WINDOW = 12
SENSOR_PREFIX = {"sentinel2": "s2", "landsat": "landsat"}


@dataclass(frozen=True)
class Window:
    """Scenes from ``start`` up to, not including, ``end``; stands for the date :attr:`date`."""

    start: dt.date
    end: dt.date

    @property
    def date(self) -> dt.date:
        """The middle day (the earlier of two): the date the composite is named and day-of-year encoded by."""
        return self.start + dt.timedelta(days=(self.end - self.start).days // 2)

    @property
    def key(self) -> str:
        return date_key(self.date)

    @property
    def label(self) -> str:
        return f"{self.start.isoformat()}…{self.end.isoformat()}"


def _date(text: str | dt.date, what: str) -> dt.date:
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError as exc:
        raise GeoDLError(f"The {what} '{text}' is not a date; write it as YYYY-MM-DD, e.g. 2023-06-01.") from exc


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months, the day clamped to the month's length (Jan 31 + 1 month = Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def monthly_windows(start: str | dt.date, end: str | dt.date, months: int = 1) -> list[Window]:
    """Windows of ``months`` months from ``start`` up to ``end`` (exclusive); the last one is cut at ``end``."""
    first, last = _date(start, "start date"), _date(end, "end date")
    if last <= first:
        raise GeoDLError(f"The end date {last} is not after the start date {first}; swap or widen them.")
    if not 1 <= int(months) <= MAX_MONTHS_PER_WINDOW:
        raise GeoDLError(f"{months} months per window: choose 1 to {MAX_MONTHS_PER_WINDOW} (1 = monthly composites).")
    windows: list[Window] = []
    step = 0
    while True:
        lo, hi = add_months(first, step * months), add_months(first, (step + 1) * months)
        if lo >= last:
            return windows
        windows.append(Window(lo, min(hi, last)))
        step += 1


def parse_windows(text: str) -> list[tuple[str, str]]:
    """Windows written as ``START/END`` (or ``START..END``), separated by commas, semicolons or new lines:
    ``2023-03-01/2023-05-01, 2023-05-01/2023-07-01``. END is exclusive."""
    pairs = []
    for item in re.split(r"[,;\n]+", text or ""):
        item = item.strip()
        if not item:
            continue
        parts = [p.strip() for p in re.split(r"/|\.\.|…", item) if p.strip()]
        if len(parts) != 2:
            raise GeoDLError(
                f"'{item}' is not a window; write START/END with dates as YYYY-MM-DD, e.g. 2023-03-01/2023-05-01 "
                "(END exclusive), windows separated by commas."
            )
        pairs.append((parts[0], parts[1]))
    return pairs


@dataclass
class SeriesParams:
    """What a series holds. ``composite`` gives the region, sensor (Sentinel-2 or Landsat 8/9), bands, indices
    and masking; its ``start``/``end`` span the monthly windows. ``windows`` (start, end exclusive) replace
    the monthly ones when given."""

    composite: CompositeParams
    windows: tuple[tuple[str, str], ...] = ()
    months_per_window: int = 1
    extra: dict = field(default_factory=dict)

    def window_list(self) -> list[Window]:
        if self.windows:
            return [Window(_date(a, "window start"), _date(b, "window end")) for a, b in self.windows]
        return monthly_windows(self.composite.start, self.composite.end, self.months_per_window)

    def output_bands(self) -> list[str]:
        """The bands of one date (band names without the date)."""
        return self.composite.output_bands()

    def dated_bands(self, window: Window) -> list[str]:
        return [f"{band}_{window.key}" for band in self.output_bands()]

    def stacked_bands(self) -> list[str]:
        """Every band of every date, date-major: the bands of the stacked image, exports and samples."""
        return [name for window in self.window_list() for name in self.dated_bands(window)]

    def collection_params(self) -> CompositeParams:
        """The composite settings over the whole span of the windows (the scenes all windows cut from)."""
        windows = self.window_list()
        start = min(w.start for w in windows).isoformat()
        end = max(w.end for w in windows).isoformat()
        return replace(self.composite, start=start, end=end)

    def validate(self) -> SeriesParams:
        if self.composite.sensor not in OPTICAL:
            raise GeoDLError(
                f"A time series is built from Sentinel-2 or Landsat 8/9 scenes; '{self.composite.sensor}' is one "
                "image a year. Choose Sentinel-2 or Landsat."
            )
        windows = self.window_list()
        for w in windows:
            if w.end <= w.start:
                raise GeoDLError(f"The window {w.start}/{w.end} ends before it starts; write START/END with END later.")
        if len(windows) < 2:
            raise GeoDLError(f"{len(windows)} window: a series needs at least two dates. Widen the date range or give more windows.")
        keys = [w.key for w in windows]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise GeoDLError(f"Two windows have the same middle day ({', '.join(repeated)}); give windows with different dates.")
        if [w.date for w in windows] != sorted(w.date for w in windows):
            raise GeoDLError("Give the windows in time order (earliest first).")
        self.collection_params().validate()
        return self


def window_image_counts(params: SeriesParams) -> list[int]:
    """How many scenes (after the scene-cloud filter) fall in each window: one ``value:compute`` request."""
    import ee

    params.validate()
    with ee_errors("count the scenes of each window"):
        collection = masked_collection(params.collection_params())
        sizes = ee.List([collection.filterDate(w.start.isoformat(), w.end.isoformat()).size() for w in params.window_list()])
        counts = sizes.getInfo()
    if not isinstance(counts, list) or len(counts) != len(params.window_list()):
        raise GeoDLError(f"Earth Engine answered {counts!r} when asked for the scene counts of the windows; retry.")
    return [int(c or 0) for c in counts]


def masked_date(bands: Sequence[str]) -> Any:
    """An image with ``bands`` masked everywhere: a window without scenes (filled as nodata downstream)."""
    import ee

    return ee.Image.constant([0] * len(bands)).toFloat().rename(list(bands)).updateMask(ee.Image.constant(0))


@dataclass
class EESeries:
    """The series as Earth Engine images: per window its composite (bands without dates), the scene counts."""

    params: SeriesParams
    windows: list[Window]
    counts: list[int]
    images: list[Any]

    @property
    def empty(self) -> list[Window]:
        return [w for w, n in zip(self.windows, self.counts) if n == 0]

    def warnings(self) -> list[str]:
        sensor = "Sentinel-2" if self.params.composite.sensor == "sentinel2" else "Landsat 8/9"
        limit = self.params.composite.max_scene_cloud
        return [
            f"No {sensor} scene in the window {w.label} (scenes cloudier than {limit:g}% are left out): its date "
            f"{w.date.isoformat()} is fully masked (nodata), not zero."
            for w in self.empty
        ]

    def stacked(self) -> Any:
        """One image with every band of every date, named ``{band}_{YYYYMMDD}``, date-major."""
        import ee

        with ee_errors("stack the series"):
            dated = [image.rename(self.params.dated_bands(w)) for w, image in zip(self.windows, self.images)]
            return ee.Image.cat(dated)


def build_series(params: SeriesParams, counts: Optional[Sequence[int]] = None) -> EESeries:
    """The composite of every window (asking Earth Engine for the scene counts unless given); a window with
    no scene gets :func:`masked_date`, and a warning naming it is logged."""
    params.validate()
    windows = params.window_list()
    counts = list(counts) if counts is not None else window_image_counts(params)
    if len(counts) != len(windows):
        raise GeoDLError(f"{len(counts)} scene counts for {len(windows)} windows.")
    bands = params.output_bands()
    with ee_errors("build the series' composites"):
        collection = masked_collection(params.collection_params())
        images = [
            median_composite(collection.filterDate(w.start.isoformat(), w.end.isoformat()), params.composite) if n else masked_date(bands)
            for w, n in zip(windows, counts)
        ]
    series = EESeries(params, windows, list(counts), images)
    for text in series.warnings():
        log.warning(text)
    return series


def default_prefix(params: SeriesParams) -> str:
    return SENSOR_PREFIX.get(params.composite.sensor, "series")
