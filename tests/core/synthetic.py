"""Small seeded synthetic rasters and labels with known answers, written into a test's tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CRS = "EPSG:32621"
ORIGIN = (720000.0, -2780000.0)
PIXEL = 30.0


def write_raster(path: Path, data: np.ndarray, nodata=None, crs: str = CRS) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=from_origin(*ORIGIN, PIXEL, PIXEL),
        nodata=nodata,
    ) as ds:
        ds.write(data)
    return path


def two_class_scene(path: Path, size: int = 64, seed: int = 0, nodata_corner: bool = True) -> Path:
    """Left half class 'water' (dark), right half 'tree' (bright), uint16, 3 bands; 0 = nodata corner."""
    rng = np.random.default_rng(seed)
    data = np.empty((3, size, size), np.uint16)
    data[:, :, : size // 2] = rng.normal(1000, 50, (3, size, size // 2))
    data[:, :, size // 2 :] = rng.normal(3000, 50, (3, size, size - size // 2))
    if nodata_corner:
        data[:, :4, :4] = 0
    return write_raster(path, data, nodata=0)


def write_points(path: Path, xy, names, field: str = "name", epsg: int = 32621) -> Path:
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    lyr = ds.CreateLayer("points", srs, ogr.wkbPoint)
    lyr.CreateField(ogr.FieldDefn(field, ogr.OFTString))
    for (x, y), name in zip(xy, names):
        f = ogr.Feature(lyr.GetLayerDefn())
        g = ogr.Geometry(ogr.wkbPoint)
        g.AddPoint_2D(float(x), float(y))
        f.SetGeometry(g)
        f.SetField(field, name)
        lyr.CreateFeature(f)
    ds = None
    return path


def grid_points(size: int = 64, step: int = 3, seed: int = 0):
    """Pixel-centre points over the scene with their true class."""
    xy, names = [], []
    for r in range(2, size - 2, step):
        for c in range(2, size - 2, step):
            xy.append((ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL))
            names.append("water" if c < size // 2 else "tree")
    return xy, names


def regression_truth(bands: np.ndarray) -> np.ndarray:
    """The known target of the regression scene: a smooth, non-linear function of the spectra (float64)."""
    b = bands.astype(np.float64)
    return 40.0 + 25.0 * np.tanh((b[0] - b[1]) / 400.0) + 15.0 * ((b[2] - 1000.0) / 600.0) ** 2


def regression_scene(folder: Path, size: int = 64, n_points: int = 400, seed: int = 0):
    """A seeded 4-band uint16 scene of smooth spectral fields, points at random pixel centres carrying the true
    target (field 'roof_pct', real) and the target raster itself. Returns (image, points, truth raster)."""
    from osgeo import ogr

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    data = np.empty((4, size, size), np.uint16)
    for k in range(4):
        fx, fy, phase = rng.uniform(0.6, 1.6), rng.uniform(0.6, 1.6), rng.uniform(0, 2 * np.pi, 2)
        field = np.sin(2 * np.pi * fx * xx + phase[0]) + np.cos(2 * np.pi * fy * yy + phase[1])
        data[k] = np.round(1000 + 300 * field + rng.normal(0, 3, (size, size))).astype(np.uint16)
    image = write_raster(folder / "scene.tif", data)
    truth = regression_truth(data)
    truth_path = write_raster(folder / "truth.tif", truth[None].astype(np.float32))
    flat = rng.choice(size * size, n_points, replace=False)
    rows, cols = flat // size, flat % size
    xy = [(ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL) for r, c in zip(rows, cols)]
    points = write_points(folder / "points.gpkg", xy, ["p"] * n_points, field="id")
    ds = ogr.Open(str(points), 1)
    lyr = ds.GetLayer(0)
    lyr.CreateField(ogr.FieldDefn("roof_pct", ogr.OFTReal))
    lyr.StartTransaction()
    for f, r, c in zip(lyr, rows, cols):
        f.SetField("roof_pct", float(truth[r, c]))
        lyr.SetFeature(f)
    lyr.CommitTransaction()
    ds = None
    return image, points, truth_path
