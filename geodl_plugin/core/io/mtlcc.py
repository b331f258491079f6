"""The MTLCC dataset layout (Rußwurm & Körner 2018): read its TFRecord tiles, write GeoTIFF stacks.

Each ``<tileid>.tfrecord.gz`` holds one ``tf.train.Example`` per tile with, as raw little-endian int64 bytes
plus a shape feature each: ``x10/data`` (T, H, W, 4: B02 B03 B04 B08 at 10 m), ``x20/data`` (T, H/2, W/2, 6:
B05 B06 B07 B8A B11 B12 at 20 m), ``x60/data`` (T, H/6, W/6, 3: B01 B09 B10 at 60 m), ``dates/doy`` and
``dates/year`` (T,), ``labels/data`` (T, H, W; 0 = unknown). Dates padded to a fixed T have day of year 0
and are dropped, as the seed's ``tfrecord2tif`` does. ``geotransforms.csv`` rows are
``tileid, xmin, xres, 0, ymax, 0, -yres, srid``.

:func:`mtlcc_to_geotiff` writes, like the seed: ``<out>/<tileid>/10m|20m|60m/<YYYYMMDD>.tif`` and
``labels.tif`` (the first date's labels), each on its own pixel size with the tile's corner; plus
``series/<YYYYMMDD>.tif``, all 13 bands on the 10 m grid (20 and 60 m bands repeated, nearest), which
``data/series.open_series`` takes as it is. Read and written with this plugin's TFRecord codec: no
TensorFlow needed.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..runtime.errors import GeoDLError
from .tfrecord import TFRecordWriter, read_examples

GROUPS = {"x10": ("B02", "B03", "B04", "B08"), "x20": ("B05", "B06", "B07", "B8A", "B11", "B12"), "x60": ("B01", "B09", "B10")}
SCALE = {"x10": 1, "x20": 2, "x60": 6}
_FEATURES = ("x10", "x20", "x60", "labels")


@dataclass
class MTLCCTile:
    tile_id: int
    x10: np.ndarray  # (T, H, W, 4)
    x20: np.ndarray  # (T, H/2, W/2, 6)
    x60: np.ndarray  # (T, H/6, W/6, 3)
    doy: np.ndarray  # (T,)
    year: np.ndarray  # (T,)
    labels: np.ndarray  # (T, H, W)

    @property
    def dates(self) -> list[dt.date]:
        return [dt.date(int(y), 1, 1) + dt.timedelta(days=int(d) - 1) for y, d in zip(self.year, self.doy)]


def _array(example: dict, name: str, path: str) -> np.ndarray:
    data, shape = example.get(f"{name}/data"), example.get(f"{name}/shape")
    if data is None or shape is None:
        raise GeoDLError(f"{path}: not an MTLCC tile (no '{name}/data' or '{name}/shape'; it has {sorted(example)[:8]}).")
    raw = data[0] if isinstance(data, list) else bytes(np.asarray(data))
    values = np.frombuffer(raw, dtype="<i8")
    shape_t = tuple(int(v) for v in np.asarray(shape).ravel())
    if int(np.prod(shape_t)) != values.size:
        raise GeoDLError(f"{path}: '{name}' holds {values.size} values but its shape says {shape_t}.")
    return values.reshape(shape_t)


def _tile_id(path: Path) -> int:
    stem = path.name.split(".")[0]
    if not stem.isdigit():
        raise GeoDLError(f"'{path.name}' is not named <tileid>.tfrecord[.gz] as MTLCC tiles are.")
    return int(stem)


def read_mtlcc_tiles(path: str | os.PathLike) -> Iterator[MTLCCTile]:
    """The tile(s) of one MTLCC TFRecord file, padded dates (day of year 0) removed."""
    p = Path(path)
    tile_id = _tile_id(p)
    for example in read_examples(p):
        x10, x20, x60, labels = (_array(example, n, str(p)) for n in _FEATURES)
        shape = example.get("dates/shape")
        doy = _array({"d/data": example.get("dates/doy"), "d/shape": shape}, "d", str(p))
        year = _array({"d/data": example.get("dates/year"), "d/shape": shape}, "d", str(p))
        keep = doy > 0
        yield MTLCCTile(tile_id, x10[keep], x20[keep], x60[keep], doy[keep], year[keep], labels[keep])


def write_mtlcc_tile(path: str | os.PathLike, tile: MTLCCTile) -> Path:
    """Write one tile in MTLCC's layout (GZIP TFRecord, int64 bytes + shapes), as the seed's S2parser does."""
    from .atomic import atomic_path

    def entry(name: str, arr: np.ndarray) -> dict:
        a = np.ascontiguousarray(arr, dtype="<i8")
        return {f"{name}/data": a.tobytes(), f"{name}/shape": np.array(a.shape, np.int64)}

    record: dict = {}
    for name in _FEATURES:
        record.update(entry(name, getattr(tile, name)))
    record["dates/doy"] = np.ascontiguousarray(tile.doy, "<i8").tobytes()
    record["dates/year"] = np.ascontiguousarray(tile.year, "<i8").tobytes()
    record["dates/shape"] = np.array([len(tile.doy)], np.int64)
    with atomic_path(path) as tmp:
        with TFRecordWriter(tmp) as writer:
            writer.write(record)
    return Path(path)


def read_geotransforms(path: str | os.PathLike) -> dict[int, tuple[float, float, float, float, float, float, int]]:
    """tileid → (xmin, xres, 0, ymax, 0, -yres, srid) from MTLCC's ``geotransforms.csv``."""
    out = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.reader(fh)):
                if not row or not row[0].strip().isdigit():
                    continue
                if len(row) < 8:
                    raise GeoDLError(f"{path}, line {n + 1}: expected tileid, xmin, xres, 0, ymax, 0, -yres, srid.")
                g = [float(v) for v in row[1:7]]
                out[int(row[0])] = (g[0], g[1], g[2], g[3], g[4], g[5], int(float(row[7])))
    except FileNotFoundError as exc:
        raise GeoDLError(f"The geotransforms file '{path}' does not exist.") from exc
    return out


