"""The local pipeline through the Processing algorithms: in-process on the real Landsat scene (what `make
demo` runs), and each algorithm through qgis_process.bin from the packaged dist/geodl.zip."""

from __future__ import annotations

import sys
import zipfile

import numpy as np
import pytest

from tests.conftest import POLYGONS, REPO

sys.path.insert(0, str(REPO / "scripts"))


@pytest.mark.slow
def test_demo_pipeline_on_the_real_scene(geodl_provider, sample_scene, tmp_path):
    import demo
    import rasterio

    metrics = demo.run(sample_scene.parent, tmp_path, epochs=80)
    assert metrics["overall_accuracy"] >= 0.9
    for name in (
        "classified.tif",
        "confidence.tif",
        "model.geodl",
        "metrics.json",
        "demo.qgz",
        "map.png",
        "classified.qml",
        "confusion_matrix.png",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    with rasterio.open(tmp_path / "classified.tif") as ds, rasterio.open(sample_scene) as src:
        assert ds.transform == src.transform and ds.crs == src.crs
        present = set(np.unique(ds.read(1, out_shape=(ds.height // 4, ds.width // 4))).tolist()) - {255}
    assert present == {1, 2, 3, 4}, "each of the four classes appears on the map"
    with zipfile.ZipFile(tmp_path / "demo.qgz") as z:
        project = z.read(next(n for n in z.namelist() if n.endswith(".qgs"))).decode()
    assert "paletted" in project and "developed" in project


@pytest.mark.slow
def test_packaged_plugin_runs_every_algorithm_in_qgis_process(qgis_process, sample_scene, tmp_path):
    assert qgis_process.top_folders == {"geodl"}
    listing = qgis_process.call(["list"]).stdout
    for alg in (
        "samplepoints",
        "extractsamples",
        "train",
        "evaluate",
        "predict",
        "rasterizemask",
        "chip",
        "eecomposite",
        "eeexporttraining",
        "eeexportimage",
        "eedownload",
        "eeseries",
        "eeseriesexport",
        "eeupload",
        "mosaic",
        "flatten",
        "summarize",
    ):
        assert f"geodl:{alg}" in listing
    run = qgis_process.run
    run("samplepoints", INPUT=POLYGONS, CLASS_FIELD="name", PER_CLASS=60, MIN_DISTANCE=30, OUTPUT=tmp_path / "p.gpkg")
    run(
        "extractsamples",
        INPUT=sample_scene,
        LABELS=tmp_path / "p.gpkg",
        CLASS_FIELD="class_name",
        NODATA=0,
        OUTPUT=tmp_path / "s.tfrecord.gz",
    )
    trained = run(
        "train",
        SAMPLES=tmp_path / "s.tfrecord.gz",
        EPOCHS=40,
        BATCH_SIZE=16,
        SPLIT=1,
        OUTPUT=tmp_path / "m.geodl",
        OUTPUT_TEST_SAMPLES=tmp_path / "t.tfrecord.gz",
    )
    assert trained["OVERALL_ACCURACY"] > 0.8
    evaluated = run("evaluate", MODEL=tmp_path / "m.geodl", SAMPLES=tmp_path / "t.tfrecord.gz", OUTPUT=tmp_path / "r.json")
    assert evaluated["OVERALL_ACCURACY"] == pytest.approx(trained["OVERALL_ACCURACY"])
    run(
        "predict",
        INPUT=sample_scene,
        MODEL=tmp_path / "m.geodl",
        NODATA=0,
        EXTENT="740000,745000,-2810000,-2800000",
        OUTPUT=tmp_path / "c.tif",
        OUTPUT_CONFIDENCE=tmp_path / "conf.tif",
    )
    assert (tmp_path / "c.tif").exists() and (tmp_path / "c.qml").exists()
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]
