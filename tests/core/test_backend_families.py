"""Keras' torch backend as a second engine for the families ``test_backends.py`` does not cover: the temporal
family (bidirectional ConvGRU and ConvLSTM) and the pixel DNN regression train and predict on TensorFlow and on
torch (CPU) from the same samples, reach the same quality on seeded scenes with a known truth, and a model
file written on one backend predicts on the other with the same output. Each backend runs in its own
subprocess (``tests/core/backend_families_run.py``; Keras fixes its backend once per process); the torch
one runs with TensorFlow unimportable, as a torch-only runtime would.

The forest families (``rf``, ``rf_regression``) are not compared: they are scikit-learn trees stored as
arrays and predicted with NumPy, and never import Keras or either engine, which the last test checks; so the
backend cannot change them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))

from make_synthetic_series import make_series_scene  # noqa: E402

from tests.core.synthetic import regression_scene  # noqa: E402

TEMPORAL = ("temporal_gru", "temporal_lstm")


def _env(backend: str) -> dict:
    # One OpenMP thread: torch's pool spin-waits, and on a busy 2-core machine two threads trained the ConvGRU
    # 6× slower than one (141 s against 21.5 s measured here). TensorFlow's own pool ignores the setting.
    return dict(
        os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS="1"
    )


def _run(backend: str, samples: Path, out: Path, train: bool, other: str = "") -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.core.backend_families_run", str(samples), str(out), "train" if train else "skip", other],
        env=_env(backend),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, f"{backend} run failed:\n{done.stderr[-4000:]}"
    return json.loads(lines[-1][len("REPORT ") :])


def _read(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read()


def _r2(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(1.0 - ((truth - predicted) ** 2).sum() / ((truth - truth.mean()) ** 2).sum())


def _cut_samples(folder: Path) -> dict:
    """An 18-date series scene (two crops told apart only by timing, clouds as missing dates) and the
    regression scene, sampled once for both backends."""
    from geodl_plugin.core.data.labels import read_labels, read_targets
    from geodl_plugin.core.data.series import open_series
    from geodl_plugin.core.data.series_samples import extract_series_samples
    from geodl_plugin.core.data.target_samples import extract_target_samples

    series_scene = make_series_scene(folder / "series", size=32, n_points=60, seed=0)
    series = open_series(series_scene.rasters)
    labels = read_labels(series_scene.points, "class_name", target_crs_wkt=series.info.crs_wkt)
    extract_series_samples(series, labels, folder / "series.tfrecord.gz", patch_size=1)
    image, points, truth = regression_scene(folder / "regression", size=48, n_points=300, seed=0)
    extract_target_samples([image], read_targets(points, "roof_pct"), folder / "regression.tfrecord.gz")
    scenes = {"series": [str(r) for r in series_scene.rasters], "regression": [str(image)]}
    (folder / "scenes.json").write_text(json.dumps(scenes))
    return {"series": series_scene.truth_array, "regression": _read(truth)[0]}


@pytest.mark.slow
def test_temporal_and_regression_train_and_predict_on_tensorflow_and_torch(tmp_path):
    samples, out = tmp_path / "samples", tmp_path / "out"
    samples.mkdir(), out.mkdir()
    truth = _cut_samples(samples)
    torch_report = _run("torch", samples, out, train=True)
    tf_report = _run("tensorflow", samples, out, train=True, other="torch")  # also maps with torch's files
    back = _run("torch", samples, out, train=False, other="tensorflow")  # and TensorFlow's files on torch
    print(f"\nTensorFlow {tf_report}\ntorch {torch_report}")
    assert tf_report["backend"] == "tensorflow" and torch_report["backend"] == back["backend"] == "torch"

    for name in TEMPORAL:
        on_tf, on_torch = _read(out / f"tensorflow_{name}.tif")[0], _read(out / f"torch_{name}.tif")[0]
        acc_tf, acc_torch = float((on_tf == truth["series"]).mean()), float((on_torch == truth["series"]).mean())
        print(f"{name}: map accuracy TensorFlow {acc_tf:.3f}, torch {acc_torch:.3f}")
        assert acc_tf > 0.9 and acc_torch > 0.9, (name, acc_tf, acc_torch)  # chance is about 0.4
        assert abs(acc_tf - acc_torch) < 0.06, (name, acc_tf, acc_torch)  # same network, same samples
        assert abs(tf_report[name]["overall_accuracy"] - torch_report[name]["overall_accuracy"]) < 0.15, name
        _same_output(out, name, "tensorflow", "torch")
        _same_output(out, name, "torch", "tensorflow")

    name = "dnn_regression"
    value_tf, value_torch = _read(out / f"tensorflow_{name}.tif")[0], _read(out / f"torch_{name}.tif")[0]
    r2_tf, r2_torch = _r2(truth["regression"], value_tf), _r2(truth["regression"], value_torch)
    print(f"{name}: map R² TensorFlow {r2_tf:.3f}, torch {r2_torch:.3f}")
    assert r2_tf > 0.9 and r2_torch > 0.9, (r2_tf, r2_torch)
    assert abs(r2_tf - r2_torch) < 0.05, (r2_tf, r2_torch)
    _same_output(out, name, "tensorflow", "torch")
    _same_output(out, name, "torch", "tensorflow")


def _same_output(out: Path, name: str, writer: str, reader: str) -> None:
    """The model file ``writer`` trained, predicted on ``reader``, gives ``writer``'s own output.

    Same weights, same float32 arithmetic in another library: the outputs differ only by rounding (summation
    order, fused kernels). Measured here: probabilities within 7.5e-6 (ConvLSTM; ConvGRU 5e-7), regression
    values within 1.5e-5 units (one or two float32 steps at values near 80). Allowed: 1e-4 in probability and
    1e-3 units, still far below what any retraining changes (the two backends' own models differ by whole
    percent and tenths of units). A class may differ only where the two best probabilities tie within the
    probability tolerance."""
    own, crossed = _read(out / f"{writer}_{name}.tif"), _read(out / f"{reader}_from_{writer}_{name}.tif")
    if not name.startswith("temporal"):
        np.testing.assert_allclose(crossed, own, atol=1e-3, err_msg=f"{name}: {writer}'s file on {reader}")
        return
    probs, crossed_probs = _read(out / f"{writer}_{name}_probs.tif"), _read(out / f"{reader}_from_{writer}_{name}_probs.tif")
    np.testing.assert_allclose(crossed_probs, probs, atol=1e-4, err_msg=f"{name}: {writer}'s file on {reader}")
    top_two = np.sort(probs, axis=0)[-2:]
    differ = own[0] != crossed[0]
    assert (top_two[1] - top_two[0])[differ].max(initial=0.0) < 2e-4, (name, writer, reader, int(differ.sum()))


FOREST = r"""
import sys
from geodl_plugin.core.families import predict_raster, train_model
from geodl_plugin.core.predict.raster_prediction import PredictParams
from geodl_plugin.core.train.trainer import TrainParams

