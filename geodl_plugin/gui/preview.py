"""The Map step's quick preview: classify what the canvas shows, at the canvas's resolution.

No second predictor: each raster is viewed through a GDAL VRT on the canvas grid (nearest neighbour, never
finer than the raster's own pixels), and the core's ``predict_raster`` classifies that VRT. Qt-free, so
``scripts/bench_preview.py`` times exactly what the dock runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional, Sequence

from ..core.io.raster import raster_info
from ..core.models.model_file import ModelBundle, load_model_file
from ..core.predict.raster_prediction import PredictParams, PredictResult, predict_raster
from ..core.runtime.errors import GeoDLError
from ..core.runtime.progress import Progress

_BUNDLES: dict[tuple[str, float], ModelBundle] = {}


def cached_model(path: str) -> ModelBundle:
    """The loaded model, kept between previews (loading a Keras model costs more than a preview)."""
    key = (str(Path(path).resolve()), Path(path).stat().st_mtime if Path(path).exists() else 0.0)
    if key not in _BUNDLES:
        _BUNDLES.clear()
        _BUNDLES[key] = load_model_file(path)
    return _BUNDLES[key]


def canvas_vrts(rasters: Sequence[str], extent: Sequence[float], width: int, height: int,
                out_dir: str | os.PathLike) -> list[str]:
    """One VRT per raster covering ``extent`` (raster CRS, clipped to the raster) with at most
    ``width``×``height`` pixels; all on one grid, as the prediction stack needs."""
    from osgeo import gdal

    gdal.UseExceptions()
    info = raster_info(rasters[0])
    a, _, c, _, e, f = info.transform
    rxmin, rxmax = sorted((c, c + a * info.width))
    rymin, rymax = sorted((f, f + e * info.height))
    xmin, ymin, xmax, ymax = extent
    cxmin, cymin, cxmax, cymax = max(xmin, rxmin), max(ymin, rymin), min(xmax, rxmax), min(ymax, rymax)
    if cxmax <= cxmin or cymax <= cymin:
        raise GeoDLError("The canvas shows no part of the chosen raster. Zoom to the imagery and preview again.")
    # Screen pixels over the clipped part of the view, but never finer than the raster's own pixels.
    w = max(1, min(round(width * (cxmax - cxmin) / (xmax - xmin)), round((cxmax - cxmin) / abs(a))))
    h = max(1, min(round(height * (cymax - cymin) / (ymax - ymin)), round((cymax - cymin) / abs(e))))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    paths = []
    for n, raster in enumerate(rasters):
        path = str(Path(out_dir) / f"view_{n}.vrt")
        ds = gdal.Translate(path, str(raster), format="VRT", projWin=[cxmin, cymax, cxmax, cymin], width=w, height=h,
                            resampleAlg="near")
        if ds is None:
            raise GeoDLError(f"Cannot view '{raster}' on the canvas grid.")
        ds = None  # noqa: F841 - writes the VRT
        paths.append(path)
    return paths


def preview_canvas(rasters: Sequence[str], model: str, extent: Sequence[float], width: int, height: int,
                   out_dir: str | os.PathLike, progress: Optional[Progress] = None,
                   in_worker: bool = False, uncertainty: bool = False) -> PredictResult:
    """Classify the canvas view into ``out_dir/preview.tif``. ``in_worker``: run the model in the geodl worker
    process (what the dock must do inside QGIS, see core/worker.py); else in this process with the model
    kept loaded between previews."""
    if not rasters:
        raise GeoDLError("No raster chosen. Tick the imagery in the Imagery tab.")
    vrts = canvas_vrts(rasters, extent, width, height, out_dir)
    params = PredictParams(rasters=vrts, model=model, output=str(Path(out_dir) / "preview.tif"),
                           block_size=1024, overviews=False,
                           entropy_output=str(Path(out_dir) / "entropy.tif") if uncertainty else None,
                           margin_output=str(Path(out_dir) / "margin.tif") if uncertainty else None)
    if in_worker:
        from ..core.runtime.worker import call_in_worker

        params.validate()
        return call_in_worker("predict_raster", params, progress, persistent=True)
    return predict_raster(params, progress, bundle=cached_model(model))


def time_preview(rasters: Sequence[str], model: str, extent: Sequence[float], width: int, height: int,
                 out_dir: str | os.PathLike, repeats: int = 3, in_worker: bool = False) -> list[float]:
    """Seconds per preview (in-process: the first includes loading the model, later ones reuse it)."""
    seconds = []
    for n in range(repeats):
        started = time.perf_counter()
        preview_canvas(rasters, model, extent, width, height, Path(out_dir) / f"run{n}", in_worker=in_worker)
        seconds.append(time.perf_counter() - started)
    return seconds
