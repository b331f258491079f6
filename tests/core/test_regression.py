"""Regression on the seeded synthetic scene whose target is a known smooth function of the spectra: samples
from points, the forest (plain arrays, spread from its trees) and the pixel DNN, scored on held-out points."""

from __future__ import annotations

import numpy as np
import pytest

from geodl_plugin.core.data.labels import read_targets
from geodl_plugin.core.data.target_samples import extract_target_samples, load_target_samples
from geodl_plugin.core.evaluate.regression_metrics import plot_predicted_vs_observed, regression_report
from geodl_plugin.core.models.regression import ForestRegressor
from geodl_plugin.core.runtime.errors import GeoDLError
from geodl_plugin.core.train.regression_training import fit_dnn, fit_forest, score_regression, split_targets
from tests.core.synthetic import regression_scene


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("regression")
    image, points, _ = regression_scene(folder, size=64, n_points=500, seed=0)
    targets = read_targets(points, "roof_pct")
    report = extract_target_samples([image], targets, folder / "s.tfrecord.gz")
    assert report.count == 500 and report.target == "roof_pct"
    return load_target_samples(folder / "s.tfrecord.gz")


def test_regression_metrics_by_hand():
    r = regression_report(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 3.0, 3.5]))
    assert r["rmse"] == pytest.approx(np.sqrt(0.125)) and r["mae"] == pytest.approx(0.25)
    assert r["bias"] == pytest.approx(0.0) and r["r2"] == pytest.approx(1 - 0.5 / 5.0)


def test_forest_regressor_arrays_match_scikit_learn():
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = x[:, 0] * 2 + np.sin(x[:, 1])
    rf = RandomForestRegressor(n_estimators=12, max_depth=8, random_state=0).fit(x, y)
    forest = ForestRegressor.from_arrays(ForestRegressor.from_sklearn(rf).to_arrays())
    mean, spread = forest.predict(x[:50])
    np.testing.assert_allclose(mean, rf.predict(x[:50]), rtol=1e-5, atol=1e-5)
    per_tree = np.stack([t.predict(x[:50]) for t in rf.estimators_], axis=1)
    np.testing.assert_allclose(spread, per_tree.std(axis=1), rtol=1e-4, atol=1e-5)


def test_class_samples_are_refused_as_targets(samples, tmp_path):
    from tests.core.synthetic import write_points

    pts = write_points(tmp_path / "p.gpkg", [(0, 0)], ["a"], field="name")
    with pytest.raises(GeoDLError, match="holds text"):
        read_targets(pts, "name")


@pytest.mark.slow
def test_forest_and_dnn_reach_r2_095_on_held_out_points(samples, tmp_path):
    train_idx, test_idx = split_targets(samples, 0.25, blocked=False, block_size=0, seed=1)
    train, test = samples.subset(train_idx), samples.subset(test_idx)
    forest = fit_forest(train, n_trees=50, max_depth=20, min_samples_leaf=1, seed=0)
    rf = score_regression(forest, test)
    model, history, n_val = fit_dnn(train, (64, 64), 0.0, epochs=40, batch_size=64, learning_rate=1e-2,
                                    validation_fraction=0.15, patience=10, seed=0)
    dnn = score_regression(model, test)
    print(f"held-out n={len(test)}: forest R² {rf['r2']:.3f} RMSE {rf['rmse']:.2f}; "
          f"DNN R² {dnn['r2']:.3f} RMSE {dnn['rmse']:.2f} ({len(history['loss'])} epochs)")
    assert rf["r2"] >= 0.95 and dnn["r2"] >= 0.95
    assert abs(rf["bias"]) < 1.0 and abs(dnn["bias"]) < 1.0
    _, spread = forest.predict(test.x)
    assert spread.shape == (len(test),) and (spread >= 0).all() and spread.mean() > 0
    plot_predicted_vs_observed(test.y, forest.predict(test.x)[0], tmp_path / "scatter.png", "roof_pct")
    assert (tmp_path / "scatter.png").read_bytes()[:4] == b"\x89PNG"


def test_forest_map_and_spread_through_the_shared_writer(samples, tmp_path):
    """The forest over the whole scene: the value raster tracks the truth raster (R² ≥ 0.95 over every pixel),
    the spread raster is written beside it, nodata where the input is nodata; nothing half-written."""
    import rasterio

    from geodl_plugin.core.models.model_file import ModelBundle
    from geodl_plugin.core.predict.raster_prediction import PredictParams
    from geodl_plugin.core.predict.regression_prediction import VALUE_NODATA, predict_regression
    from geodl_plugin.core.runtime.progress import Progress
    from tests.core.synthetic import regression_scene

    image, _, truth = regression_scene(tmp_path / "scene", size=64, n_points=10, seed=0)  # the same scene
    forest = fit_forest(samples, n_trees=30, max_depth=20, min_samples_leaf=1, seed=0)
    params = PredictParams([str(image)], "unused", str(tmp_path / "v.tif"), str(tmp_path / "s.tif"), block_size=32)
    from geodl_plugin.core.data.samples import stack_info

    infos = stack_info([image])
    with rasterio.open(image) as ds:
        transform = ds.transform
    result = predict_regression(params, ModelBundle({}, forest), infos, (0, 0, 64, 64), transform, None,
                                Progress(), [])
    with rasterio.open(tmp_path / "v.tif") as v, rasterio.open(tmp_path / "s.tif") as s, rasterio.open(truth) as t:
        values, spread, expected = v.read(1), s.read(1), t.read(1)
        assert v.nodata == VALUE_NODATA
    assert result.pixels == 64 * 64
    assert regression_report(expected.ravel(), values.ravel())["r2"] >= 0.95
    assert (spread > 0).mean() > 0.9
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]
