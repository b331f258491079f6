"""Summarize: statistics equal NumPy's over the same pixels; Jeffries–Matusita finds the overlapping pair;
class areas of a classified map in ha and %."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geodl_plugin.core.data.classes import ClassInfo, ClassTable
from geodl_plugin.core.data.labels import read_labels
from geodl_plugin.core.evaluate.summary import bhattacharyya, jeffries_matusita, summarize_bands, summarize_classified
from geodl_plugin.core.runtime.errors import GeoDLError
from tests.core.synthetic import write_raster
from tests.core.test_flatten import _polygons


@pytest.fixture
def scene(tmp_path):
    """Three classes in three column bands: 'roof' bright; 'road' and 'soil' drawn from one distribution."""
    rng = np.random.default_rng(2)
    data = np.empty((3, 30, 60), np.float32)
    data[:, :, :20] = rng.normal(3000, 80, (3, 30, 20))
    data[:, :, 20:] = rng.normal(1000, 80, (3, 30, 40))
    data[0, 0, 0] = -9999
    raster = write_raster(tmp_path / "s.tif", data, nodata=-9999)
    polys = _polygons(tmp_path / "p.gpkg", [(0, 0, 20, 30), (20, 0, 40, 30), (40, 0, 60, 30)], ["roof", "road", "soil"])
    return raster, polys, data


def test_band_statistics_and_separability(scene, tmp_path):
    raster, polys, data = scene
    labels = read_labels(polys, "name")
    report = summarize_bands([raster], tmp_path / "s.json", tmp_path / "s.png", labels=labels, bins=32, block=16)
    valid = data.reshape(3, -1)[:, 1:]  # all but the nodata pixel (0, 0)
    stats = report["band_stats"]["B2"]
    assert stats["count"] == valid.shape[1] and sum(stats["histogram"]) == valid.shape[1]
    assert stats["mean"] == pytest.approx(valid[1].astype(np.float64).mean(), rel=1e-9)
    assert stats["std"] == pytest.approx(valid[1].astype(np.float64).std(ddof=1), rel=1e-6)
    assert stats["min"] == valid[1].min() and stats["max"] == valid[1].max()
    roof = report["classes"]["roof"]
    assert roof["pixels"] == 20 * 30 - 1
    assert roof["bands"]["B1"]["mean"] == pytest.approx(float(data[0, :, :20].ravel()[1:].astype(np.float64).mean()))
    jm = {(p["a"], p["b"]): p["jeffries_matusita"] for p in report["separability"]["pairs"]}
    assert jm[("road", "roof")] > 1.99 and jm[("roof", "soil")] > 1.99
    assert jm[("road", "soil")] < 0.1
    assert any("'road' and 'soil' overlap" in w for w in report["warnings"])
    assert json.loads((tmp_path / "s.json").read_text())["bins"] == 32
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_bhattacharyya_of_known_gaussians():
    """Equal covariances σ²I: B = |d|²/(8σ²)."""
    d = np.array([2.0, 0.0])
    b = bhattacharyya(np.zeros(2), np.eye(2), d, np.eye(2))
    assert b == pytest.approx(0.5) and jeffries_matusita(b) == pytest.approx(2 * (1 - np.exp(-0.5)))


def test_class_areas_of_a_classified_map(tmp_path):
    classes = np.zeros((1, 10, 20), np.uint8) + 255
    classes[0, :, :5] = 1
    classes[0, :4, 5:] = 2
    path = write_raster(tmp_path / "c.tif", classes, nodata=255)
    table = ClassTable([ClassInfo(1, "roof", "#d7301f"), ClassInfo(2, "tree", "#1b7837")])
    report = summarize_classified(path, tmp_path / "a.json", tmp_path / "a.png", classes=table)
    items = {i["name"]: i for i in report["classes"]}
    assert items["roof"]["pixels"] == 50 and items["roof"]["area_ha"] == pytest.approx(50 * 0.09)
    assert items["tree"]["area_ha"] == pytest.approx(60 * 0.09)
    assert items["roof"]["percent"] == pytest.approx(100 * 50 / 110)
    assert (tmp_path / "a.png").exists()
    with pytest.raises(GeoDLError, match="integer class ids"):
        summarize_classified(write_raster(tmp_path / "f.tif", classes.astype(np.float32)), tmp_path / "f.json")


def test_class_areas_in_degrees_follow_the_sphere(tmp_path):
    """0.01° pixels at the equator are ~1.11 km square (123.6 ha); at 60° half as wide."""
    import rasterio
    from rasterio.transform import from_origin

    for lat, expected in ((0.005, 123.6), (60.005, 61.8)):
        path = tmp_path / f"g{lat}.tif"
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=1,
            height=1,
            count=1,
            dtype="uint8",
            crs="EPSG:4326",
            transform=from_origin(10.0, lat, 0.01, 0.01),
        ) as ds:
            ds.write(np.ones((1, 1, 1), np.uint8))
        report = summarize_classified(path, tmp_path / "g.json")
        assert report["classes"][0]["name"] == "class 1"
        assert report["area_ha"] == pytest.approx(expected, rel=0.01)
