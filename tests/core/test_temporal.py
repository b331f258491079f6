"""Time series: series imagery, samples over time, the temporal networks and the MTLCC layout."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from geodl_plugin.core.data.series import day_of_year, model_channels, open_series, parse_date
from geodl_plugin.core.data.series_samples import load_series_samples
from geodl_plugin.core.io.tfrecord import write_examples
from geodl_plugin.core.runtime.errors import GeoDLError
from tests.core.synthetic import write_raster


def _dates_scene(tmp_path: Path) -> tuple[list[Path], np.ndarray]:
    """Three 2-band dates written out of order; the middle date has a cloud (nodata 0) at rows 0-1."""
    rng = np.random.default_rng(0)
    data = rng.integers(100, 1000, (3, 2, 8, 8)).astype(np.uint16)
    data[1, :, :2, :] = 0
    names = ["s2_20200718.tif", "s2_2020-05-18.tif", "s2_20200618.tif"]
    order = [2, 0, 1]  # the date index each file holds
    paths = []
    for name, t in zip(names, order):
        paths.append(write_raster(tmp_path / name, data[t], nodata=0))
    return paths, data


def test_series_from_file_names_sorted_with_clouds_as_nan(tmp_path):
    paths, data = _dates_scene(tmp_path)
    series = open_series(paths)
    assert series.dates == (dt.date(2020, 5, 18), dt.date(2020, 6, 18), dt.date(2020, 7, 18))
    assert series.doy.tolist() == [139, 170, 200]
    block = series.read(0, 0, 8, 8)
    assert block.shape == (3, 2, 8, 8)
    assert np.isnan(block[1, :, :2]).all() and not np.isnan(block[1, :, 2:]).any()
    np.testing.assert_array_equal(block[0], data[0].astype(np.float32))
    assert not (block == 0).any()  # missing is NaN, never zero-filled
    channels = model_channels(block, series.doy)
    assert channels.shape == (9, 8, 8) and (channels[2] == 139).all() and (channels[8] == 200).all()
    assert series.feature_names()[:2] == ["B1_20200518", "B2_20200518"]


def test_series_errors_name_the_fix(tmp_path):
    paths, _ = _dates_scene(tmp_path)
    undated = write_raster(tmp_path / "plain.tif", np.ones((2, 8, 8), np.uint16))
    with pytest.raises(GeoDLError, match="No date found"):
        open_series([paths[0], undated])
    with pytest.raises(GeoDLError, match="occur twice"):
        open_series(paths[:2], dates=["2020-01-01", "2020-01-01"])
    with pytest.raises(GeoDLError, match="3 dates given for 2 rasters"):
        open_series(paths[:2], dates=["2020-01-01", "2020-02-01", "2020-03-01"])
    other = write_raster(tmp_path / "x_20200101.tif", np.ones((2, 4, 4), np.uint16))
    with pytest.raises(GeoDLError, match="not on the grid"):
        open_series([paths[0], other])


@pytest.mark.parametrize("order", ["date", "band"])
def test_one_stack_band_per_date(tmp_path, order):
    values = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)  # (dates, bands, h, w)
    stack = values.reshape(6, 4, 4) if order == "date" else values.transpose(1, 0, 2, 3).reshape(6, 4, 4)
    path = write_raster(tmp_path / "stack.tif", stack, nodata=-9999.0)
    series = open_series([path], dates=["2021-03-01", "2021-01-01"], order=order)
    assert series.dates == (dt.date(2021, 1, 1), dt.date(2021, 3, 1))  # sorted: the given second date first
    block = series.read(0, 0, 4, 4)
    np.testing.assert_array_equal(block[0], values[1])
    np.testing.assert_array_equal(block[1], values[0])


def test_dates_from_band_descriptions(tmp_path):
    import rasterio

    path = write_raster(tmp_path / "stack.tif", np.ones((4, 4, 4), np.float32))
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = ("B4_20200101", "B8_20200101", "B4_20200201", "B8_20200201")
    series = open_series([path])
    assert series.bands == ("B4", "B8") and series.n_dates == 2 and series.order == "date"
    assert parse_date("LC08_L1TP_224078_20200518_20200518_01_RT") == dt.date(2020, 5, 18)


def test_series_samples_round_trip(tmp_path):
    from geodl_plugin.core.data.labels import read_labels
    from geodl_plugin.core.data.series_samples import extract_series_samples
    from tests.core.synthetic import ORIGIN, PIXEL, write_points

    paths, data = _dates_scene(tmp_path)
    series = open_series(paths)
    xy = [(ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL) for r, c in [(0, 1), (4, 4), (6, 2)]]
    write_points(tmp_path / "p.gpkg", xy, ["a", "b", "a"])
    labels = read_labels(tmp_path / "p.gpkg", "name", target_crs_wkt=series.info.crs_wkt)
    out = tmp_path / "samples.tfrecord.gz"
    report = extract_series_samples(series, labels, out, patch_size=3)
    assert report["count"] == 3
    meta = json.loads(Path(str(out) + ".json").read_text())
    assert meta["series"]["dates"] == ["2020-05-18", "2020-06-18", "2020-07-18"]
    chips = load_series_samples(out)
    assert chips.x.shape == (3, 3, 3, 9) and chips.patch_size == 3
    assert chips.bands[:3] == ["B1_20200518", "B2_20200518", "B1_20200618"]  # raster bands; doy is derived
    sample = chips.x[0].reshape(3, 3, 3, 3)  # (k, k, dates, bands+1), point at row 0, col 1
    np.testing.assert_array_equal(sample[1, 1, 0, :2], data[0, :, 0, 1])
    assert np.isnan(sample[1:, :, 1, :2]).all()  # the cloudy date at raster rows 0-1
    assert not np.isnan(sample[1:, :, 0, :2]).any()
    assert (sample[..., 2] == day_of_year(series.dates)).all()
    assert np.isnan(sample[0, :, :, :2]).all()  # beyond the raster edge: missing, not mirrored values
    assert chips.mask[0, 1, 1] == chips.classes.ids[0] and (chips.mask[0] == 255).sum() == 8


def test_indexed_ee_layout_with_doy_features(tmp_path):
    """An Earth Engine export with bands d{t}_{band} and a d{t}_doy feature per date."""
    rec = {
        "d0_B2": np.full(9, 5.0),
        "d0_B3": np.full(9, 6.0),
        "d0_doy": np.full(9, 32.0),
        "d1_B2": np.full(9, np.nan),
        "d1_B3": np.full(9, 7.0),
        "d1_doy": np.full(9, 60.0),
        "class": 1.0,
    }
    path = tmp_path / "ee.tfrecord.gz"
    write_examples(path, [rec, {**rec, "class": 2.0}])
    chips = load_series_samples(path)
    x = chips.x[0, 1, 1].reshape(2, 3)
    assert x[0].tolist() == [5.0, 6.0, 32.0]
    assert np.isnan(x[1, :2]).all() and x[1, 2] == 60.0  # one band missing: the whole date is missing
    assert chips.meta["series"]["bands"] == ["B2", "B3"]


def test_temporal_networks_fully_convolutional_and_skip_missing_dates():
    import keras

    from geodl_plugin.core.models.temporal import build_temporal_model, rebuild_for_dates

    rng = np.random.default_rng(1)
    n_bands = 3
    for encoder in ("gru", "lstm"):
        model = build_temporal_model(4, n_bands, 3, np.zeros(n_bands), np.ones(n_bands), encoder, filters=4)
        x = rng.normal(size=(1, 24, 24, 4, n_bands + 1)).astype(np.float32)
        x[..., n_bands] = [10, 50, 90, 130]
        small = keras.ops.convert_to_numpy(model.predict_on_batch(x.reshape(1, 24, 24, -1)))
        assert small.shape == (1, 24, 24, 3)
        big = np.tile(x, (1, 2, 2, 1, 1)).reshape(1, 48, 48, -1)
        assert keras.ops.convert_to_numpy(model.predict_on_batch(big)).shape == (1, 48, 48, 3)
        # An unobserved date (NaN everywhere) changes nothing: the state is carried over it.
        gap = np.concatenate([x[..., :2, :], np.full_like(x[..., :1, :], np.nan), x[..., 2:, :]], axis=3)
        gap[..., 2, n_bands] = 70
        longer = rebuild_for_dates(model, {"encoder": encoder, "filters": 4}, 5)
        with_gap = keras.ops.convert_to_numpy(longer.predict_on_batch(gap.reshape(1, 24, 24, -1)))
        np.testing.assert_allclose(with_gap, small, atol=1e-5)
        assert np.isfinite(with_gap).all()
        # Training unrolls the date loop (inference scans it): same network, same outputs, gaps included.
        trained_path = keras.ops.convert_to_numpy(longer(gap.reshape(1, 24, 24, -1), training=True))
        np.testing.assert_allclose(trained_path, with_gap, atol=1e-5)
        deep = build_temporal_model(5, n_bands, 3, np.zeros(n_bands), np.ones(n_bands), encoder, filters=4, layers=2)
        both = [keras.ops.convert_to_numpy(deep(gap.reshape(1, 24, 24, -1), training=t)) for t in (False, True)]
        np.testing.assert_allclose(both[1], both[0], atol=1e-5)  # the sequences between layers too


def test_mtlcc_tile_to_geotiffs(tmp_path):
    import rasterio

    from geodl_plugin.core.io.mtlcc import MTLCCTile, mtlcc_to_geotiff, read_mtlcc_tiles, write_mtlcc_tile

    rng = np.random.default_rng(2)
    t, h = 4, 12
    tile = MTLCCTile(
        5887,
        rng.integers(0, 9000, (t, h, h, 4)),
        rng.integers(0, 9000, (t, h // 2, h // 2, 6)),
        rng.integers(0, 9000, (t, h // 6, h // 6, 3)),
        np.array([10, 40, 200, 0]),
        np.array([2016, 2016, 2016, 0]),
        rng.integers(0, 20, (t, h, h)),
    )
    path = write_mtlcc_tile(tmp_path / "5887.tfrecord.gz", tile)
    (tmp_path / "geotransforms.csv").write_text("5887,600000.0,10,0,5300000.0,0,-10,32632\n")
    back = list(read_mtlcc_tiles(path))
    assert len(back) == 1 and back[0].doy.tolist() == [10, 40, 200]  # the padded date (doy 0) dropped
    np.testing.assert_array_equal(back[0].x20, tile.x20[:3])
    (conv,) = mtlcc_to_geotiff(path, tmp_path / "tif", tmp_path / "geotransforms.csv")
    assert conv.georeferenced and conv.dates[0] == dt.date(2016, 1, 10)
    with rasterio.open(conv.folder / "20m" / "20160110.tif") as ds:
        assert ds.res == (20.0, 20.0) and ds.bounds.left == 600000.0 and ds.bounds.top == 5300000.0
        assert ds.crs.to_epsg() == 32632 and ds.count == 6
        np.testing.assert_array_equal(ds.read(), np.moveaxis(tile.x20[0], -1, 0))
    with rasterio.open(conv.labels) as ds:
        np.testing.assert_array_equal(ds.read(1), tile.labels[0])
    series = open_series(conv.series)
    assert series.n_dates == 3 and series.n_bands == 13 and series.bands[4] == "B05"
    block = series.read(0, 0, h, h)
    np.testing.assert_array_equal(block[2, 4, :2, :2], np.full((2, 2), tile.x20[2, 0, 0, 0]))  # 20 m repeated


@pytest.mark.slow
def test_temporal_family_trains_saves_and_evaluates(tmp_path):
    """Through the family table: train (few epochs), the held-out samples written back, evaluate_model on them
    (the raster path's sample scorer), and the model file loads in safe mode in a clean registry."""
    import sys

    from geodl_plugin.core.data.labels import read_labels
    from geodl_plugin.core.data.series_samples import extract_series_samples
    from geodl_plugin.core.families import evaluate_model, train_model
    from geodl_plugin.core.models.family import ModelFamily, TemporalParams
    from geodl_plugin.core.models.model_file import load_model_file
    from geodl_plugin.core.train.trainer import TrainParams

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from make_synthetic_series import make_series_scene

    scene = make_series_scene(tmp_path / "scene", size=24, n_points=12, seed=5, n_dates=4)
    series = open_series(scene.rasters)
    labels = read_labels(scene.points, "class_name", target_crs_wkt=series.info.crs_wkt)
    extract_series_samples(series, labels, tmp_path / "s.tfrecord.gz", patch_size=3)
    params = TrainParams(
        samples=[str(tmp_path / "s.tfrecord.gz")],
        output=str(tmp_path / "m.geodl"),
        family=ModelFamily.TEMPORAL,
        options=TemporalParams(filters=2, layers=2),
        epochs=1,
        batch_size=16,
        split="random",
        test_samples_output=str(tmp_path / "t.tfrecord.gz"),
    )
    result = train_model(params)
    bundle = load_model_file(result.model_path)
    manifest = bundle.manifest
    assert manifest["mlm:architecture"] == "temporal" and manifest["training"]["temporal"]["layers"] == 2
    assert manifest["training"]["series"]["doy"] == [15, 46, 75, 106] and len(bundle.bands) == 4 * 4
    report = evaluate_model(result.model_path, [result.test_samples_path])
    assert report.n_samples == result.n_test and report.overall_accuracy == pytest.approx(result.metrics.overall_accuracy)


def test_one_date_and_the_flop_count_skip_the_zero_state():
    """The first date starts from an all-zero state: its recurrent convolution is not run (one date: none at
    all) and ``temporal_flops`` does not count it."""
    import keras

    from geodl_plugin.core.models.temporal import build_temporal_model, temporal_flops

    k2, c, f, gates = 9, 2 + 3, 4, 3
    head = 2 * 3 * 3 * (2 * f) * 3  # per pixel: the 3×3 head over both directions' states, 3 classes
    one = temporal_flops(1, 1, 1, 2, 3, "gru", f)
    assert one == 2 * (2 * k2 * c * gates * f) + head  # both directions' input convolutions, no recurrent one
    assert temporal_flops(1, 1, 4, 2, 3, "gru", f) == 2 * (2 * k2 * (4 * c + 3 * f) * gates * f) + head
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype(np.float32)
    x[..., 2] = 100
    for layers in (1, 2):  # two layers: the sequence between them has one date
        model = build_temporal_model(1, 2, 3, np.zeros(2), np.ones(2), "gru", filters=f, layers=layers)
        both = [keras.ops.convert_to_numpy(model(x, training=t)) for t in (False, True)]
        assert both[0].shape == (1, 8, 8, 3)
        np.testing.assert_allclose(both[1], both[0], atol=1e-6)
