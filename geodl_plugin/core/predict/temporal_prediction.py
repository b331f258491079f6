"""Tiled, blended prediction of a temporal model over a whole series.

The series is read strip by strip (every date of a tile's window, missing observations NaN, mirrored beyond
the raster edge), turned into network channels and classified in overlapping tiles blended with the U-Net's
partition-of-unity window (``tiled_prediction.blend_strips``), so there are no seams. Outputs are those of
every family (``PredictionOutputs``): class (uint8, colour table), confidence, and optionally one
probability band per class — the per-class confidence maps MTLCC writes. A pixel observed on no date is
nodata.

A recurrent model takes a series with another number of dates than it was trained on: it is rebuilt for
that number with the same weights. The stacked-dates baseline is bound to its number of dates.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Optional

import numpy as np

from ..data.classes import NODATA_CLASS
from ..data.series import SeriesImage, model_channels
from ..models.model_file import ModelBundle
from ..models.temporal import receptive_radius, rebuild_for_dates
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .raster_prediction import CONFIDENCE_NODATA, PredictionOutputs, PredictResult
from .tiled_prediction import blend_strips, keras_predictor, tile_layout

log = logging.getLogger("geodl")

DEFAULT_TILE = 96
DEFAULT_BATCH = 4


def temporal_settings(bundle: ModelBundle) -> dict:
    settings = (bundle.manifest.get("training") or {}).get("temporal")
    if not settings:
        raise GeoDLError(f"'{bundle.path}' is not a temporal model file (no temporal settings in its manifest).")
    return dict(settings)


def model_for_series(bundle: ModelBundle, series: SeriesImage, warnings: list[str]) -> Any:
    """The bundle's network, rebuilt for the series' number of dates when it differs; checks bands."""
    settings = temporal_settings(bundle)
    bands = list((bundle.manifest.get("series") or {}).get("bands") or [])
    if bands and len(bands) != series.n_bands:
        raise GeoDLError(f"The model was trained on {len(bands)} bands per date ({', '.join(bands)}); this series "
                         f"has {series.n_bands} ({', '.join(series.bands)}). Use the same bands.")
    n_dates = int(settings.get("n_dates", series.n_dates))
    if n_dates == series.n_dates:
        return bundle.model
    if settings.get("encoder") == "stack":
        raise GeoDLError(f"This stacked-dates model needs exactly {n_dates} dates; the series has {series.n_dates}. "
                         "Give the same dates, or train a recurrent (gru/lstm) model, which takes any number.")
    warnings.append(f"The model was trained on {n_dates} dates; this series has {series.n_dates} (the recurrent "
                    "network takes them all, in date order).")
    return rebuild_for_dates(bundle.model, settings, series.n_dates)


def predict_series(params: Any, bundle: ModelBundle, series: SeriesImage, region: tuple[int, int, int, int],
                   transform: Any, progress: Optional[Progress] = None,
                   warnings: Optional[list[str]] = None) -> PredictResult:
    """Classify ``region`` (col0, row0, width, height) of the series. Tile settings come from ``params``
    (``tile_size``, ``tile_overlap``, ``tile_batch``) or the model's training settings."""
    from rasterio.windows import Window

    progress = ensure(progress)
    warnings = list(warnings or [])
    started = time.perf_counter()
    col0, row0, width, height = region
    settings = temporal_settings(bundle)
    model = model_for_series(bundle, series, warnings)
    classes = bundle.classes
    ids = np.array(classes.ids, dtype=np.uint8)
    n_classes = len(classes)
    radius = receptive_radius(series.n_dates, int(settings.get("kernel_size", 3)), int(settings.get("layers", 1)))
    tile_req = int(getattr(params, "tile_size", None) or settings.get("predict_tile") or DEFAULT_TILE)
    overlap_req = getattr(params, "tile_overlap", None)
    if overlap_req is None:
        overlap_req = settings.get("tile_overlap")
    if overlap_req is None:  # enough to hide the tile edge, at most half a tile
        overlap_req = min(tile_req // 2 - 1, max(8, 2 * radius))
    tile, overlap, _ = tile_layout(width, height, tile_req, int(overlap_req), 1)
    margin = min(overlap // 4, max(0, (overlap - 1) // 2))
    batch = int(getattr(params, "tile_batch", None) or DEFAULT_BATCH)
    predict = keras_predictor(model)
    doy = series.doy

    def read(c: int, r: int, w: int, h: int) -> np.ndarray:
        return model_channels(series.read(col0 + c, row0 + r, w, h), doy)

    n_bands = series.n_bands
    counts = np.zeros(n_classes, dtype=np.int64)
    n_pixels = 0
    with contextlib.ExitStack() as stack:
        outputs = PredictionOutputs(stack, params, series.info, width, height, transform, classes)
        progress.message(f"{series.n_dates} dates, tiles of {tile}×{tile} px, overlap {overlap}, batches of {batch}")
        for r, probs, raw in blend_strips(read, predict, width, height, n_classes, tile, overlap, margin, batch,
                                          check=progress.check, report=lambda p: progress.update(0.95 * p)):
            per_date = raw.reshape(series.n_dates, n_bands + 1, *raw.shape[1:])[:, :n_bands]
            ok = np.isfinite(per_date).all(axis=1).any(axis=0)
            best = probs.argmax(axis=0)
            conf = np.take_along_axis(probs, best[None], axis=0)[0]
            outputs.write(Window(0, r, width, probs.shape[1]), np.where(ok, ids[best], NODATA_CLASS).astype(np.uint8),
                          np.where(ok, conf, CONFIDENCE_NODATA).astype(np.float32),
                          np.where(ok[None], probs, CONFIDENCE_NODATA).astype(np.float32)
                          if outputs.wants_probabilities else probs)
            counts += np.bincount(best[ok], minlength=n_classes)[:n_classes]
            n_pixels += int(ok.sum())
        outputs.finish(progress)
    seconds = time.perf_counter() - started
    result = PredictResult(params.output, params.confidence_output, params.probabilities_output, n_pixels, seconds,
                           {c.name: int(counts[i]) for i, c in enumerate(classes)}, warnings, width * height)
    progress.update(100, f"mapped {n_pixels / 1e6:.3f} Mpx over {series.n_dates} dates in {seconds:.1f} s "
                         f"({result.megapixels_per_second:.3f} Mpx/s)")
    return result
