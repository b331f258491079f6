"""Seeded synthetic scene with a known truth map, for segmentation tests and benchmarks.

Fields (a Voronoi partition, like parcels) and a few round blobs of four classes with distinct but
overlapping spectra, plus independent per-pixel Gaussian noise. One pixel alone is ambiguous (its class
means are ~1.5 noise standard deviations apart); its neighbourhood is not, so a model that sees spatial
context should beat a per-pixel model — which is what the segmentation tests check.

Writes, into the output folder:
- ``scene.tif``: float32, 4 bands, EPSG:32621, 30 m pixels;
- ``truth.tif``: uint8 class ids (crop 1, forest 2, urban 3, water 4: the ids ``read_labels`` gives these
  names), nodata 255;
- ``points.gpkg``: sparse labelled points (layer ``labels``, fields ``class_name`` and ``class_id``) at pixel
  centres, the same number per class.

Usage: ``python scripts/make_synthetic_scene.py OUT_DIR [--size 128] [--points 30] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASS_NAMES = ("crop", "forest", "urban", "water")  # ids 1..4 (sorted names, as read_labels numbers them)
# Class means in noise-sigma units per band: neighbours ~1.5 sigma apart, so per-pixel accuracy is modest.
MEANS = np.array(
    [
        [0.0, 1.5, 0.0, 1.5],  # crop
        [0.0, 0.0, 1.5, 1.5],  # forest
        [1.5, 0.0, 0.0, 1.5],  # urban
        [0.0, 0.0, 0.0, 0.0],  # water
    ],
    dtype=np.float64,
)
SCALE, OFFSET = 300.0, 1000.0  # digital-number-like values
EPSG = 32621
PIXEL = 30.0
ORIGIN = (500000.0, 6000000.0)  # upper-left corner, UTM 21N


@dataclass
class Scene:
    image: Path
    truth: Path
    points: Path
    truth_array: np.ndarray  # (h, w) uint8 class ids
    class_names: tuple[str, ...] = CLASS_NAMES


def truth_map(size: int, rng: np.random.Generator) -> np.ndarray:
    """Voronoi fields plus blobs; ids 1..4."""
    n_fields = max(6, (size * size) // 600)
    seeds = rng.uniform(0, size, (n_fields, 2))
    field_class = rng.integers(1, len(CLASS_NAMES) + 1, n_fields)
    rows, cols = np.mgrid[0:size, 0:size]
    best = np.full((size, size), np.inf)
    truth = np.zeros((size, size), np.uint8)
    for (r0, c0), cls in zip(seeds, field_class, strict=True):  # nearest seed, one seed at a time (memory stays h×w)
        d = (rows - r0) ** 2 + (cols - c0) ** 2
        closer = d < best
        best[closer], truth[closer] = d[closer], cls
    for _ in range(max(2, size // 32)):  # round blobs (ponds, villages) across field borders
        r0, c0 = rng.uniform(0, size, 2)
        radius = rng.uniform(size / 24, size / 10)
        truth[(rows - r0) ** 2 + (cols - c0) ** 2 < radius**2] = rng.integers(1, len(CLASS_NAMES) + 1)
    return truth


def make_scene(out_dir: str | Path, size: int = 128, points_per_class: int = 30, seed: int = 0, noise: float = 1.0) -> Scene:
    """Generate the scene into ``out_dir``; the same seed always gives the same files."""
    import rasterio
    from osgeo import ogr, osr
    from rasterio.transform import from_origin

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth = truth_map(size, rng)
    mean = MEANS[truth - 1]  # (h, w, bands)
    image = OFFSET + SCALE * (mean + noise * rng.standard_normal(mean.shape))
    image = np.moveaxis(image, -1, 0).astype(np.float32)
    transform = from_origin(ORIGIN[0], ORIGIN[1], PIXEL, PIXEL)
    profile = {"driver": "GTiff", "width": size, "height": size, "crs": f"EPSG:{EPSG}", "transform": transform}
    image_path, truth_path, points_path = out / "scene.tif", out / "truth.tif", out / "points.gpkg"
    with rasterio.open(image_path, "w", count=image.shape[0], dtype="float32", **profile) as ds:
        ds.write(image)
    with rasterio.open(truth_path, "w", count=1, dtype="uint8", nodata=255, **profile) as ds:
        ds.write(truth[None])

    ogr.UseExceptions()
    if points_path.exists():
        points_path.unlink()
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(points_path))
    layer = ds.CreateLayer("labels", srs, ogr.wkbPoint, options=["SPATIAL_INDEX=NO"])
    layer.CreateField(ogr.FieldDefn("class_name", ogr.OFTString))
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    layer.StartTransaction()
    for cid, name in enumerate(CLASS_NAMES, start=1):
        rr, cc = np.nonzero(truth == cid)
        pick = rng.choice(len(rr), size=min(points_per_class, len(rr)), replace=False)
        for r, c in zip(rr[pick], cc[pick], strict=True):
            feature = ogr.Feature(layer.GetLayerDefn())
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL)
            feature.SetGeometry(point)
            feature.SetField("class_name", name)
            feature.SetField("class_id", cid)
            layer.CreateFeature(feature)
    layer.CommitTransaction()
    ds = None  # noqa: F841 - closes the file
    return Scene(image_path, truth_path, points_path, truth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--points", type=int, default=30, help="labelled points per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    scene = make_scene(args.out_dir, args.size, args.points, args.seed)
    sys.stdout.write(f"{scene.image}\n{scene.truth}\n{scene.points}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
