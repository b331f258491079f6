"""The parts of the point-table → TFRecord pipeline that do not need Apache Beam: which points share one
``computePixels`` request, the request's pixel grid, cutting each point's k×k patch out of the answer, and
the retry/rate-limit policy. :mod:`.beam_pipeline` puts them on Beam (DirectRunner here, Dataflow at scale).

Grid: pixel (col, row) of a point is ``floor(x / scale), floor(y / scale)`` in the table's projected CRS, so
patches of neighbouring points line up and a request never straddles half pixels. Points are grouped by cells
of ``cell_px`` × ``cell_px`` pixels; each group is one request covering its points' patches (its bounding box
plus the patch margin), instead of one request per point — at 10⁵–10⁷ points most cells hold several.

Each Example is the layout of an Earth Engine table export (and of geodl's own samples): one float feature
per band (the k×k patch flattened row-major, north row first), ``class`` and the point's ``x``/``y``.
"""

from __future__ import annotations

import io
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from ..runtime.errors import GeoDLError

MAX_REQUEST_PIXELS = 32768  # computePixels: px a side
MAX_REQUEST_BYTES = 50_331_648  # computePixels: bytes per answer (one mask byte per pixel and band counted)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: float


@dataclass
class ShardParams:
    """What the pipeline builds. ``expression`` is the image as serialised JSON (``ee.serializer.toJSON``):
    Earth Engine objects do not travel to Beam workers, their JSON does."""

    expression: str
    bands: Sequence[str]
    crs: str  # projected CRS of the points and of the pixel grid, e.g. EPSG:32632
    scale: float  # metres per pixel
    output_prefix: str  # e.g. gs://bucket/geodl/train or /tmp/train
    patch_size: int = 1
    cell_px: int = 256
    num_shards: int = 0  # 0: let the runner choose
    max_attempts: int = 6
    backoff_seconds: float = 1.0
    requests_per_second: float = 10.0  # per worker process; Dataflow multiplies by the number of workers
    project: str = ""
    high_volume: bool = True  # earthengine-highvolume endpoint on Dataflow (meant for many parallel requests)

    def validate(self) -> ShardParams:
        if not self.bands:
            raise GeoDLError("Give the bands to sample.")
        if self.patch_size < 1 or self.patch_size % 2 == 0:
            raise GeoDLError(f"The patch size must be odd (1, 3, 5 …), not {self.patch_size}.")
        side = self.cell_px + self.patch_size
        if side > MAX_REQUEST_PIXELS or side * side * len(self.bands) * 5 > MAX_REQUEST_BYTES:
            raise GeoDLError(
                f"Cells of {self.cell_px} px with {len(self.bands)} bands make requests over Earth "
                "Engine's computePixels limit; use smaller cells."
            )
        if self.scale <= 0:
            raise GeoDLError("The pixel size must be positive.")
        return self


def pixel_of(point: Point, scale: float) -> tuple[int, int]:
    return math.floor(point.x / scale), math.floor(point.y / scale)


def cell_key(point: Point, params: ShardParams) -> tuple[int, int]:
    col, row = pixel_of(point, params.scale)
    return col // params.cell_px, row // params.cell_px


@dataclass
class Window:
    """A request's grid: top-left pixel (col0, row_top) with rows counted downward from ``row_top``."""

    col0: int
    row_top: int  # the highest row index (north), as rows are floor(y / scale)
    width: int
    height: int

    def grid(self, params: ShardParams) -> dict[str, Any]:
        return {
            "dimensions": {"width": self.width, "height": self.height},
            "affineTransform": {
                "scaleX": params.scale,
                "shearX": 0.0,
                "translateX": self.col0 * params.scale,
                "shearY": 0.0,
                "scaleY": -params.scale,
                "translateY": (self.row_top + 1) * params.scale,
            },
            "crsCode": params.crs,
        }


