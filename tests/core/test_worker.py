"""TensorFlow work in a worker process: results, user errors, cancel without partial output, and the
persistent worker that keeps TensorFlow and the model warm between previews."""

from __future__ import annotations

import time

import pytest

from geodl_plugin.core.data.labels import read_labels
from geodl_plugin.core.data.samples import extract_samples
from geodl_plugin.core.families import predict_raster, train_model
from geodl_plugin.core.io.raster import raster_info
from geodl_plugin.core.predict.raster_prediction import PredictParams, PredictResult
from geodl_plugin.core.runtime.errors import Cancelled, GeoDLError
from geodl_plugin.core.runtime.progress import Progress
from geodl_plugin.core.runtime.worker import Worker, run_in_worker
from geodl_plugin.core.train.trainer import TrainParams, TrainResult
from tests.core.synthetic import grid_points, two_class_scene, write_points


@pytest.fixture(scope="module")
def scene_and_samples(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("worker")
    raster = two_class_scene(tmp / "scene.tif", size=128)
    xy, names = grid_points(size=128, step=6)
    labels = read_labels(write_points(tmp / "p.gpkg", xy, names), "name", target_crs_wkt=raster_info(raster).crs_wkt)
    report = extract_samples([raster], labels, tmp / "s.tfrecord.gz")
    return tmp, raster, report.path


@pytest.mark.slow
def test_training_in_a_worker_streams_metrics_and_returns_the_result(scene_and_samples):
    tmp, _, samples = scene_and_samples
    epochs = []
    result = run_in_worker(
        train_model,
        TrainParams(samples=[samples], output=str(tmp / "m.geodl"), epochs=4),
        Progress(on_metrics=lambda m: epochs.append(m["epoch"])),
    )
    assert isinstance(result, TrainResult) and result.metrics.overall_accuracy > 0.9
    assert epochs == [1, 2, 3, 4]
    with pytest.raises(GeoDLError, match="does not exist"):
        run_in_worker(train_model, TrainParams(samples=[str(tmp / "missing.tfrecord.gz")], output=str(tmp / "x.geodl")))


@pytest.mark.slow
def test_cancel_reaches_the_worker_and_nothing_is_written(scene_and_samples):
    tmp, _, samples = scene_and_samples
    epochs: list[int] = []  # the user presses Cancel once the first epoch is reported
    with pytest.raises(Cancelled):
        run_in_worker(
            train_model,
            TrainParams(samples=[samples], output=str(tmp / "c.geodl"), epochs=10_000),
            Progress(on_metrics=lambda m: epochs.append(m["epoch"]), is_cancelled=lambda: bool(epochs)),
        )
    assert 1 <= len(epochs) <= 3  # stopped within a batch or two of the cancel, not after 10,000 epochs
    assert not [p for p in tmp.iterdir() if p.name.startswith(("c.geodl", ".c.geodl"))]


@pytest.mark.slow
def test_persistent_worker_keeps_the_model_warm_and_recovers(scene_and_samples):
    tmp, raster, samples = scene_and_samples
    run_in_worker(train_model, TrainParams(samples=[samples], output=str(tmp / "p.geodl"), epochs=2))
    worker = Worker()
    try:
        seconds, pids = [], []
        for n in range(2):
            t = time.perf_counter()
            out = worker.call(
                predict_raster, PredictParams([str(raster)], str(tmp / "p.geodl"), str(tmp / f"pred{n}.tif"), overviews=False)
            )
            seconds.append(time.perf_counter() - t)
            pids.append(worker._proc.pid)
            assert isinstance(out, PredictResult) and (tmp / f"pred{n}.tif").exists()
        assert pids[0] == pids[1], "the same process served both jobs"
        assert seconds[1] < seconds[0] / 2, f"the second job reuses TensorFlow and the model: {seconds}"
        worker._proc.kill()  # a crashed worker is replaced on the next call
        worker._proc.wait()
        worker.call(predict_raster, PredictParams([str(raster)], str(tmp / "p.geodl"), str(tmp / "pred2.tif"), overviews=False))
        assert (tmp / "pred2.tif").exists() and worker._proc.pid != pids[0]
    finally:
        worker.close()
