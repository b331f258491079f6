"""The Map step's quick preview: classify what the canvas shows, at the canvas's resolution.

No second predictor: each raster is viewed through a GDAL VRT on the canvas grid (nearest neighbour, never
finer than the raster's own pixels), and ``families.predict_raster`` classifies that VRT (in the dock's
persistent worker, where the model stays loaded). ``scripts/bench_preview.py`` times exactly what the dock
runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..io.raster import raster_info
from ..runtime.errors import GeoDLError
from .raster_prediction import PredictParams


def canvas_vrts(rasters: Sequence[str], extent: Sequence[float], width: int, height: int, out_dir: str | os.PathLike) -> list[str]:
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
        ds = gdal.Translate(path, str(raster), format="VRT", projWin=[cxmin, cymax, cxmax, cymin], width=w, height=h, resampleAlg="near")
        if ds is None:
            raise GeoDLError(f"Cannot view '{raster}' on the canvas grid.")
        ds = None  # noqa: F841 - writes the VRT
        paths.append(path)
    return paths


def preview_params(
    rasters: Sequence[str],
    model: str,
    extent: Sequence[float],
    width: int,
    height: int,
    out_dir: str | os.PathLike,
    measures: Sequence[str] = (),
) -> PredictParams:
    """The prediction of the canvas view into ``out_dir/preview.tif`` (no overviews: it is thrown away);
    also ``entropy.tif`` and/or ``margin.tif`` for the uncertainty ``measures`` named (for Suggest points)."""
    if not rasters:
        raise GeoDLError("No raster chosen. Tick the imagery in the Imagery tab.")
    vrts = canvas_vrts(rasters, extent, width, height, out_dir)
    params = PredictParams(
        rasters=vrts,
        model=model,
        output=str(Path(out_dir) / "preview.tif"),
        block_size=1024,
        overviews=False,
        entropy_output=str(Path(out_dir) / "entropy.tif") if "entropy" in measures else None,
        margin_output=str(Path(out_dir) / "margin.tif") if "margin" in measures else None,
    )
    params.validate()
    return params