@dataclass
class MTLCCConversion:
    tile_id: int
    folder: Path
    dates: list[dt.date]
    series: list[Path]  # 13-band 10 m stacks, one per date
    labels: Path
    georeferenced: bool


def _write_tif(
    path: Path,
    bands_last: np.ndarray,
    transform: object,
    crs: Optional[str],
    names: tuple[str, ...],
    dtype: str = "uint16",
    nodata: Optional[float] = None,
) -> None:
    import rasterio

    from .atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w, count = bands_last.shape
    with atomic_path(path) as tmp:
        with rasterio.open(
            tmp,
            "w",
            driver="GTiff",
            width=w,
            height=h,
            count=count,
            dtype=dtype,
            crs=crs,
            transform=transform,
            nodata=nodata,
            compress="deflate",
        ) as ds:
            ds.write(np.moveaxis(bands_last, -1, 0).astype(dtype))
            ds.descriptions = names


def mtlcc_to_geotiff(
    tfrecord: str | os.PathLike, out_dir: str | os.PathLike, geotransforms: Optional[str | os.PathLike] = None
) -> list[MTLCCConversion]:
    """Convert one MTLCC tile file to GeoTIFFs (see the module docstring). Without ``geotransforms`` (or
    without a row for the tile) the rasters are written on a unit grid at the origin, with no CRS, and
    ``georeferenced`` is False."""
    from rasterio.transform import from_origin

    table = read_geotransforms(geotransforms) if geotransforms else {}
    conversions = []
    for tile in read_mtlcc_tiles(tfrecord):
        folder = Path(out_dir) / str(tile.tile_id)
        g = table.get(tile.tile_id)
        xmin, ymax, res = (g[0], g[3], abs(g[1])) if g else (0.0, 0.0, 10.0)
        crs = f"EPSG:{g[6]}" if g else None
        h, w = tile.x10.shape[1:3]
        for name in ("x20", "x60"):
            arr = getattr(tile, name)
            if arr.shape[1] * SCALE[name] < h or arr.shape[2] * SCALE[name] < w:
                raise GeoDLError(
                    f"Tile {tile.tile_id}: {name} is {arr.shape[1]}×{arr.shape[2]}, too small for "
                    f"the {h}×{w} 10 m grid at {SCALE[name]}× its pixel size."
                )
        series = []
        for t, date in enumerate(tile.dates):
            key = f"{date:%Y%m%d}"
            for name, folder_name in (("x10", "10m"), ("x20", "20m"), ("x60", "60m")):
                scale = SCALE[name]
                _write_tif(
                    folder / folder_name / f"{key}.tif",
                    getattr(tile, name)[t],
                    from_origin(xmin, ymax, res * scale, res * scale),
                    crs,
                    GROUPS[name],
                )
            up = [tile.x10[t]] + [np.repeat(np.repeat(getattr(tile, n)[t], SCALE[n], 0), SCALE[n], 1)[:h, :w] for n in ("x20", "x60")]
            path = folder / "series" / f"{key}.tif"
            _write_tif(
                path, np.concatenate(up, axis=-1), from_origin(xmin, ymax, res, res), crs, GROUPS["x10"] + GROUPS["x20"] + GROUPS["x60"]
            )
            series.append(path)
        labels = folder / "labels.tif"
        _write_tif(
            labels,
            tile.labels[0][..., None],
            from_origin(xmin, ymax, res, res),
            crs,
            ("labels",),
            dtype="uint8" if tile.labels.max(initial=0) < 255 else "uint16",
            nodata=0,
        )
        conversions.append(MTLCCConversion(tile.tile_id, folder, tile.dates, series, labels, g is not None))
    return conversions
