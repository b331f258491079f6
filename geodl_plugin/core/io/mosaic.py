"""Tiles of one grid → one raster: a VRT (no pixels copied), a tiled GeoTIFF or a Cloud-Optimised GeoTIFF.

Tiles must agree in CRS, pixel size, band count and data type, and sit on one pixel grid; the first tile that
does not is named in the error. With ``reproject=True`` such tiles are warped onto the first tile's CRS,
pixel size and grid instead. Where tiles overlap, a later tile's valid pixels cover an earlier tile's; its
nodata pixels let the earlier tile show through.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..runtime.errors import Cancelled, GeoDLError
from ..runtime.progress import Progress, ensure
from .atomic import atomic_path, check_writable
from .raster import RasterInfo, raster_info

log = logging.getLogger("geodl")

VRT, GTIFF, COG = "vrt", "gtiff", "cog"
FORMATS = (VRT, GTIFF, COG)
RESAMPLING = ("nearest", "bilinear", "cubic", "average", "mode")
_TILE_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
_TOLERANCE = 1e-6  # of a pixel: tiles closer than this to the grid count as on it


@dataclass
class MosaicReport:
    path: str
    format: str
    tiles: int
    width: int
    height: int
    bands: int
    nodata: Optional[float]
    reprojected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def tiles_in(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Expand folders into the rasters inside them (sorted, so the overlay order is reproducible)."""
    tiles: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f.resolve()) for f in p.iterdir() if f.suffix.lower() in _TILE_SUFFIXES)
            if not found:
                raise GeoDLError(f"The folder '{p}' holds no raster tile ({', '.join(_TILE_SUFFIXES)}).")
            tiles.extend(found)
        else:
            tiles.append(str(p.resolve()) if p.exists() else str(item))
    if not tiles:
        raise GeoDLError("No tile given. Choose the rasters (or a folder of them) to mosaic.")
    return tiles


def format_for(path: str | os.PathLike, requested: Optional[str] = None) -> str:
    if requested:
        if requested not in FORMATS:
            raise GeoDLError(f"Unknown mosaic format '{requested}'; choose one of {', '.join(FORMATS)}.")
        if requested == VRT and Path(path).suffix.lower() != ".vrt":
            raise GeoDLError(f"A VRT mosaic needs a .vrt file name (got '{path}').")
        return requested
    return VRT if Path(path).suffix.lower() == ".vrt" else GTIFF


def _same_crs(a: str, b: str) -> bool:
    from osgeo import osr

    sa, sb = osr.SpatialReference(), osr.SpatialReference()
    sa.ImportFromWkt(a)
    sb.ImportFromWkt(b)
    return bool(sa.IsSame(sb))


def _crs_name(wkt: str) -> str:
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    code = srs.GetAuthorityCode(None)
    return f"{srs.GetAuthorityName(None)}:{code}" if code else (srs.GetName() or "unknown")


def _misfit(ref: RasterInfo, info: RasterInfo) -> Optional[str]:
    """Why ``info`` cannot join ``ref``'s mosaic as it is, or None. Band count and dtype are never fixable."""
    if not _same_crs(ref.crs_wkt, info.crs_wkt):
        return f"its CRS is {_crs_name(info.crs_wkt)}, not {_crs_name(ref.crs_wkt)}"
    rx, ry = ref.res
    ix, iy = info.res
    if abs(rx - ix) > _TOLERANCE * rx or abs(ry - iy) > _TOLERANCE * ry:
        return f"its pixel size is {ix:g}×{iy:g}, not {rx:g}×{ry:g}"
    if info.transform[1] or info.transform[3]:
        return "it is rotated (not north-up)"
    dx = (info.transform[2] - ref.transform[2]) / rx
    dy = (info.transform[5] - ref.transform[5]) / ry
    if abs(dx - round(dx)) > 1e-3 or abs(dy - round(dy)) > 1e-3:
        return f"it is offset from the first tile's pixel grid by ({dx % 1:.3f}, {dy % 1:.3f}) of a pixel"
    return None