folder = sys.argv[1]
for family, scene in (("rf", "classes.tif"), ("rf_regression", "regression/scene.tif")):
    model = f"{folder}/{family}.geodl"
    train_model(TrainParams([f"{folder}/{family}.tfrecord.gz"], model, family=family, options={"n_trees": 10}))
    predict_raster(PredictParams([f"{folder}/{scene}"], model, f"{folder}/{family}.tif"))
print("LOADED", sorted(m for m in ("keras", "tensorflow", "torch", "jax") if m in sys.modules))
"""


@pytest.mark.slow
def test_forest_families_never_import_keras_or_an_engine(tmp_path):
    """Trained and mapped in a process whose Keras backend is torch: neither Keras nor an engine is loaded."""
    import rasterio

    from geodl_plugin.core.data.labels import read_labels, read_targets
    from geodl_plugin.core.data.samples import extract_samples
    from geodl_plugin.core.data.target_samples import extract_target_samples
    from tests.core.synthetic import grid_points, two_class_scene, write_points

    image = two_class_scene(tmp_path / "classes.tif", size=24, nodata_corner=False)
    write_points(tmp_path / "points.gpkg", *grid_points(size=24))
    extract_samples([image], read_labels(tmp_path / "points.gpkg", "name"), tmp_path / "rf.tfrecord.gz", 1)
    scene, points, _ = regression_scene(tmp_path / "regression", size=24, n_points=80, seed=0)
    extract_target_samples([scene], read_targets(points, "roof_pct"), tmp_path / "rf_regression.tfrecord.gz")
    done = subprocess.run(
        [sys.executable, "-c", FOREST, str(tmp_path)], env=_env("torch"), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "LOADED []" in done.stdout, done.stdout
    with rasterio.open(tmp_path / "rf.tif") as ds:
        classes = ds.read(1)
    assert (classes[:, :12] != classes[:, 12:]).all()  # the forest still maps: water left, tree right