def window_for(points: Sequence[Point], params: ShardParams) -> Window:
    h = params.patch_size // 2
    pixels = [pixel_of(p, params.scale) for p in points]
    cols, rows = [c for c, _ in pixels], [r for _, r in pixels]
    return Window(min(cols) - h, max(rows) + h, max(cols) - min(cols) + params.patch_size, max(rows) - min(rows) + params.patch_size)


def patches(array: np.ndarray, window: Window, points: Sequence[Point], params: ShardParams) -> Iterator[np.ndarray]:
    """Each point's (k, k, bands) patch from the (bands, H, W) answer; north row first."""
    h = params.patch_size // 2
    for p in points:
        col, row = pixel_of(p, params.scale)
        r = window.row_top - (row + h)
        c = col - h - window.col0
        yield np.moveaxis(array[:, r : r + params.patch_size, c : c + params.patch_size], 0, -1)


def decode_npy(data: bytes, bands: Sequence[str], window: Window) -> np.ndarray:
    structured = np.load(io.BytesIO(data), allow_pickle=False)
    if structured.dtype.names is None:
        raise GeoDLError("computePixels answered without band names; ask for fileFormat NPY with bandIds.")
    missing = [b for b in bands if b not in structured.dtype.names]
    if missing:
        raise GeoDLError(f"Earth Engine's answer lacks band(s) {missing}.")
    array = np.stack([structured[b].astype(np.float32) for b in bands])
    if array.shape[1:] != (window.height, window.width):
        raise GeoDLError(f"Earth Engine sent {array.shape[1:]} px for a {window.height}×{window.width} request.")
    return array


def example_record(patch: np.ndarray, point: Point, bands: Sequence[str]) -> dict[str, Any]:
    record: dict[str, Any] = {b: patch[..., i].astype(np.float32).ravel() for i, b in enumerate(bands)}
    record["class"] = np.array([point.label], np.float32)
    record["x"] = np.array([point.x], np.float32)
    record["y"] = np.array([point.y], np.float32)
    return record


@dataclass
class RateLimiter:
    """A token bucket shared by the threads of one worker process: at most ``rate`` requests a second, bursts
    of ``burst``."""

    rate: float
    burst: int = 4
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _tokens: float = field(default=0.0, init=False)
    _last: float = field(default=-1.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        while True:
            with self._lock:
                now = self.clock()
                if self._last < 0:
                    self._last, self._tokens = now, float(self.burst)
                self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
                self._last = now
                # A hair of tolerance: refilled tokens can land just under 1 in floating point, and a wait of
                # 1e-17 s no longer moves the clock.
                if self._tokens >= 1.0 - 1e-9:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                wait = (1.0 - self._tokens) / self.rate
            self.sleep(wait)


def with_retries(
    call: Callable[[], Any],
    params: ShardParams,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Optional[Callable[[Any], None]] = None,
) -> Any:
    """``call()`` again after HTTP 429/5xx and network errors, with exponential backoff and jitter."""
    from .session import http_status, is_retryable

    for attempt in range(1, params.max_attempts + 1):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - classified below
            if not is_retryable(exc) or attempt == params.max_attempts:
                status = http_status(exc)
                raise GeoDLError(
                    f"Earth Engine refused {what} ({f'HTTP {status}' if status else exc}) after {attempt} attempt(s)."
                ) from exc
            if on_retry is not None:
                on_retry(exc)
            sleep(min(60.0, params.backoff_seconds * 2 ** (attempt - 1)) * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")


def read_points_csv(lines: Iterable[str], label: str = "class") -> Iterator[Point]:
    """Points from CSV text with a header naming ``x``, ``y`` and the label column."""
    header: Optional[list[str]] = None
    for line in lines:
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if header is None:
            header = cells
            missing = [c for c in ("x", "y", label) if c not in header]
            if missing:
                raise GeoDLError(f"The point table lacks the column(s) {missing}; it has {header}.")
            continue
        row = dict(zip(header, cells))
        yield Point(float(row["x"]), float(row["y"]), float(row[label]))