def check_tiles(infos: Sequence[RasterInfo], reproject: bool) -> list[RasterInfo]:
    """The tiles that need warping (only with ``reproject``); otherwise raise naming the first misfit."""
    ref = infos[0]
    to_warp = []
    for info in infos[1:]:
        if info.count != ref.count:
            raise GeoDLError(
                f"The tile '{info.path}' has {info.count} band(s), the first tile '{ref.path}' "
                f"{ref.count}. Mosaic tiles with the same bands."
            )
        if info.dtype != ref.dtype:
            raise GeoDLError(
                f"The tile '{info.path}' is {info.dtype}, the first tile '{ref.path}' {ref.dtype}. "
                "Convert the tiles to one data type first (gdal:translate)."
            )
        why = _misfit(ref, info)
        if why is None:
            continue
        if not reproject:
            raise GeoDLError(
                f"The tile '{info.path}' does not fit the mosaic: {why} (the first tile is "
                f"'{ref.path}'). Reproject it first, or ask the mosaic to reproject mismatching tiles."
            )
        to_warp.append(info)
    return to_warp


def _nodata(infos: Sequence[RasterInfo], nodata: Optional[float]) -> Optional[float]:
    if nodata is not None:
        return float(nodata)
    values = {i.nodata for i in infos}
    if len(values) > 1:
        odd = next(i for i in infos if i.nodata != infos[0].nodata)
        raise GeoDLError(
            f"The tile '{odd.path}' has nodata {odd.nodata}, the first tile '{infos[0].path}' "
            f"{infos[0].nodata}. Give the nodata value the mosaic should use."
        )
    return infos[0].nodata


def _callback(progress: Progress, start: float, end: float):
    def callback(complete: float, message: Any, data: Any) -> int:
        progress.update(start + (end - start) * complete)
        return 0 if progress.cancelled() else 1

    return callback


def mosaic_rasters(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    fmt: Optional[str] = None,
    nodata: Optional[float] = None,
    reproject: bool = False,
    resampling: str = "nearest",
    progress: Optional[Progress] = None,
) -> MosaicReport:
    """Mosaic ``inputs`` (rasters or folders of them) into ``output``. ``fmt``: vrt, gtiff or cog (default
    from the extension: .vrt → VRT, else a tiled, compressed GeoTIFF). ``nodata`` overrides the tiles' own."""
    from osgeo import gdal

    gdal.UseExceptions()
    progress = ensure(progress)
    fmt = format_for(output, fmt)
    if resampling not in RESAMPLING:
        raise GeoDLError(f"Unknown resampling '{resampling}'; choose one of {', '.join(RESAMPLING)}.")
    target = check_writable(output)
    tiles = tiles_in(inputs)
    if any(Path(t).resolve() == target.resolve() for t in tiles if Path(t).exists()):
        raise GeoDLError(f"The output '{target}' is one of the tiles; choose another file name.")
    infos = [raster_info(t) for t in tiles]
    to_warp = check_tiles(infos, reproject)
    value = _nodata(infos, nodata)
    ref = infos[0]
    progress.update(5, f"{len(tiles)} tiles checked; {len(to_warp)} to reproject")

    warped_dir = target.parent / f"{target.stem}.warped" if (to_warp and fmt == VRT) else None
    sources = []
    for info in infos:
        progress.check()
        if info in to_warp:
            sources.append(_warp(info, ref, value, resampling, warped_dir, gdal))
        else:
            sources.append(info.path)

    try:
        width, height = _write(sources, target, fmt, value, resampling, ref, progress, gdal)
    finally:
        for source in sources:
            if source.startswith("/vsimem/"):
                gdal.Unlink(source)
    progress.update(100, f"mosaic of {len(tiles)} tiles written to {target} ({width}×{height})")
    warnings = [f"The tile '{i.path}' was reprojected onto the first tile's grid ({resampling})." for i in to_warp]
    for w in warnings:
        log.warning(w)
    return MosaicReport(str(target), fmt, len(tiles), width, height, ref.count, value, [i.path for i in to_warp], warnings)


