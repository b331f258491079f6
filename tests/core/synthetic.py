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

    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=from_origin(*ORIGIN, PIXEL, PIXEL), nodata=nodata) as ds:
        ds.write(data)
    return path


def two_class_scene(path: Path, size: int = 64, seed: int = 0, nodata_corner: bool = True) -> Path:
    """Left half class 'water' (dark), right half 'tree' (bright), uint16, 3 bands; 0 = nodata corner."""
    rng = np.random.default_rng(seed)
    data = np.empty((3, size, size), np.uint16)
    data[:, :, : size // 2] = rng.normal(1000, 50, (3, size, size // 2))
    data[:, :, size // 2:] = rng.normal(3000, 50, (3, size, size - size // 2))
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
