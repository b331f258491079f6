"""Seeded synthetic time-series scene whose classes differ only in *when* things happen.

Fields (a Voronoi partition, ~20 px each) of three classes, observed on 18 monthly dates (a year and a half, so
every field shows one whole season however late it is sown):

- ``fastgreen``: a crop that greens up within one month and senesces over five;
- ``slowgreen``: a crop that greens up over five months and is harvested within one;
- ``water``: dark and constant (a control class a single date separates easily).

Both crops are mixtures of the same soil and vegetation spectra, weighted by a greenness curve whose
shape is the other's mirrored in time; every field has its own sowing date, drawn uniformly over the year.
So on every single date the two crops' spectra have the same distribution (a single-date model is at
chance between them) and only the order of the dates tells them apart. Per-pixel noise, a small per-pixel
jitter of the sowing date, and clouds (round patches of nodata = 0 on about a third of the dates) are added.

Writes, into the output folder:
- ``series_YYYYMMDD.tif`` (one per date): uint16, 4 bands (blue, green, red, nir), EPSG:32621, 10 m, nodata 0;
- ``truth.tif``: uint8 class ids (fastgreen 1, slowgreen 2, water 3: the ids ``read_labels`` gives these
  sorted names), nodata 255;
- ``points.gpkg``: labelled points at pixel centres (layer ``labels``, fields ``class_name``, ``class_id``),
  the same number per class.

Usage: ``python scripts/make_synthetic_series.py OUT_DIR [--size 48] [--points 100] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASS_NAMES = ("fastgreen", "slowgreen", "water")
BANDS = ("blue", "green", "red", "nir")
SOIL = np.array([0.12, 0.15, 0.20, 0.25])
VEGETATION = np.array([0.04, 0.08, 0.04, 0.45])
WATER = np.array([0.06, 0.05, 0.03, 0.01])
NOISE = 0.008  # reflectance units, per pixel and band
SCALE = 10000.0
EPSG = 32621
PIXEL = 10.0
ORIGIN = (500000.0, 6000000.0)
PERIOD = 12.0  # months
RISE, FALL = 1.0, 5.0  # months: fastgreen rises in RISE and falls over FALL; slowgreen the other way round


@dataclass
class SeriesScene:
    rasters: list[Path]
    dates: list[dt.date]
    truth: Path
    points: Path
    truth_array: np.ndarray  # (size, size) uint8 class ids
    observed: np.ndarray  # (dates, size, size) bool: not under a cloud


def greenness(months_since_sowing: np.ndarray) -> np.ndarray:
    """fastgreen's curve: 0 → 1 over RISE months, 1 → 0 over FALL months, 0 for the rest of the year."""
    s = np.mod(months_since_sowing, PERIOD)
    return np.where(s < RISE, s / RISE, np.where(s < RISE + FALL, 1.0 - (s - RISE) / FALL, 0.0))


def class_curves(classes: np.ndarray, sowing: np.ndarray, n_dates: int) -> np.ndarray:
    """(dates, h, w) greenness: fastgreen g(t − sowing), slowgreen g(sowing − t) (mirrored in time), water 0."""
    t = np.arange(n_dates, dtype=np.float64)[:, None, None]
    fast = greenness(t - sowing[None])
    slow = greenness(sowing[None] - t)
    return np.where(classes[None] == 1, fast, np.where(classes[None] == 2, slow, 0.0))


def _voronoi(size: int, n_fields: int, rng: np.random.Generator) -> np.ndarray:
    seeds = rng.uniform(0, size, (n_fields, 2))
    rr, cc = np.mgrid[0:size, 0:size]
    d = (rr[..., None] - seeds[:, 0]) ** 2 + (cc[..., None] - seeds[:, 1]) ** 2
    return d.argmin(axis=-1)


def make_series_scene(
    out: Path, size: int = 48, n_points: int = 100, seed: int = 0, n_dates: int = 18, year: int = 2020, cloud_probability: float = 0.35
) -> SeriesScene:
    import rasterio
    from rasterio.transform import from_origin

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fields = _voronoi(size, max(6, size * size // 20), rng)
    n_fields = int(fields.max()) + 1
    field_class = rng.choice([1, 2, 3], n_fields, p=[0.4, 0.4, 0.2])
    field_class[:3] = [1, 2, 3]  # every class present
    field_sowing = rng.uniform(0, PERIOD, n_fields)
    classes = field_class[fields].astype(np.uint8)
    sowing = field_sowing[fields] + rng.normal(0, 0.5, (size, size))
    g = class_curves(classes, sowing, n_dates)  # (T, h, w)
    spectra = SOIL[None, :, None, None] * (1 - g[:, None]) + VEGETATION[None, :, None, None] * g[:, None]
    spectra = np.where((classes == 3)[None, None], WATER[None, :, None, None], spectra)
    spectra = spectra + rng.normal(0, NOISE, spectra.shape)
    values = np.clip(spectra * SCALE, 1, 65535).astype(np.uint16)
    rr, cc = np.mgrid[0:size, 0:size]
    observed = np.ones((n_dates, size, size), bool)
    for t in range(n_dates):
        if rng.random() < cloud_probability:
            for _ in range(int(rng.integers(1, 3))):
                r0, c0 = rng.uniform(0, size, 2)
                radius = rng.uniform(size / 8, size / 4)
                observed[t] &= (rr - r0) ** 2 + (cc - c0) ** 2 > radius**2
    values[np.broadcast_to(~observed[:, None], values.shape)] = 0
    transform = from_origin(*ORIGIN, PIXEL, PIXEL)
    dates = (
        [dt.date(year, m % 12 + 1, 15) for m in range(n_dates)]
        if n_dates <= 12
        else [dt.date(year, 1, 15) + dt.timedelta(days=int(30.4 * m)) for m in range(n_dates)]
    )
    rasters = []
    for t, date in enumerate(dates):
        path = out / f"series_{date:%Y%m%d}.tif"
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=size,
            height=size,
            count=len(BANDS),
            dtype="uint16",
            crs=f"EPSG:{EPSG}",
            transform=transform,
            nodata=0,
        ) as ds:
            ds.write(values[t])
            ds.descriptions = BANDS
        rasters.append(path)
    truth = out / "truth.tif"
    with rasterio.open(
        truth, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs=f"EPSG:{EPSG}", transform=transform, nodata=255
    ) as ds:
        ds.write(classes[None])
    points = out / "points.gpkg"
    _write_points(points, classes, n_points, rng)
    return SeriesScene(rasters, dates, truth, points, classes, observed)


def _write_points(path: Path, classes: np.ndarray, per_class: int, rng: np.random.Generator) -> None:
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    if path.exists():
        path.unlink()
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("labels", srs, ogr.wkbPoint, options=["SPATIAL_INDEX=NO"])
    layer.CreateField(ogr.FieldDefn("class_name", ogr.OFTString))
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    for class_id, name in enumerate(CLASS_NAMES, start=1):
        rows, cols = np.nonzero(classes == class_id)
        pick = rng.choice(len(rows), min(per_class, len(rows)), replace=False)
        for i in pick:
            feature = ogr.Feature(layer.GetLayerDefn())
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(ORIGIN[0] + (cols[i] + 0.5) * PIXEL, ORIGIN[1] - (rows[i] + 0.5) * PIXEL)
            feature.SetGeometry(point)
            feature.SetField("class_name", name)
            feature.SetField("class_id", class_id)
            layer.CreateFeature(feature)
    ds = None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scene = make_series_scene(args.out, args.size, args.points, args.seed)
    sys.stdout.write(f"wrote {len(scene.rasters)} dates, truth and points to {args.out}\n")
