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
from typing import Any

import numpy as np

from ..data.series import SeriesImage, model_channels, observed_mask, open_series
from ..models.model_file import ModelBundle
from ..models.temporal import rebuild_for_dates, receptive_radius
from ..runtime.errors import GeoDLError
from .raster_prediction import PredictContext, PredictionOutputs, PredictResult
from .tiled_prediction import blend_strips, keras_predictor, tile_layout, write_strip

log = logging.getLogger("geodl")


def temporal_settings(bundle: ModelBundle) -> dict:
    settings = (bundle.manifest.get("training") or {}).get("temporal")
    if not settings:
        raise GeoDLError(f"'{bundle.path}' is not a temporal model file (no temporal settings in its manifest).")
    return dict(settings)


def series_of_model(bundle: ModelBundle) -> dict:
    return dict((bundle.manifest.get("training") or {}).get("series") or {})


def model_for_series(bundle: ModelBundle, series: SeriesImage, warnings: list[str]) -> Any:
    """The bundle's network, rebuilt for the series' number of dates when it differs; checks bands."""
    settings = temporal_settings(bundle)
    bands = list(series_of_model(bundle).get("bands") or [])
    if bands and len(bands) != series.n_bands:
        raise GeoDLError(
            f"The model was trained on {len(bands)} bands per date ({', '.join(bands)}); this series "
            f"has {series.n_bands} ({', '.join(series.bands)}). Use the same bands."
        )
    n_dates = int(settings.get("n_dates", series.n_dates))
    if n_dates == series.n_dates:
        return bundle.model
    if settings.get("encoder") == "stack":
        raise GeoDLError(
            f"This stacked-dates model needs exactly {n_dates} dates; the series has {series.n_dates}. "
            "Give the same dates, or train a recurrent (gru/lstm) model, which takes any number."
        )
    warnings.append(
        f"The model was trained on {n_dates} dates; this series has {series.n_dates} (the recurrent network takes them all, in date order)."
    )
    return rebuild_for_dates(bundle.model, settings, series.n_dates)


def open_prediction_series(ctx: PredictContext) -> SeriesImage:
    """The context's rasters as a series: one per date (dates given, or in the file names), or one stack with
    a band per date (dates given or in its band descriptions), with the context's nodata."""
    params = ctx.params
    dates = getattr(params, "dates", None) or None
    if len(params.rasters) == 1 and not dates:
        known = series_of_model(ctx.bundle).get("dates")
        per_date = len(series_of_model(ctx.bundle).get("bands") or [])
        if known and per_date and ctx.infos[0].count == len(known) * per_date:
            dates = known  # one stack laid out as the training series: its dates
    same = [str(i.path) for i in ctx.infos] == [str(r) for r in params.rasters] and not any(i.indexes for i in ctx.infos)
    return open_series(params.rasters, dates=dates, nodata=ctx.nodata, infos=ctx.infos if same else None)


def predict_temporal(ctx: PredictContext) -> PredictResult:
    """Classify the context's region of a series, tile by tile (``ctx.params.tiling``: tile size, overlap — 0
    means a quarter tile, at least the network's reach —, tiles a batch)."""

    params, bundle, progress = ctx.params, ctx.bundle, ctx.progress
    series = open_prediction_series(ctx)
    col0, row0, width, height = ctx.region
    settings = temporal_settings(bundle)
    model = model_for_series(bundle, series, ctx.warnings)
    classes = bundle.classes
    ids = np.array(classes.ids, dtype=np.uint8)
    n_classes = len(classes)
    tiling = params.tiling
    tile_req = max(tiling.size, bundle.patch_size)
    reach = receptive_radius(series.n_dates, int(settings.get("kernel_size", 3)), int(settings.get("layers", 1)))
    overlap_req = tiling.overlap or min(max(tile_req // 4, reach), tile_req // 2 - 1)
    tile, overlap, _ = tile_layout(width, height, tile_req, overlap_req, 1)
    margin = min(overlap // 4, max(0, (overlap - 1) // 2))
    network = keras_predictor(model, what="temporal model")
    doy, n_bands = series.doy, series.n_bands

    counts = np.zeros(n_classes, dtype=np.int64)
    n_pixels = 0
    with contextlib.ExitStack() as stack:
        sources = series.open(stack)  # once, not once per strip and date

        def read(c: int, r: int, w: int, h: int) -> np.ndarray:
            return model_channels(series.read(col0 + c, row0 + r, w, h, datasets=sources), doy)

        outputs = PredictionOutputs(stack, params, series.info, width, height, ctx.transform, classes)
        progress.message(f"{series.n_dates} dates, tiles of {tile}×{tile} px, overlap {overlap}, batches of {tiling.batch}")
        for r, probs, raw in blend_strips(
            read,
            network.run,  # in the network's own layout (channels_first below)
            width,
            height,
            n_classes,
            tile,
            overlap,
            margin,
            tiling.batch,
            check=progress.check,
            report=lambda p: progress.update(0.95 * p),
            channels_first=network.first,
        ):
            observed = observed_mask(raw.reshape(series.n_dates, n_bands + 1, *raw.shape[1:])[:, :n_bands])
            n_pixels += write_strip(outputs, r, probs, observed, ids, counts)
        outputs.finish(progress)
    result = ctx.result(n_pixels, counts, verb=f"mapped ({series.n_dates} dates)")
    result.details.update({"tile": tile, "overlap": overlap, "batch": tiling.batch, "dates": series.n_dates})
    return result


def predict_series_samples(bundle: ModelBundle, x: np.ndarray, batch: int = 16) -> np.ndarray:
    """Class ids the model gives the centre pixel of each sample: ``x`` (n, k, k, dates·bands) as
    ``load_samples`` reads series samples by the model's band names (missing values NaN; the days of year come
    from the model's series), or network channels (n, k, k, dates·(bands+1)) as ``load_series_samples`` gives."""
    import keras

    series = series_of_model(bundle)
    n_bands, doy = len(series.get("bands") or []), np.asarray(series.get("doy") or [], np.float32)
    if x.ndim == 2:
        x = x[:, None, None, :]
    n, k = len(x), x.shape[1]
    if n_bands and x.shape[-1] == len(doy) * (n_bands + 1):
        channels = x.astype(np.float32)  # already network channels (bands and day of year per date)
    elif n_bands and x.shape[-1] == len(doy) * n_bands:
        per_date = x.astype(np.float32).reshape(n, k, k, len(doy), n_bands)
        channels = np.concatenate([per_date, np.broadcast_to(doy.reshape(1, 1, 1, -1, 1), (n, k, k, len(doy), 1))], axis=-1).reshape(
            n, k, k, -1
        )
    else:
        raise GeoDLError(
            f"These samples have {x.shape[-1]} features; the model reads {len(doy)} dates × {n_bands} "
            "bands. Extract them from the same series."
        )
    ids = np.array(bundle.classes.ids)
    out = np.empty(n, dtype=np.int64)
    for start in range(0, n, batch):
        probs = keras.ops.convert_to_numpy(bundle.model.predict_on_batch(channels[start : start + batch]))
        out[start : start + batch] = ids[probs[:, k // 2, k // 2, :].argmax(axis=-1)]
    return out
