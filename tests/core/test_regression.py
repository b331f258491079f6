"""Regression on the seeded synthetic scene whose target is a known smooth function of the spectra: samples
from points, both regression families through the one training skeleton, the model file, the shared
prediction writer (value + spread) and evaluation; R² ≥ 0.95 on held-out points."""

from __future__ import annotations

import numpy as np
import pytest

from geodl_plugin.core.data.labels import read_targets
from geodl_plugin.core.data.target_samples import extract_target_samples, load_target_samples
from geodl_plugin.core.evaluate.regression_metrics import plot_predicted_vs_observed, regression_report
from geodl_plugin.core.models.regression import ForestRegressor
from geodl_plugin.core.runtime.errors import GeoDLError
from tests.core.synthetic import regression_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("regression")
    image, points, truth = regression_scene(folder, size=64, n_points=500, seed=0)
    report = extract_target_samples([image], read_targets(points, "roof_pct"), folder / "s.tfrecord.gz")
    assert report.count == 500 and report.target == "roof_pct"
    return image, folder / "s.tfrecord.gz", truth


def test_regression_metrics_by_hand():
    r = regression_report(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 3.0, 3.5]))
    assert r.rmse == pytest.approx(np.sqrt(0.125)) and r.mae == pytest.approx(0.25)
    assert r.bias == pytest.approx(0.0) and r.r2 == pytest.approx(1 - 0.5 / 5.0)


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


def test_targets_and_samples_refuse_the_wrong_kind(scene, tmp_path):
    from tests.core.synthetic import write_points

    pts = write_points(tmp_path / "p.gpkg", [(0, 0)], ["a"], field="name")
    with pytest.raises(GeoDLError, match="holds text"):
        read_targets(pts, "name")
    samples = load_target_samples(scene[1])
    assert samples.x.shape == (500, 4) and samples.target == "roof_pct" and samples.xy is not None
    from geodl_plugin.core.data.samples import load_samples

    with pytest.raises(GeoDLError, match="no 'class' property"):
        load_samples(scene[1])


@pytest.mark.slow
def test_both_families_reach_r2_095_and_map_the_scene(scene, tmp_path):
    import rasterio

    from geodl_plugin.core.families import evaluate_model, predict_raster, train_model
    from geodl_plugin.core.models.model_file import read_manifest
    from geodl_plugin.core.predict.raster_prediction import PredictParams
    from geodl_plugin.core.predict.regression_prediction import VALUE_NODATA
    from geodl_plugin.core.train.trainer import TrainParams

    image, samples, truth = scene
    common = {"samples": [str(samples)], "split": "random", "test_fraction": 0.25, "seed": 1}
    rf = train_model(
        TrainParams(
            output=str(tmp_path / "rf.geodl"),
            family="rf_regression",
            options={"n_trees": 50},
            test_samples_output=str(tmp_path / "t.tfrecord.gz"),
            **common,
        )
    )
    dnn = train_model(
        TrainParams(
            output=str(tmp_path / "dnn.geodl"), family="dnn_regression", epochs=40, batch_size=64, learning_rate=1e-2, patience=10, **common
        )
    )
    print(
        f"held-out n={rf.n_test}: forest R² {rf.metrics.r2:.3f} RMSE {rf.metrics.rmse:.2f}; "
        f"DNN R² {dnn.metrics.r2:.3f} RMSE {dnn.metrics.rmse:.2f} ({len(dnn.history['loss'])} epochs)"
    )
    assert rf.n_test == dnn.n_test == 125
    assert rf.metrics.r2 >= 0.95 and dnn.metrics.r2 >= 0.95
    assert abs(rf.metrics.bias) < 1.0 and abs(dnn.metrics.bias) < 1.0
    manifest = read_manifest(tmp_path / "rf.geodl")
    assert manifest["mlm:tasks"] == ["regression"] and manifest["training"]["target"] == "roof_pct"
    assert evaluate_model(str(tmp_path / "dnn.geodl"), [str(tmp_path / "t.tfrecord.gz")]).r2 == pytest.approx(dnn.metrics.r2, abs=1e-6)

    predict_raster(PredictParams([str(image)], str(tmp_path / "rf.geodl"), str(tmp_path / "v.tif"), str(tmp_path / "s.tif"), block_size=32))
    with rasterio.open(tmp_path / "v.tif") as v, rasterio.open(tmp_path / "s.tif") as s, rasterio.open(truth) as t:
        values, spread, expected = v.read(1), s.read(1), t.read(1)
        assert v.nodata == VALUE_NODATA and v.dtypes[0] == "float32" and v.transform == t.transform
    assert regression_report(expected.ravel(), values.ravel()).r2 >= 0.95  # every pixel, not just samples
    assert (spread > 0).mean() > 0.9
    result = predict_raster(
        PredictParams([str(image)], str(tmp_path / "dnn.geodl"), str(tmp_path / "d.tif"), str(tmp_path / "no_spread.tif"))
    )
    assert not (tmp_path / "no_spread.tif").exists() and any("no spread" in w for w in result.warnings)
    with rasterio.open(tmp_path / "d.tif") as d:
        assert regression_report(expected.ravel(), d.read(1).ravel()).r2 >= 0.95
    held_out = load_target_samples(tmp_path / "t.tfrecord.gz")
    plot_predicted_vs_observed(held_out.y, held_out.y + 0.5, tmp_path / "scatter.png", "roof_pct")
    assert (tmp_path / "scatter.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_rasterised_polygon_targets(tmp_path):
    """Every pixel of a polygon becomes a sample carrying the polygon's number (e.g. a plot's biomass)."""
    from osgeo import ogr

    from tests.core.synthetic import write_raster
    from tests.core.test_flatten import _polygons

    data = np.arange(2 * 20 * 30, dtype=np.uint16).reshape(2, 20, 30)
    raster = write_raster(tmp_path / "r.tif", data)
    polys = _polygons(tmp_path / "p.gpkg", [(0, 0, 4, 3), (10, 5, 13, 9)], [12.5, 80.0], field="biomass", ftype=ogr.OFTReal)
    report = extract_target_samples([raster], read_targets(polys, "biomass"), tmp_path / "s.tfrecord.gz")
    assert report.count == 4 * 3 + 3 * 4 and (report.minimum, report.maximum) == (12.5, 80.0)
    samples = load_target_samples(tmp_path / "s.tfrecord.gz")
    assert sorted(set(samples.y.tolist())) == [12.5, 80.0] and int((samples.y == 12.5).sum()) == 12
    first = samples.x[samples.y == 12.5]
    assert sorted(first[:, 0].astype(int).tolist()) == sorted(data[0, :3, :4].ravel().tolist())
    few = _polygons(tmp_path / "few.gpkg", [(0, 0, 2, 2)], [1.0], field="v", ftype=ogr.OFTReal)
    with pytest.raises(GeoDLError, match="at least 10"):
        extract_target_samples([raster], read_targets(few, "v"), tmp_path / "few.tfrecord.gz")
