"""Predict a regression model over a raster: a float32 value raster in target units and, for the forest, the
spread of its trees (their standard deviation) as an uncertainty raster. Same shared writer as the classifier
(``PredictionOutputs``: tiled, compressed, overviews block by block, atomic); nodata -9999."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Optional

import numpy as np

from ..io.raster import valid_mask
from ..models.model_file import ModelBundle
from ..models.regression import ForestRegressor, predict_values
from .raster_prediction import PredictContext, PredictionOutputs, PredictResult, _blocks_ahead, pipeline_windows

log = logging.getLogger("geodl")

VALUE_NODATA = -9999.0


def has_spread(model: Any) -> bool:
    """Only the forest has trees to disagree."""
    return isinstance(model, ForestRegressor)


def predict_sample_values(bundle: ModelBundle, x: np.ndarray) -> np.ndarray:
    """Values for sample rows, through the same predictor as the raster path."""
    return predict_values(bundle.model, x)[0]


def predict_regression(ctx: PredictContext) -> PredictResult:
    """``params.output`` gets the values; ``params.confidence_output`` the spread (forest models only)."""
    from rasterio.windows import Window

    params, bundle, infos, progress, warnings = ctx.params, ctx.bundle, ctx.infos, ctx.progress, ctx.warnings
    nodata, transform, started = ctx.nodata, ctx.transform, ctx.started
    col0, row0, width, height = ctx.region
    spread_path = params.confidence_output if has_spread(bundle.model) else None
    if params.probabilities_output:
        warnings.append("A regression has no class probabilities; that output is not written.")
    if params.confidence_output and not spread_path:
        warnings.append(
            "A pixel DNN regressor has no spread; only the value raster is written. Train a "
            "random-forest regressor for an uncertainty raster."
        )
    layout: dict[str, tuple[Optional[str], int, str, float]] = {
        "value": (params.output, 1, "float32", VALUE_NODATA),
        "spread": (spread_path, 1, "float32", VALUE_NODATA),
    }
    n_pixels = 0
    low, high, total = np.inf, -np.inf, 0.0
    with contextlib.ExitStack() as stack:
        outputs = PredictionOutputs(stack, params, infos[0], width, height, transform, None, layout)
        windows = pipeline_windows(width, height, params.block_size)
        for n, (c, r, w, h, block) in enumerate(_blocks_ahead(infos, (col0, row0), windows)):
            progress.check()
            ok = valid_mask(block, nodata).ravel()
            flat = block.reshape(block.shape[0], -1).T
            pixels = np.ascontiguousarray(flat if ok.all() else flat[ok], dtype=np.float32)
            value_block = np.full(h * w, VALUE_NODATA, dtype=np.float32)
            spread_block = np.full(h * w, VALUE_NODATA, dtype=np.float32)
            if len(pixels):
                values, spread = predict_values(bundle.model, pixels)
                value_block[ok] = values
                if spread is not None:
                    spread_block[ok] = spread
                n_pixels += len(pixels)
                low, high, total = (
                    min(low, float(values.min())),
                    max(high, float(values.max())),
                    total + float(values.astype(np.float64).sum()),
                )
            outputs.write_blocks(Window(c, r, w, h), {"value": value_block.reshape(1, h, w), "spread": spread_block.reshape(1, h, w)})
            progress.update(95.0 * (n + 1) / len(windows), "")
        outputs.finish(progress)
    seconds = time.perf_counter() - started
    for w in warnings:
        log.warning(w)
    result = PredictResult(params.output, spread_path, None, n_pixels, seconds, {}, warnings, width * height)
    if n_pixels:
        progress.update(
            100, f"predicted {n_pixels / 1e6:.2f} Mpx in {seconds:.1f} s: values {low:.4g} to {high:.4g}, mean {total / n_pixels:.4g}"
        )
    return result
