"""Flatten: the table read back equals the raster values exactly (CSV, Parquet, GeoPackage), block by block,
with classes from polygons and numeric targets at points."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from geodl_plugin.core.data.flatten import flatten_rasters
from geodl_plugin.core.data.labels import read_labels, read_targets
from geodl_plugin.core.runtime.errors import Cancelled, GeoDLError
from geodl_plugin.core.runtime.progress import Progress
from tests.core.synthetic import ORIGIN, PIXEL, write_raster


def _polygons(path, boxes, values, field="name", ftype=None):
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32621)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    lyr = ds.CreateLayer("polygons", srs, ogr.wkbPolygon)
    lyr.CreateField(ogr.FieldDefn(field, ftype if ftype is not None else ogr.OFTString))
    for (c0, r0, c1, r1), value in zip(boxes, values):
        x0, x1 = ORIGIN[0] + c0 * PIXEL, ORIGIN[0] + c1 * PIXEL
        y0, y1 = ORIGIN[1] - r1 * PIXEL, ORIGIN[1] - r0 * PIXEL
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)):
            ring.AddPoint_2D(x, y)
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetGeometry(poly)
        f.SetField(field, value)
        lyr.CreateFeature(f)
    ds = None
    return path


@pytest.fixture
def stack(tmp_path):
    """A uint16 raster with a nodata pixel and a float32 raster with awkward decimals, on one grid."""
    rng = np.random.default_rng(11)
    a = rng.integers(1, 60000, (2, 37, 45)).astype(np.uint16)
    a[:, 3, 4] = 0
    b = (rng.normal(0, 1, (1, 37, 45)) * np.float32(1e-3) + np.float32(1 / 3)).astype(np.float32)
    return (write_raster(tmp_path / "a.tif", a, nodata=0), write_raster(tmp_path / "b.tif", b)), a, b


def _read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_csv_reads_back_exactly_block_by_block(stack, tmp_path):
    (ra, rb), a, b = stack
    report = flatten_rasters([ra, rb], tmp_path / "t.csv", block=16)  # 3×3 blocks, edges uneven
    header, rows = _read_csv(tmp_path / "t.csv")
    assert header == ["lon", "lat", "x", "y", "row", "col", "a_B1", "a_B2", "b_B1"]
    assert report.rows == len(rows) == 37 * 45 - 1 and report.skipped_nodata == 1
    r = np.array([int(x[4]) for x in rows])
    c = np.array([int(x[5]) for x in rows])
    np.testing.assert_array_equal(np.array([int(x[6]) for x in rows], np.uint16), a[0, r, c])
    np.testing.assert_array_equal(np.array([int(x[7]) for x in rows], np.uint16), a[1, r, c])
    np.testing.assert_array_equal(np.array([float(x[8]) for x in rows], np.float32), b[0, r, c])  # bit-exact
    assert not ((r == 3) & (c == 4)).any()
    x = np.array([float(v[2]) for v in rows])
    np.testing.assert_allclose(x, ORIGIN[0] + (c + 0.5) * PIXEL)
    lon = np.array([float(v[0]) for v in rows])
    assert -60 < lon.min() < lon.max() < -50  # UTM 21S lies at 60°W–54°W


def test_parquet_reads_back_exactly(stack, tmp_path):
    import pyarrow.parquet as pq  # required: requirements/runtime.txt

    (ra, rb), a, b = stack
    flatten_rasters([ra, rb], tmp_path / "t.parquet", block=20)
    table = pq.read_table(tmp_path / "t.parquet")
    r, c = table.column("row").to_numpy(), table.column("col").to_numpy()
    assert table.schema.field("a_B1").type == "uint16" and table.schema.field("b_B1").type == "float"
    np.testing.assert_array_equal(table.column("a_B2").to_numpy(), a[1, r, c])
    np.testing.assert_array_equal(table.column("b_B1").to_numpy(), b[0, r, c])


def test_classes_inside_polygons_to_geopackage(stack, tmp_path):
    from osgeo import ogr

    (ra, _), a, _ = stack
    polys = _polygons(tmp_path / "p.gpkg", [(0, 0, 10, 5), (20, 10, 25, 12)], ["roof", "road"])
    labels = read_labels(polys, "name")
    report = flatten_rasters([ra], tmp_path / "t.gpkg", labels=labels)
    assert report.rows == 10 * 5 - 1 + 5 * 2  # minus the nodata pixel at (3, 4)
    ds = ogr.Open(str(tmp_path / "t.gpkg"))
    seen = {}
    for f in ds.GetLayer(0):
        r, c = f.GetField("row"), f.GetField("col")
        assert f.GetField("B1") == a[0, r, c] and f.GetField("B2") == a[1, r, c]
        assert f.GetGeometryRef().GetX() == pytest.approx(ORIGIN[0] + (c + 0.5) * PIXEL)
        seen[f.GetField("class_name")] = seen.get(f.GetField("class_name"), 0) + 1
    assert seen == {"roof": 49, "road": 10}


def test_numeric_targets_at_points(stack, tmp_path):
    from osgeo import ogr

    from tests.core.synthetic import write_points

    (ra, _), a, _ = stack
    xy = [(ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL) for r, c in ((1, 1), (30, 40), (5, 9))]
    pts = tmp_path / "pts.gpkg"
    write_points(pts, xy, ["x"] * 3, field="unused")
    ds = ogr.Open(str(pts), 1)
    lyr = ds.GetLayer(0)
    lyr.CreateField(ogr.FieldDefn("roof_fraction", ogr.OFTReal))
    for f, v in zip(lyr, (0.25, 0.5, 0.125)):
        f.SetField("roof_fraction", v)
        lyr.SetFeature(f)
    ds = None
    with pytest.raises(GeoDLError, match="holds text"):
        read_targets(pts, "unused")
    targets = read_targets(pts, "roof_fraction")
    flatten_rasters([ra], tmp_path / "t.csv", labels=targets)
    header, rows = _read_csv(tmp_path / "t.csv")
    assert header[-1] == "roof_fraction"
    got = {(int(x[4]), int(x[5])): (int(x[6]), float(x[-1])) for x in rows}
    assert got == {(1, 1): (a[0, 1, 1], 0.25), (30, 40): (a[0, 30, 40], 0.5), (5, 9): (a[0, 5, 9], 0.125)}


def test_bad_name_and_cancel_leave_nothing(stack, tmp_path):
    (ra, _), _, _ = stack
    with pytest.raises(GeoDLError, match=".csv, .parquet or .gpkg"):
        flatten_rasters([ra], tmp_path / "t.xlsx")
    with pytest.raises(Cancelled):
        flatten_rasters([ra], tmp_path / "t.csv", progress=Progress(is_cancelled=lambda: True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]