def _write(
    sources: list[str], target: Path, fmt: str, value: Optional[float], resampling: str, ref: RasterInfo, progress: Progress, gdal: Any
) -> tuple[int, int]:
    """Build the VRT of ``sources`` (the output itself, or a step towards the GeoTIFF); atomically."""
    with atomic_path(target) as tmp:
        vrt_path = str(tmp) if fmt == VRT else f"/vsimem/{tmp.name}.vrt"
        options = gdal.BuildVRTOptions(srcNodata=value, VRTNodata=value, resolution="highest", resampleAlg=resampling)
        vrt = gdal.BuildVRT(vrt_path, sources, options=options)
        if vrt is None:
            raise GeoDLError(f"GDAL could not build a mosaic of {len(sources)} tiles: {gdal.GetLastErrorMsg()}")
        for b in range(ref.count):
            vrt.GetRasterBand(b + 1).SetDescription(ref.band_names[b])
        width, height = vrt.RasterXSize, vrt.RasterYSize
        if fmt == VRT:
            vrt = None  # flush the VRT file before the rename
        else:
            try:
                _translate(vrt, str(tmp), fmt, width, height, progress, gdal)
            finally:
                vrt = None
                gdal.Unlink(vrt_path)
    return width, height


def _translate(vrt: Any, path: str, fmt: str, width: int, height: int, progress: Progress, gdal: Any) -> None:
    if fmt == COG:
        options = ["COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER", "OVERVIEWS=AUTO", "NUM_THREADS=2"]
        driver = "COG"
    else:
        options = ["TILED=YES", "BLOCKXSIZE=512", "BLOCKYSIZE=512", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER", "NUM_THREADS=2"]
        driver = "GTiff"
    done = gdal.Translate(
        path, vrt, options=gdal.TranslateOptions(format=driver, creationOptions=options, callback=_callback(progress, 10, 99))
    )
    if progress.cancelled():
        raise Cancelled("Mosaic cancelled; nothing was written.")
    if done is None:
        raise GeoDLError(f"GDAL could not write the mosaic: {gdal.GetLastErrorMsg()}")
    done = None  # noqa: F841 - closes the file


def _warp(info: RasterInfo, ref: RasterInfo, nodata: Optional[float], resampling: str, folder: Optional[Path], gdal: Any) -> str:
    """A warped VRT of ``info`` on ``ref``'s CRS and pixel grid: in memory, or (for a VRT mosaic, which must
    point at files) in ``folder`` beside the mosaic."""
    rx, ry = ref.res
    name = f"{Path(info.path).stem}.warped.vrt"
    if folder is not None:
        folder.mkdir(exist_ok=True)
        path = str(folder / name)
    else:
        path = f"/vsimem/geodl_mosaic_{id(info)}_{name}"
    # Snap the warped tile onto the reference grid (origin of the first tile, its pixel size).
    info_ds = gdal.Open(info.path)
    warped = gdal.AutoCreateWarpedVRT(info_ds, info.crs_wkt, ref.crs_wkt)
    gt = warped.GetGeoTransform()
    x0, y1 = gt[0], gt[3]
    x1, y0 = gt[0] + gt[1] * warped.RasterXSize, gt[3] + gt[5] * warped.RasterYSize
    warped = None
    ox, oy = ref.transform[2], ref.transform[5]
    import math

    bounds = (
        ox + math.floor((x0 - ox) / rx) * rx,
        oy - math.ceil((oy - y0) / ry) * ry,
        ox + math.ceil((x1 - ox) / rx) * rx,
        oy - math.floor((oy - y1) / ry) * ry,
    )
    out = gdal.Warp(
        path,
        info_ds,
        options=gdal.WarpOptions(
            format="VRT",
            dstSRS=ref.crs_wkt,
            xRes=rx,
            yRes=ry,
            outputBounds=bounds,
            resampleAlg=resampling,
            srcNodata=nodata,
            dstNodata=nodata,
        ),
    )
    if out is None:
        raise GeoDLError(f"Could not reproject the tile '{info.path}': {gdal.GetLastErrorMsg()}")
    out = None  # noqa: F841 - flushes the VRT
    return path
