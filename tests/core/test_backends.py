"""Keras' torch backend as a second engine: the pure-Keras families (pixel DNN, U-Net) train and predict on
TensorFlow and on torch (CPU) from the same samples, reach the same quality on a scene with a known truth map,
and a model file written on one backend predicts on the other. Keras fixes its backend once per process, so
each backend runs in its own subprocess (``KERAS_BACKEND``); the torch one cannot import TensorFlow, as in a
runtime that has only torch. ``test_backend_families.py`` does the same for the temporal and regression
families."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

RUN = r"""
import json, os, sys
if os.environ["KERAS_BACKEND"] == "torch":  # as a torch-only runtime: TensorFlow cannot be imported
    from tests.core.no_tensorflow import block_tensorflow
    block_tensorflow()
import numpy as np, rasterio, keras
from geodl_plugin.core.data.labels import read_labels
from geodl_plugin.core.data.samples import extract_samples
from geodl_plugin.core.io.raster import raster_info
from geodl_plugin.core.families import predict_raster, train_model
from geodl_plugin.core.models.family import UNetParams
from geodl_plugin.core.predict.raster_prediction import PredictParams
from geodl_plugin.core.train.trainer import TrainParams

scene, points, out, other = sys.argv[1:5]
keras.utils.set_random_seed(0)
labels = read_labels(points, "class_name", target_crs_wkt=raster_info(scene).crs_wkt)
backend = keras.backend.backend()
report = {"backend": backend}
for k in (1, 9):
    extract_samples([scene], labels, f"{out}/{backend}_p{k}.tfrecord.gz", k)
dnn = TrainParams([f"{out}/{backend}_p1.tfrecord.gz"], f"{out}/{backend}_dnn.geodl", epochs=30, seed=0)
unet = TrainParams([f"{out}/{backend}_p9.tfrecord.gz"], f"{out}/{backend}_unet.geodl", family="unet",
                   options=UNetParams(depth=1, base_filters=8), epochs=25, batch_size=16, seed=1)
for name, params in (("dnn", dnn), ("unet", unet)):
    result = train_model(params)
    report[name + "_accuracy"] = result.metrics.overall_accuracy
    predict_raster(PredictParams([scene], params.output, f"{out}/{backend}_{name}.tif"))
    if other:  # the model file the other backend wrote
        predict_raster(PredictParams([scene], f"{out}/{other}_{name}.geodl", f"{out}/{backend}_from_{other}_{name}.tif"))
print("REPORT " + json.dumps(report))
"""


def _run(backend: str, scene, out, other: str = "") -> dict:
    # One OpenMP thread: torch's pool spin-waits on a busy machine (see test_backend_families.py's _env).
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(scene.image), str(scene.points), str(out), other],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, f"{backend} run failed:\n{done.stderr[-4000:]}"
    return json.loads(lines[-1][len("REPORT ") :])


def _read(path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(1)


def _accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    return float((pred == truth).mean())


@pytest.mark.slow
def test_dnn_and_unet_train_and_predict_on_tensorflow_and_torch(tmp_path):
    from tests.core.test_segmentation import synthetic

    scene = synthetic.make_scene(tmp_path / "scene", size=64, points_per_class=30, seed=0, noise=0.6)
    tf_report = _run("tensorflow", scene, tmp_path)
    torch_report = _run("torch", scene, tmp_path, other="tensorflow")  # also predicts TensorFlow's files
    assert tf_report["backend"] == "tensorflow" and torch_report["backend"] == "torch"
    truth = scene.truth_array
    for family in ("dnn", "unet"):
        on_tf, on_torch = _read(tmp_path / f"tensorflow_{family}.tif"), _read(tmp_path / f"torch_{family}.tif")
        acc_tf, acc_torch = _accuracy(on_tf, truth), _accuracy(on_torch, truth)
        print(f"\n{family}: map accuracy TensorFlow {acc_tf:.3f}, torch {acc_torch:.3f}")
        assert acc_tf > 0.6 and acc_torch > 0.6, (family, acc_tf, acc_torch)
        assert abs(acc_tf - acc_torch) < 0.12, (family, acc_tf, acc_torch)  # same model, same data: same quality
        assert abs(tf_report[f"{family}_accuracy"] - torch_report[f"{family}_accuracy"]) < 0.15
        # One model file, two engines: TensorFlow's file predicted on torch gives TensorFlow's map.
        crossed = _read(tmp_path / f"torch_from_tensorflow_{family}.tif")
        assert (crossed == on_tf).mean() > 0.995, family
