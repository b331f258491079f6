"""Overviews written with the prediction's blocks: the same pyramid as resampling the finished raster."""

from __future__ import annotations

import numpy as np
import pytest

from geodl_plugin.core.families import predict_raster, train_model
from geodl_plugin.core.io.overviews import mean_levels, mean_levels_fast, mode_levels, mode_levels_fast, overview_factors
from geodl_plugin.core.predict.raster_prediction import PredictParams
from geodl_plugin.core.train.trainer import TrainParams
from tests.core.synthetic import write_raster


def _windows(a: np.ndarray, f: int, fill) -> np.ndarray:
    """(H, W, f*f) windows of ``a``, the edge padded with ``fill``."""
    h, w = a.shape
    padded = np.full((-(-h // f) * f, -(-w // f) * f), fill, a.dtype)
    padded[:h, :w] = a
    H, W = padded.shape[0] // f, padded.shape[1] // f
    return padded.reshape(H, f, W, f).transpose(0, 2, 1, 3).reshape(H, W, f * f)


def mode_reference(a: np.ndarray, f: int, nodata: int) -> np.ndarray:
    """Straight from the definition, window by window: the most frequent valid value, the smallest on a tie."""
    win = _windows(a, f, nodata)
    out = np.full(win.shape[:2], nodata, a.dtype)
    for i in range(win.shape[0]):
        for j in range(win.shape[1]):
            counts = np.bincount(win[i, j], minlength=256)
            counts[nodata] = 0
            if counts.any():
                out[i, j] = counts.argmax()
    return out


def mean_reference(a: np.ndarray, f: int, nodata: float) -> np.ndarray:
    win = _windows(a.astype(np.float64), f, nodata)
    valid = win != nodata
    with np.errstate(invalid="ignore"):
        mean = np.where(valid, win, 0).sum(-1) / valid.sum(-1)
    return np.where(valid.any(-1), mean, nodata)


@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "numba"])
@pytest.mark.parametrize("shape", [(64, 64), (37, 53), (9, 5), (70, 33)])
def test_mode_and_mean_levels_match_the_definition(shape, compiled):
    """Both versions (NumPy, and the compiled one the writer uses) against window-by-window definitions; odd
    sizes cut windows at the edge, and the tie-heavy class mix checks that a tie goes to the smallest id."""
    mode, mean = (mode_levels_fast, mean_levels_fast) if compiled else (mode_levels, mean_levels)
    rng = np.random.default_rng(sum(shape))
    classes = rng.choice(np.array([0, 3, 7, 255], np.uint8), size=shape, p=[0.4, 0.3, 0.2, 0.1])
    classes[: shape[0] // 3, : shape[1] // 3] = 255  # a nodata corner: whole windows without data
    values = rng.random(shape).astype(np.float32)
    values[classes == 255] = -1.0
    factors = [2, 4, 8, 16]
    for level, f in zip(mode(classes, factors, 255), factors):
        np.testing.assert_array_equal(level, mode_reference(classes, f, 255))
    for level, f in zip(mean(values, factors, -1.0), factors):
        np.testing.assert_allclose(level, mean_reference(values, f, -1.0), rtol=1e-5)
    two = np.where(rng.random(shape) < 0.5, 2, 9).astype(np.uint8)  # 2×2 windows tie often: 2 must win
    for level, f in zip(mode(two, factors, 255), factors):
        np.testing.assert_array_equal(level, mode_reference(two, f, 255))


@pytest.mark.parametrize("shape", [(1, 1), (17, 1), (1, 40), (100, 31)])
def test_compiled_mode_with_many_classes_and_thin_blocks(shape):
    """The compiled mode counts class by class in strips as tall as the largest window: 40 classes, blocks one
    pixel wide or tall, factors up to 32, and a block with no data at all."""
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    classes = rng.integers(0, 40, shape).astype(np.uint8)
    classes[rng.random(shape) < 0.1] = 255
    factors = [2, 4, 8, 16, 32]
    for level, f in zip(mode_levels_fast(classes, factors, 255), factors):
        np.testing.assert_array_equal(level, mode_reference(classes, f, 255))
    assert all((level == 255).all() for level in mode_levels_fast(np.full(shape, 255, np.uint8), factors, 255))


def test_overview_factors_keep_at_least_128_pixels():
    assert overview_factors(500, 400) == []
    assert overview_factors(700, 600) == [2, 4]
    assert overview_factors(2041, 1860) == [2, 4, 8]
    with pytest.raises(ValueError):
        mode_levels(np.zeros((4, 4), np.uint8), [2, 8], 255)


@pytest.fixture
def speckled(tmp_path):
    """A 700×600 scene whose pixels are dark or bright at random (so windows hold both classes) with a
    nodata strip, and a small forest trained on the two populations of ``two_class_scene``."""
    from geodl_plugin.core.data.labels import read_labels
    from geodl_plugin.core.data.samples import extract_samples
    from geodl_plugin.core.io.raster import raster_info
    from tests.core.synthetic import grid_points, two_class_scene, write_points

    train_raster = two_class_scene(tmp_path / "train.tif")
    xy, names = grid_points()
    labels = read_labels(write_points(tmp_path / "points.gpkg", xy, names), "name", target_crs_wkt=raster_info(train_raster).crs_wkt)
    samples = extract_samples([train_raster], labels, tmp_path / "samples.tfrecord.gz")
    model = tmp_path / "rf.geodl"
    train_model(TrainParams(samples=[samples.path], output=str(model), family="rf", options={"n_trees": 5}, split="random"))
    rng = np.random.default_rng(5)
    bright = rng.random((600, 700)) < 0.45
    data = np.where(bright, rng.normal(3000, 50, (3, 600, 700)), rng.normal(1000, 50, (3, 600, 700)))
    data = data.astype(np.uint16)
    data[:, 40:90, :] = 0
    return write_raster(tmp_path / "speckled.tif", data, nodata=0), model


def test_prediction_writes_overviews_with_its_blocks(speckled, tmp_path):
    """Blocks on the overview grid (256 and 64 px: level tiles filled by several blocks and rows of blocks,
    flushed as their rows complete): the pyramid comes from the blocks. Blocks off it (100 px): GDAL builds
    it from the closed files at the end. Both equal the definition (GDAL's MODE breaks ties the same
    way), so the two paths give the same files."""
    import rasterio

    raster, model = speckled
    for block in (256, 64, 100):
        out = tmp_path / f"c{block}.tif"
        conf = tmp_path / f"p{block}.tif"
        probs = tmp_path / f"probs{block}.tif"
        predict_raster(PredictParams([str(raster)], str(model), str(out), str(conf), str(probs), block_size=block))
        with rasterio.open(out) as ds, rasterio.open(conf) as cs, rasterio.open(probs) as ps:
            assert ds.overviews(1) == [2, 4] and cs.overviews(1) == [2, 4]
            assert ps.count == 2 and ps.overviews(1) == ps.overviews(2) == [2, 4]
            classes, confidence, probabilities = ds.read(1), cs.read(1), ps.read()
        with rasterio.open(probs, overview_level=1) as ps:  # every band of the multi-band output
            for band in range(2):
                np.testing.assert_allclose(ps.read(band + 1), mean_reference(probabilities[band], 4, -1.0), rtol=1e-5)
        assert set(np.unique(classes)) == {1, 2, 255}
        for level, f in enumerate([2, 4]):
            with rasterio.open(out, overview_level=level) as ds, rasterio.open(conf, overview_level=level) as cs:
                np.testing.assert_array_equal(ds.read(1), mode_reference(classes, f, 255))
                np.testing.assert_allclose(cs.read(1), mean_reference(confidence, f, -1.0), rtol=1e-5)
