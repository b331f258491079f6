"""``raster_info`` reads a raster's facts through GDAL's own API (a series is described file by file before
every step, and GDAL opens a file ~20× faster than rasterio): its facts must be those rasterio reports, for
projected and geographic CRSs, units other than the metre, other data types and nodata, band descriptions, a
VRT and the sample scene; and a series read through GDAL datasets gives what rasterio reads."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodl_plugin.core.data.series import open_series
from geodl_plugin.core.io.raster import RasterInfo, raster_info
from geodl_plugin.core.runtime.errors import GeoDLError


def rasterio_info(path: str) -> RasterInfo:
    """The facts as rasterio reports them (what ``raster_info`` returned before it read through GDAL)."""
    with warnings.catch_warnings(), rasterio.open(path) as ds:
        warnings.simplefilter("ignore")
        return RasterInfo(
            path=path,
            width=ds.width,
            height=ds.height,
            count=ds.count,
            dtype=ds.dtypes[0],
            crs_wkt=ds.crs.to_wkt(),
            transform=tuple(ds.transform)[:6],  # type: ignore[arg-type]
            nodata=ds.nodata,
            band_names=tuple(d or f"B{i}" for i, d in enumerate(ds.descriptions, start=1)),
            crs_is_geographic=bool(ds.crs.is_geographic),
            crs_units=ds.crs.linear_units if not ds.crs.is_geographic else "degree",
            described=any(ds.descriptions),
        )


def write(path, crs: str, dtype: str = "uint16", nodata=None, count: int = 3, descriptions=None, transform=None) -> str:
    data = (np.arange(count * 20 * 30).reshape(count, 20, 30) % 200).astype(dtype)
    profile = {"driver": "GTiff", "width": 30, "height": 20, "count": count, "dtype": dtype, "crs": crs}
    profile["transform"] = transform or from_origin(500000.0, 4100000.0, 10.0, 10.0)
    with rasterio.open(path, "w", nodata=nodata, **profile) as ds:
        ds.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            ds.set_band_description(i, d)
    return str(path)


@pytest.mark.parametrize(
    "crs, dtype, nodata, descriptions",
    [
        ("EPSG:32618", "uint16", 0, ["blue", "green", "red"]),
        ("EPSG:4326", "float32", -9999.0, None),
        ("EPSG:2263", "int16", None, ["a", "", "c"]),  # US survey feet; one band without a description
        ("EPSG:27700", "uint8", 255, None),
        ("EPSG:3857", "float64", float("nan"), None),
    ],
)
def test_the_facts_are_rasterios(tmp_path, crs, dtype, nodata, descriptions):
    transform = from_origin(-75.0, 41.0, 0.001, 0.001) if crs == "EPSG:4326" else None
    path = write(tmp_path / "r.tif", crs, dtype, nodata, descriptions=descriptions, transform=transform)
    got, expected = raster_info(path), rasterio_info(path)
    if nodata is not None and np.isnan(nodata):
        assert got.nodata is not None and np.isnan(got.nodata) and np.isnan(expected.nodata)
        got, expected = (RasterInfo(**{**vars(i), "nodata": None}) for i in (got, expected))
    assert got == expected
    assert got.described == bool(descriptions)
    named = raster_info(path, ["x", "y", "z"])
    assert named.band_names == ("x", "y", "z") and named.described


def test_a_vrt_and_the_sample_scene(tmp_path, sample_scene):
    from osgeo import gdal

    gdal.UseExceptions()
    vrt = str(tmp_path / "two.vrt")
    gdal.BuildVRT(vrt, [str(sample_scene)], bandList=[1, 2])
    for path in (str(sample_scene), vrt):
        assert raster_info(path) == rasterio_info(path)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_bad_rasters_get_one_message(tmp_path):
    text = tmp_path / "notes.tif"
    text.write_text("not a raster", encoding="utf-8")
    with pytest.raises(GeoDLError, match="^Cannot open '.*notes.tif' as a raster"):
        raster_info(text)
    with pytest.raises(GeoDLError, match="does not exist"):
        raster_info(tmp_path / "gone.tif")
    with pytest.raises(GeoDLError, match="has 3 bands but 2 band names were given"):
        raster_info(write(tmp_path / "r.tif", "EPSG:32618"), ["a", "b"])
    bare = tmp_path / "bare.tif"
    with rasterio.open(bare, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as ds:
        ds.write(np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(GeoDLError, match="no coordinate reference system"):
        raster_info(bare)


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_a_series_reads_what_rasterio_reads(tmp_path, dtype):
    """Files of one date each, read through GDAL straight into the float buffer: the values rasterio reads,
    nodata and (for floats) non-finite values as missing, mirrored beyond the edge."""
    paths = []
    for day in (3, 40, 90):
        path = write(tmp_path / f"s_2021{day:04d}.tif", "EPSG:32618", dtype, nodata=7, count=2)
        with rasterio.open(path, "r+") as ds:
            data = ds.read().astype(dtype)
            data[0, 2, 3] = 7  # nodata in one band: the date is missing at that pixel
            if dtype == "float32":
                data[1, 5, 6] = np.inf
            ds.write(data)
        paths.append(path)
    series = open_series(paths, dates=[dt.date(2021, 1, d) for d in (3, 10, 30)])
    got = series.read(-2, -1, 12, 9)
    raw = []
    for path in paths:
        with rasterio.open(path) as ds:
            raw.append(ds.read(window=((0, 8), (0, 10))).astype(np.float32))
    expected = np.stack(raw)
    bad = (expected == 7).any(axis=1) | ~np.isfinite(expected).all(axis=1)
    expected[np.broadcast_to(bad[:, None], expected.shape)] = np.nan
    expected = np.pad(expected, ((0, 0), (0, 0), (1, 0), (2, 0)), mode="symmetric")
    assert got.dtype == np.float32 and got.shape == (3, 2, 9, 12)
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got[:, :, 1 + 2, 2 + 3]).all() and not np.isnan(got[:, :, 0, 0]).any()


@pytest.mark.parametrize("exceptions", [False, True])
def test_gdals_exception_setting_is_left_as_it_was(tmp_path, exceptions):
    """QGIS and other plugins share GDAL's exception setting in one process: reading facts and windows, and
    failing to, leave it as it was, and give the same one message either way."""
    from osgeo import gdal

    was = gdal.GetUseExceptions()
    (gdal.UseExceptions if exceptions else gdal.DontUseExceptions)()
    try:
        path = write(tmp_path / "r.tif", "EPSG:32618")
        assert raster_info(path).count == 3
        text = tmp_path / "notes.tif"
        text.write_text("not a raster", encoding="utf-8")
        with pytest.raises(GeoDLError, match=r"^Cannot open '.*notes.tif' as a raster \(.*not recognized"):
            raster_info(text)
        assert bool(gdal.GetUseExceptions()) == exceptions
    finally:
        (gdal.UseExceptions if was else gdal.DontUseExceptions)()


@pytest.mark.parametrize("exceptions", [False, True])
def test_a_damaged_date_names_its_file(tmp_path, exceptions):
    """A file that opens but whose tiles are cut off (an interrupted download) fails the read with one message
    naming it, not with a traceback or a window of garbage."""
    from osgeo import gdal

    paths = []
    for day in (3, 10, 20):
        path = tmp_path / f"s_202101{day:02d}.tif"
        profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 2, "dtype": "uint16", "crs": "EPSG:32618"}
        profile.update(transform=from_origin(500000.0, 4100000.0, 10.0, 10.0), tiled=True, blockxsize=16, blockysize=16)
        with rasterio.open(path, "w", compress="deflate", **profile) as ds:
            ds.write(np.random.default_rng(day).integers(0, 5000, (2, 64, 64)).astype("uint16"))
        paths.append(str(path))
    damaged = Path(paths[-1])
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])  # the directory is at the start: it opens, its last tiles are gone
    series = open_series(paths, dates=[dt.date(2021, 1, d) for d in (3, 10, 20)])
    was = gdal.GetUseExceptions()
    (gdal.UseExceptions if exceptions else gdal.DontUseExceptions)()
    try:
        with pytest.raises(GeoDLError, match=r"^Cannot read the raster '.*s_20210120.tif' \(.+\)\. Check that the file"):
            series.read(0, 0, 64, 64)
        assert bool(gdal.GetUseExceptions()) == exceptions
    finally:
        (gdal.UseExceptions if was else gdal.DontUseExceptions)()


def test_a_stack_window_mirrored_beyond_the_edge_is_rasterios(tmp_path):
    """``read_reflect`` (tiled prediction's and chips' reader) reads each raster's chosen bands through GDAL:
    the values rasterio reads, in the stack's order, mirrored beyond the raster's edge."""
    import dataclasses

    from geodl_plugin.core.data.chips import read_reflect

    a = write(tmp_path / "a.tif", "EPSG:32618", "uint16", count=3)
    b = write(tmp_path / "b.tif", "EPSG:32618", "uint16", count=2)
    infos = [dataclasses.replace(raster_info(a), indexes=(3, 1)), raster_info(b)]
    got = read_reflect(infos, -3, 12, 36, 14)  # 3 columns before the left edge, 6 rows and columns past the far ones
    with rasterio.open(a) as ds_a, rasterio.open(b) as ds_b:
        inside = np.concatenate([ds_a.read([3, 1], window=((12, 20), (0, 30))), ds_b.read(window=((12, 20), (0, 30)))])
    expected = np.pad(inside, ((0, 0), (0, 6), (3, 3)), mode="symmetric")
    assert got.dtype == np.uint16 and got.shape == (4, 14, 36)
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(GeoDLError, match="lies outside the raster"):
        read_reflect(infos, 40, 0, 8, 8)


def test_a_stack_window_with_fill_beyond_the_edge_is_rasterios(tmp_path):
    """``read_stack_window`` (the pixel models' prediction and sample reader) reads through GDAL: inside the
    raster the values rasterio reads; a window over the edge holds ``fill`` outside, as rasterio's boundless
    read does; one wholly outside is all ``fill``."""
    import dataclasses

    from geodl_plugin.core.data.samples import read_stack_window

    a = write(tmp_path / "a.tif", "EPSG:32618", "int16", count=3)
    b = write(tmp_path / "b.tif", "EPSG:32618", "int16", count=1)
    infos = [dataclasses.replace(raster_info(a), indexes=(2, 3)), raster_info(b)]
    with rasterio.open(a) as ds_a, rasterio.open(b) as ds_b:

        def expected(col, row, w, h, fill):
            window = rasterio.windows.Window(col, row, w, h)
            kept = {"window": window, "boundless": True, "fill_value": fill}
            return np.concatenate([ds_a.read([2, 3], **kept), ds_b.read(**kept)])

        for col, row, w, h, fill in [(4, 3, 20, 10, 0), (-5, -2, 12, 9, -7), (25, 15, 10, 8, 9), (40, 0, 5, 5, 3)]:
            got = read_stack_window(infos, col, row, w, h, fill=fill)
            assert got.dtype == np.int16 and got.shape == (3, h, w)
            np.testing.assert_array_equal(got, expected(col, row, w, h, fill))
