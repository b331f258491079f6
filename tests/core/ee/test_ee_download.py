"""Direct download through computePixels: tiling within limits, mosaic georeferencing, retries, resume."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodl_plugin.core.earthengine import download
from geodl_plugin.core.earthengine.download import DownloadParams, plan_tiles, request_bytes
from geodl_plugin.core.runtime.errors import Cancelled, GeoDLError
from geodl_plugin.core.runtime.progress import Progress

BANDS = ["B2", "B3", "B4"]


def image():
    import ee

    return ee.Image("COPERNICUS/S2_SR_HARMONIZED/20230601T101559_20230601T102200_T32TPR")


def params(fake, width, height, scale=10.0, **kw):
    x0, y0 = fake.origin
    return DownloadParams(
        bands=BANDS,
        crs="EPSG:32632",
        bounds=(x0, y0 - height * scale, x0 + width * scale, y0),
        scale=scale,
        backoff_seconds=0.0,
        **kw,
    )


def pixel_calls(fake):
    return [b for m, u, b in fake.requests if u.split("?")[0].endswith("image:computePixels")]


def expected(fake, width, height):
    grid = {
        "dimensions": {"width": width, "height": height},
        "affineTransform": {
            "translateX": fake.origin[0],
            "translateY": fake.origin[1],
            "scaleX": 10.0,
            "scaleY": -10.0,
        },
    }
    return np.stack([fake.grid_pixel_values(grid, i) for i in range(len(BANDS))])


def test_plan_respects_byte_and_side_limits():
    # 40000 × 30000 px of 12 float bands: the server counts 5 bytes per value (4 + 1 mask byte)
    tiles = plan_tiles(40000, 30000, 12)
    assert len(tiles) > 1
    for t in tiles:
        assert request_bytes(t.width, t.height, 12) <= download.MAX_REQUEST_BYTES
        assert t.width <= 32768 and t.height <= 32768
    assert sum(t.width * t.height for t in tiles) == 40000 * 30000
    # one band: the side limit, not the bytes, binds
    assert all(max(t.width, t.height) <= 32768 for t in plan_tiles(70000, 100, 1))
    with pytest.raises(GeoDLError, match="1024"):
        plan_tiles(10, 10, 2000)


def test_region_too_large_for_one_request_is_split_and_mosaicked(ee_session, tmp_path):
    # 3 bands × 5 bytes = 15 B/px → at most 3,355,443 px per request: 2500 × 2000 px needs several
    p = params(ee_session, 2500, 2000)
    assert request_bytes(2500, 2000, 3) > download.MAX_REQUEST_BYTES
    out = download.download_image(image(), p, tmp_path / "dl.tif")
    bodies = pixel_calls(ee_session)
    assert len(bodies) >= 2
    for body in bodies:
        dims = body["grid"]["dimensions"]
        assert request_bytes(dims["width"], dims["height"], 3) <= download.MAX_REQUEST_BYTES
        assert max(dims["width"], dims["height"]) <= 32768
        assert body["fileFormat"] == "NPY"
        assert body["bandIds"] == BANDS
        assert body["grid"]["crsCode"] == "EPSG:32632"
        assert "Image.toFloat" in ee_session.function_names(body["expression"])
    with rasterio.open(out) as src:
        assert (src.width, src.height, src.count) == (2500, 2000) + (3,)
        assert src.crs.to_epsg() == 32632
        assert src.transform.almost_equals(rasterio.Affine(10, 0, ee_session.origin[0], 0, -10, ee_session.origin[1]))
        assert list(src.descriptions) == BANDS
        data = src.read()
    np.testing.assert_array_equal(data, expected(ee_session, 2500, 2000))
    assert not (tmp_path / "dl.tif.parts").exists()


def test_small_tiles_mosaic_exactly(ee_session, tmp_path):
    out = download.download_image(image(), params(ee_session, 70, 45, tile_size=32, workers=3), tmp_path / "s.tif")
    assert len(pixel_calls(ee_session)) == 3 * 2
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(), expected(ee_session, 70, 45))


def test_429_then_success(ee_session, tmp_path):
    ee_session.queue("computePixels", 429)
    ee_session.queue("computePixels", 503)
    waits = []
    out = download.download_image(image(), params(ee_session, 20, 10, workers=1), tmp_path / "r.tif", sleep=waits.append)
    assert len(pixel_calls(ee_session)) == 3 and len(waits) == 2
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(), expected(ee_session, 20, 10))


def test_429_storm_gives_clear_error_and_resume_skips_finished_tiles(ee_session, tmp_path):
    p = params(ee_session, 64, 32, tile_size=32, workers=1, max_attempts=3)  # 2 tiles
    download.download_image(image(), p, tmp_path / "ok.tif")  # warm: both tiles succeed
    ee_session.requests.clear()
    # first tile fine, then a storm on the second
    waits = []
    calls = {"n": 0}

    def storm(method, uri, body):
        if uri.split("?")[0].endswith("computePixels"):
            calls["n"] += 1
            if calls["n"] > 1:
                return 429, {
                    "error": {
                        "code": 429,
                        "message": "Too many concurrent aggregations.",
                        "status": "RESOURCE_EXHAUSTED",
                    }
                }
        return None

    ee_session.handlers.append(storm)
    target = tmp_path / "storm.tif"
    with pytest.raises(GeoDLError, match="429") as info:
        download.download_image(image(), p, target, sleep=waits.append)
    assert "3 attempts" in str(info.value) and "run the download again" in str(info.value)
    assert len(waits) == 2  # backed off between the 3 attempts
    assert not target.exists()
    assert len(list((tmp_path / "storm.tif.parts").glob("*.npy"))) == 1
    ee_session.handlers.clear()
    ee_session.requests.clear()
    download.download_image(image(), p, target)
    assert len(pixel_calls(ee_session)) == 1  # only the missing tile
    with rasterio.open(target) as src:
        np.testing.assert_array_equal(src.read(), expected(ee_session, 64, 32))


def test_cancel_keeps_nothing_half_written(ee_session, tmp_path):
    progress = Progress(is_cancelled=lambda: True)
    with pytest.raises(Cancelled):
        download.download_image(image(), params(ee_session, 64, 32, tile_size=32, workers=1), tmp_path / "c.tif", progress=progress)
    assert not (tmp_path / "c.tif").exists()


def test_bad_parameters(ee_session, tmp_path):
    with pytest.raises(GeoDLError, match="1 to 40"):
        download.download_image(image(), params(ee_session, 10, 10, workers=64), tmp_path / "x.tif")
    with pytest.raises(GeoDLError, match="too large to download directly"):
        download.download_image(image(), params(ee_session, 100000, 100000), tmp_path / "x.tif")
