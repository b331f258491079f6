"""The local pipeline through the Processing algorithms: in-process on the real Landsat scene (what `make
demo` runs), and each algorithm through qgis_process.bin from the packaged dist/geodl.zip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import POLYGONS, REPO

sys.path.insert(0, str(REPO / "scripts"))


@pytest.fixture
def geodl_provider(qgis_processing):
    from qgis.core import QgsApplication

    import geodl_plugin

    plugin = geodl_plugin.classFactory(None)
    plugin.initProcessing()
    yield plugin.provider
    QgsApplication.processingRegistry().removeProvider("geodl")


@pytest.mark.slow
def test_demo_pipeline_on_the_real_scene(geodl_provider, sample_scene, tmp_path):
    import demo
    import rasterio

    metrics = demo.run(sample_scene.parent, tmp_path, epochs=80)
    assert metrics["overall_accuracy"] >= 0.9
    for name in ("classified.tif", "confidence.tif", "model.geodl", "metrics.json", "demo.qgz", "map.png",
                 "classified.qml", "confusion_matrix.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    with rasterio.open(tmp_path / "classified.tif") as ds, rasterio.open(sample_scene) as src:
        assert ds.transform == src.transform and ds.crs == src.crs
        present = set(np.unique(ds.read(1, out_shape=(ds.height // 4, ds.width // 4))).tolist()) - {255}
    assert present == {1, 2, 3, 4}, "each of the four classes appears on the map"
    with zipfile.ZipFile(tmp_path / "demo.qgz") as z:
        project = z.read(next(n for n in z.namelist() if n.endswith(".qgs"))).decode()
    assert "paletted" in project and "developed" in project


def _qgis_process(args, env):
    return subprocess.run(["/usr/bin/qgis_process.bin", *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_packaged_plugin_runs_every_algorithm_in_qgis_process(sample_scene, tmp_path):
    subprocess.run(["make", "-s", "package"], cwd=REPO, check=True, capture_output=True)
    plugins = tmp_path / "plugins"
    with zipfile.ZipFile(REPO / "dist" / "geodl.zip") as z:
        assert {n.split("/")[0] for n in z.namelist()} == {"geodl"}
        z.extractall(plugins)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QGIS_PLUGINPATH": str(plugins),
           "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "profile"), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    assert _qgis_process(["plugins", "enable", "geodl"], env).returncode == 0
    listing = _qgis_process(["list"], env).stdout
    for alg in ("samplepoints", "extractsamples", "train", "evaluate", "predict"):
        assert f"geodl:{alg}" in listing

    def run(alg, **params):
        args = ["run", f"geodl:{alg}", "--json", "--"] + [f"{k}={v}" for k, v in params.items()]
        done = _qgis_process(args, env)
        assert done.returncode == 0, f"geodl:{alg} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return json.loads(done.stdout[done.stdout.index("{"):])["results"]

    run("samplepoints", INPUT=POLYGONS, CLASS_FIELD="name", PER_CLASS=60, MIN_DISTANCE=30, OUTPUT=tmp_path / "p.gpkg")
    run("extractsamples", INPUT=sample_scene, LABELS=tmp_path / "p.gpkg", CLASS_FIELD="class_name", NODATA=0,
        OUTPUT=tmp_path / "s.tfrecord.gz")
    trained = run("train", SAMPLES=tmp_path / "s.tfrecord.gz", EPOCHS=40, BATCH_SIZE=16, SPLIT=1,
                  OUTPUT=tmp_path / "m.geodl", OUTPUT_TEST_SAMPLES=tmp_path / "t.tfrecord.gz")
    assert trained["OVERALL_ACCURACY"] > 0.8
    evaluated = run("evaluate", MODEL=tmp_path / "m.geodl", SAMPLES=tmp_path / "t.tfrecord.gz",
                    OUTPUT=tmp_path / "r.json")
    assert evaluated["OVERALL_ACCURACY"] == pytest.approx(trained["OVERALL_ACCURACY"])
    run("predict", INPUT=sample_scene, MODEL=tmp_path / "m.geodl", NODATA=0, EXTENT="740000,745000,-2810000,-2800000",
        OUTPUT=tmp_path / "c.tif", OUTPUT_CONFIDENCE=tmp_path / "conf.tif")
    assert (tmp_path / "c.tif").exists() and (tmp_path / "c.qml").exists()
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]
