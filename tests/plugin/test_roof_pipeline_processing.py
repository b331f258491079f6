"""geodl:mosaic, geodl:flatten, geodl:summarize and the regression families through the Processing framework
and through qgis_process.bin (the packaged plugin)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geodl_plugin.core.families import FAMILIES as _FAMILIES
from tests.core.test_mosaic import _write

FAMILIES = [f.value for f in _FAMILIES]  # the order of geodl:train's model list


def _tiles(tmp_path):
    scene = np.random.default_rng(5).integers(1, 5000, (3, 20, 30)).astype(np.uint16)
    folder = tmp_path / "tiles"
    folder.mkdir()
    _write(folder / "a.tif", scene[:, :, :16], nodata=0)
    _write(folder / "b.tif", scene[:, :, 16:], col=16, nodata=0)
    return scene, folder


def test_mosaic_algorithm_names_a_misfit(geodl_provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    scene, folder = _tiles(tmp_path)
    out = processing.run("geodl:mosaic", {"FOLDER": str(folder), "FORMAT": 3, "OUTPUT": str(tmp_path / "m.tif")})
    import rasterio

    with rasterio.open(out["OUTPUT"]) as ds:
        np.testing.assert_array_equal(ds.read(), scene)
    _write(tmp_path / "odd.tif", scene[:, :4, :4], crs="EPSG:4326")
    with pytest.raises(QgsProcessingException, match="odd.tif"):
        processing.run("geodl:mosaic", {"FOLDER": str(folder), "INPUT": [str(tmp_path / "odd.tif")], "OUTPUT": str(tmp_path / "bad.tif")})


def test_summarize_algorithm_per_class_and_areas(geodl_provider, tmp_path):
    import processing

    from tests.core.synthetic import write_raster
    from tests.core.test_flatten import _polygons

    data = np.zeros((2, 10, 20), np.uint16)
    data[:, :, :10] = 100 + np.arange(10, dtype=np.uint16)
    data[:, :, 10:] = 900 + np.arange(10, dtype=np.uint16)
    raster = write_raster(tmp_path / "r.tif", data)
    polys = _polygons(tmp_path / "p.gpkg", [(0, 0, 10, 10), (10, 0, 20, 10)], ["dark", "bright"])
    out = processing.run(
        "geodl:summarize",
        {
            "INPUT": [str(raster)],
            "LABELS": str(polys),
            "CLASS_FIELD": "name",
            "OUTPUT": str(tmp_path / "s.json"),
            "PLOT": str(tmp_path / "s.png"),
        },
    )
    assert out["MIN_JM"] > 1.9
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["classes"]["dark"]["bands"]["B1"]["mean"] == pytest.approx(104.5)
    classes = write_raster(tmp_path / "c.tif", (data[:1] > 500).astype(np.uint8) + 1, nodata=255)
    processing.run("geodl:summarize", {"INPUT": [str(classes)], "MODE": 1, "OUTPUT": str(tmp_path / "a.json")})
    areas = json.loads((tmp_path / "a.json").read_text())["classes"]
    assert [(a["id"], a["area_ha"]) for a in areas] == [(1, pytest.approx(9.0)), (2, pytest.approx(9.0))]


@pytest.mark.slow
def test_roof_pipeline_in_qgis_process(qgis_process, tmp_path):
    import rasterio

    scene, folder = _tiles(tmp_path)
    run = qgis_process.run
    mosaic = run("mosaic", FOLDER=folder, OUTPUT=tmp_path / "m.vrt")["OUTPUT"]
    with rasterio.open(mosaic) as ds:
        np.testing.assert_array_equal(ds.read(), scene)
    table = run("flatten", INPUT=mosaic, OUTPUT=tmp_path / "t.csv")["OUTPUT"]
    rows = np.loadtxt(table, delimiter=",", skiprows=1)
    r, c = rows[:, 4].astype(int), rows[:, 5].astype(int)
    np.testing.assert_array_equal(rows[:, 6:9].T, scene[:, r, c])
    summary = run("summarize", INPUT=mosaic, OUTPUT=tmp_path / "s.json", PLOT=tmp_path / "s.png")
    stats = json.loads((tmp_path / "s.json").read_text())["band_stats"]
    assert stats["B1"]["mean"] == pytest.approx(scene[0].astype(np.float64).mean())
    assert summary["PLOT"] and (tmp_path / "s.png").exists()

    # Regression: numeric targets → samples → random-forest regressor → value + spread rasters → evaluate.
    from tests.core.synthetic import regression_scene

    image, points, truth = regression_scene(tmp_path / "reg", size=48, n_points=300, seed=2)
    run("extractsamples", INPUT=image, LABELS=points, CLASS_FIELD="roof_pct", FIELD_KIND=1, OUTPUT=tmp_path / "r.tfrecord.gz")
    trained = run(
        "train",
        SAMPLES=tmp_path / "r.tfrecord.gz",
        MODEL_TYPE=FAMILIES.index("rf_regression"),
        FOREST_REGRESSION_N_TREES=40,
        SPLIT=1,
        TEST_FRACTION=0.25,
        OUTPUT=tmp_path / "r.geodl",
        OUTPUT_TEST_SAMPLES=tmp_path / "rt.tfrecord.gz",
    )
    assert trained["R2"] >= 0.95 and trained["OVERALL_ACCURACY"] is None
    run("predict", INPUT=image, MODEL=tmp_path / "r.geodl", OUTPUT=tmp_path / "v.tif", OUTPUT_CONFIDENCE=tmp_path / "spread.tif")
    evaluated = run(
        "evaluate",
        MODEL=tmp_path / "r.geodl",
        SAMPLES=tmp_path / "rt.tfrecord.gz",
        OUTPUT=tmp_path / "re.json",
        OUTPUT_PLOT=tmp_path / "scatter.png",
    )
    assert evaluated["R2"] == pytest.approx(trained["R2"]) and (tmp_path / "scatter.png").exists()
    with rasterio.open(tmp_path / "v.tif") as v, rasterio.open(truth) as t:
        predicted, expected = v.read(1).astype(np.float64), t.read(1).astype(np.float64)
    assert 1 - ((predicted - expected) ** 2).sum() / ((expected - expected.mean()) ** 2).sum() >= 0.9  # map R²
    assert 'type="singlebandpseudocolor"' in (tmp_path / "v.qml").read_text()
    assert (tmp_path / "spread.tif").exists() and not [p for p in tmp_path.iterdir() if ".part" in p.name]
