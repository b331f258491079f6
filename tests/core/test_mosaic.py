"""Mosaic: tiles cut from one seeded raster join back into exactly that raster (VRT, GeoTIFF, COG); nodata
lets the tile beneath show through; misfit tiles are refused by name or reprojected on request."""

from __future__ import annotations

import numpy as np
import pytest

from geodl_plugin.core.io.mosaic import mosaic_rasters
from geodl_plugin.core.runtime.errors import Cancelled, GeoDLError
from geodl_plugin.core.runtime.progress import Progress
from tests.core.synthetic import ORIGIN, PIXEL


def _write(path, data, col=0, row=0, nodata=None, crs="EPSG:32621", pixel=PIXEL):
    import rasterio
    from rasterio.transform import from_origin

    transform = from_origin(ORIGIN[0] + col * PIXEL, ORIGIN[1] - row * PIXEL, pixel, pixel)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as ds:
        ds.write(data)
    return path


@pytest.fixture
def scene():
    return np.random.default_rng(3).integers(1, 5000, (3, 40, 50)).astype(np.uint16)


@pytest.fixture
def tiles(tmp_path, scene):
    """Four tiles of the scene in a folder (uneven sizes, as a chipper leaves them at the edges)."""
    folder = tmp_path / "tiles"
    folder.mkdir()
    for i, (r0, r1) in enumerate(((0, 24), (24, 40))):
        for j, (c0, c1) in enumerate(((0, 32), (32, 50))):
            _write(folder / f"t{i}{j}.tif", scene[:, r0:r1, c0:c1], col=c0, row=r0, nodata=0)
    return folder


def _read(path):
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(), ds.transform, ds.nodata, ds.profile


@pytest.mark.parametrize("name,fmt", [("m.vrt", None), ("m.tif", None), ("m.tif", "cog")])
def test_tiles_join_back_into_the_scene(tiles, scene, tmp_path, name, fmt):
    report = mosaic_rasters([tiles], tmp_path / name, fmt=fmt)
    data, transform, nodata, profile = _read(tmp_path / name)
    np.testing.assert_array_equal(data, scene)
    assert (transform.c, transform.f) == ORIGIN and nodata == 0 and report.tiles == 4
    if name.endswith(".tif"):
        assert profile["tiled"] and profile["compress"] == "deflate"
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_nodata_of_a_later_tile_lets_the_earlier_show(tmp_path):
    a = np.full((1, 10, 10), 7, np.uint8)
    b = np.full((1, 10, 10), 9, np.uint8)
    b[:, :, :5] = 0  # nodata on the left half
    _write(tmp_path / "a.tif", a, nodata=0)
    _write(tmp_path / "b.tif", b, col=2, nodata=0)  # overlaps a's columns 2..9
    mosaic_rasters([tmp_path / "a.tif", tmp_path / "b.tif"], tmp_path / "m.tif")
    data = _read(tmp_path / "m.tif")[0][0]
    assert data.shape == (10, 12)
    np.testing.assert_array_equal(data[:, :7], 7)  # a, and a through b's nodata
    np.testing.assert_array_equal(data[:, 7:], 9)


def test_misfit_tiles_are_named(tiles, tmp_path, scene):
    odd = _write(tmp_path / "odd_crs.tif", scene[:, :8, :8], crs="EPSG:32622", nodata=0)
    with pytest.raises(GeoDLError, match="odd_crs.tif.*EPSG:32622"):
        mosaic_rasters([tiles, odd], tmp_path / "m.vrt")
    coarse = _write(tmp_path / "coarse.tif", scene[:, :8, :8], pixel=60.0, nodata=0)
    with pytest.raises(GeoDLError, match="coarse.tif.*pixel size is 60"):
        mosaic_rasters([tiles, coarse], tmp_path / "m.vrt")
    two = _write(tmp_path / "two_bands.tif", scene[:2, :8, :8], nodata=0)
    with pytest.raises(GeoDLError, match="two_bands.tif.*2 band"):
        mosaic_rasters([tiles, two], tmp_path / "m.vrt", reproject=True)
    assert not (tmp_path / "m.vrt").exists()


def test_reproject_on_request(tiles, tmp_path, scene):
    """A tile at twice the pixel size joins once warped onto the first tile's grid (nearest: each coarse pixel
    becomes 2×2 fine ones)."""
    coarse = scene[:, :5, :5].copy()
    _write(tmp_path / "zcoarse.tif", coarse, col=50, pixel=60.0, nodata=0)  # right of the scene
    report = mosaic_rasters([tiles, tmp_path / "zcoarse.tif"], tmp_path / "m.tif", reproject=True)
    data = _read(tmp_path / "m.tif")[0]
    assert report.reprojected and report.width == 60
    np.testing.assert_array_equal(data[:, :40, :50], scene)
    np.testing.assert_array_equal(data[:, :10, 50:60], np.repeat(np.repeat(coarse, 2, axis=1), 2, axis=2))


def test_cancel_leaves_nothing(tiles, tmp_path):
    with pytest.raises(Cancelled):
        mosaic_rasters([tiles], tmp_path / "m.tif", progress=Progress(is_cancelled=lambda: True))
    assert list(tmp_path.iterdir()) == [tiles]
