"""Suggested points: least sure first, spread out, a share per predicted class, inside the region, never on
nodata; written as a ranked GeoPackage layer."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodl_plugin.core.predict.suggest import SuggestParams, select_points, suggest_points
from geodl_plugin.core.runtime.errors import GeoDLError

ORIGIN, PIXEL = (500000.0, 6000000.0), 10.0


def _write(path, data, dtype, nodata):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=dtype,
        crs="EPSG:32621",
        transform=from_origin(*ORIGIN, PIXEL, PIXEL),
        nodata=nodata,
    ) as ds:
        ds.write(data.astype(dtype)[None])
    return str(path)


@pytest.fixture
def maps(tmp_path):
    """60×60: class 1 on the left, class 2 on the right (a small strip), known uncertainty: a smooth ramp
    rising to the right plus a hot spot at (10, 10); margin = 1 − entropy; a nodata block that would be the
    most uncertain of all."""
    rows, cols = np.mgrid[0:60, 0:60]
    entropy = 0.2 + 0.5 * cols / 60.0
    entropy += 0.29 * np.exp(-((rows - 10) ** 2 + (cols - 10) ** 2) / 8.0)
    classes = np.where(cols < 50, 1, 2).astype(np.uint8)
    classes[40:50, 40:50] = 255
    entropy[40:50, 40:50] = -1  # the writer's nodata
    return {
        "classes": _write(tmp_path / "c.tif", classes, "uint8", 255),
        "entropy": _write(tmp_path / "e.tif", entropy, "float32", -1),
        "margin": _write(tmp_path / "m.tif", np.where(entropy < 0, -1, 1 - entropy), "float32", -1),
        "array": entropy,
        "class_array": classes,
    }


def test_least_sure_first_spread_out_off_nodata(maps, tmp_path):
    params = SuggestParams(maps["classes"], maps["entropy"], count=12, min_distance=100.0, class_share=0.0, output=str(tmp_path / "s.gpkg"))
    result = suggest_points(params)
    s = result.suggestions
    assert len(s) == 12 and [p.rank for p in s] == list(range(1, 13))
    assert all(a.uncertainty >= b.uncertainty for a, b in zip(s, s[1:]))  # ranked
    assert (s[0].row, s[0].col) == (10, 10) or s[0].col >= 55  # the hot spot or the right edge: the top scores
    assert any(abs(p.row - 10) <= 1 and abs(p.col - 10) <= 1 for p in s)  # the hot spot is found
    xy = np.array([(p.x, p.y) for p in s])
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) + np.eye(len(xy)) * 1e9
    assert d.min() >= 100.0  # spread out
    assert all(maps["class_array"][p.row, p.col] != 255 for p in s)  # never on nodata
    # the GeoPackage: ranked, with the predicted class and a status to walk through
    from osgeo import ogr

    ds = ogr.Open(result.output)
    layer = ds.GetLayerByName("to_label")
    feats = list(layer)
    assert [f.GetField("rank") for f in feats] == list(range(1, 13))
    assert {f.GetField("status") for f in feats} == {"to label"}
    assert abs(feats[0].GetGeometryRef().GetX() - s[0].x) < 1e-6


def test_margin_gives_the_same_points_as_entropy_here(maps):
    by_entropy = suggest_points(SuggestParams(maps["classes"], maps["entropy"], count=8, min_distance=50.0))
    by_margin = suggest_points(SuggestParams(maps["classes"], maps["margin"], measure="margin", count=8, min_distance=50.0))
    assert [(p.row, p.col) for p in by_entropy.suggestions] == [(p.row, p.col) for p in by_margin.suggestions]


def test_class_share_reaches_the_rare_class_and_region_limits(maps, tmp_path):
    # without a share, class 2 (the right strip) gets only what the ramp gives it; with share 1.0 half the
    # points go to each predicted class
    shared = suggest_points(SuggestParams(maps["classes"], maps["entropy"], count=10, min_distance=30.0, class_share=1.0)).suggestions
    assert sum(p.predicted_id == 1 for p in shared) == 5 and sum(p.predicted_id == 2 for p in shared) == 5
    # inside the region only (the left third), and never near an existing label
    x0, y0 = ORIGIN
    region = f"POLYGON(({x0} {y0},{x0 + 200} {y0},{x0 + 200} {y0 - 600},{x0} {y0 - 600},{x0} {y0}))"
    hot = (x0 + 105.0, y0 - 105.0)
    inside = suggest_points(
        SuggestParams(maps["classes"], maps["entropy"], count=6, min_distance=40.0, region_wkt=region, existing_xy=[hot])
    ).suggestions
    assert len(inside) == 6 and all(p.col < 20 for p in inside)
    assert all(np.hypot(p.x - hot[0], p.y - hot[1]) >= 40.0 for p in inside)


def test_automatic_distance_and_clear_errors(maps, tmp_path):
    result = suggest_points(SuggestParams(maps["classes"], maps["entropy"], count=16))
    assert result.min_distance == pytest.approx(0.5 * PIXEL * np.sqrt(result.candidates / 16))
    assert len(result.suggestions) == 16
    crowded = suggest_points(SuggestParams(maps["classes"], maps["entropy"], count=50, min_distance=250.0))
    assert len(crowded.suggestions) < 50 and "apart" in crowded.warnings[0]
    with pytest.raises(GeoDLError, match="measure"):
        suggest_points(SuggestParams(maps["classes"], maps["entropy"], measure="variance"))
    x0, y0 = ORIGIN
    far = f"POLYGON(({x0 - 900} {y0},{x0 - 800} {y0},{x0 - 800} {y0 - 100},{x0 - 900} {y0}))"
    with pytest.raises(GeoDLError, match="region"):
        suggest_points(SuggestParams(maps["classes"], maps["entropy"], region_wkt=far))


def test_select_points_is_seeded_and_breaks_ties_without_row_bias():
    flat = np.ones((30, 30))
    a = select_points(flat, np.ones((30, 30), np.uint8), np.ones((30, 30), bool), 5, 0.0, 0.0, seed=1)
    b = select_points(flat, np.ones((30, 30), np.uint8), np.ones((30, 30), bool), 5, 0.0, 0.0, seed=1)
    assert (a == b).all() and a[:, 0].max() > 2  # not simply the first row
