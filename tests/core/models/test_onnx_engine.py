"""Tiled prediction's onnxruntime engine: the U-Net (tf2onnx) and the recurrent temporal networks (written from
their weights) give Keras' probabilities, missing dates included; what it cannot convert stays on Keras."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from geodl_plugin.core.models.onnx_engine import onnx_predictor
from geodl_plugin.core.models.temporal import build_temporal_model
from geodl_plugin.core.models.unet import build_unet
from geodl_plugin.core.predict.tiled_prediction import keras_predictor

TOLERANCE = 1e-5  # max |onnxruntime − Keras| probability (float32; observed ~2e-7)


def _series_tiles(n_dates: int, n_bands: int, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Raw series tiles (n, h, w, dates·(bands+1)): bands around 1000, a day of year per date, 20 % of the
    observations missing (NaN in one band: the whole date is missing there) and one date missing everywhere."""
    x = np.empty((2, *shape, n_dates, n_bands + 1), np.float32)
    x[..., :n_bands] = rng.normal(1000, 300, x[..., :n_bands].shape)
    x[..., n_bands] = np.linspace(20, 340, n_dates)
    x[rng.random(x.shape[:4]) < 0.2, rng.integers(0, n_bands)] = np.nan
    x[:, :, :, 1, :n_bands] = np.nan
    return x.reshape(2, *shape, -1)


@pytest.mark.parametrize(
    ("encoder", "layers", "bidirectional"), [("gru", 1, True), ("lstm", 2, True), ("gru", 2, False), ("lstm", 1, False)]
)
def test_temporal_graph_gives_keras_probabilities(encoder, layers, bidirectional):
    import keras

    keras.utils.set_random_seed(3)
    model = build_temporal_model(5, 3, 4, [1000.0] * 3, [300.0**2] * 3, encoder, 6, layers=layers, bidirectional=bidirectional)
    predict = onnx_predictor(model)
    assert predict is not None, "the recurrent network should run in onnxruntime on a CPU"
    x = _series_tiles(5, 3, (20, 13), np.random.default_rng(4))  # not square, not the check's own size
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    got = predict(x)
    assert got.shape == expected.shape == (2, 20, 13, 4)
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)


def test_temporal_graph_takes_any_day_of_year_and_non_finite_bands():
    """The date features are prepared outside the graph (``date_features``): a day of year that varies over a
    tile or is missing at some pixels, and bands that are infinite rather than NaN, give Keras' answer too."""
    import keras

    keras.utils.set_random_seed(10)
    model = build_temporal_model(4, 2, 3, [1000.0] * 2, [300.0**2] * 2, "gru", 8)
    predict = onnx_predictor(model)
    assert predict is not None
    rng = np.random.default_rng(11)
    x = _series_tiles(4, 2, (10, 12), rng).reshape(2, 10, 12, 4, 3)
    x[..., 2] = rng.integers(1, 366, x.shape[:4])  # a day of year per pixel
    x[0, :3, :, 2, 2] = np.nan  # not known here
    x[1, 4:, 5:, 3, 1] = np.inf
    x[0, 2, 2, 0, 0] = -np.inf
    x = x.reshape(2, 10, 12, -1)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(predict(x), expected, atol=TOLERANCE)


def test_gru_graph_per_tile_shape_gives_keras_probabilities():
    """Block-aligned filters (the fused, blocked path), two levels, missing dates; one graph per tile batch
    shape, more shapes than the engine keeps, and a shape seen again after it was dropped."""
    import keras

    from geodl_plugin.core.models.onnx_engine import SHAPES_KEPT

    keras.utils.set_random_seed(8)
    model = build_temporal_model(6, 4, 3, [1000.0] * 4, [300.0**2] * 4, "gru", 16, layers=2)
    predict = onnx_predictor(model)
    assert predict is not None
    rng = np.random.default_rng(9)
    shapes = [(9, 17), (24, 24), (16, 40), (33, 8), (9, 17)][: SHAPES_KEPT + 2]
    for shape in shapes:
        x = _series_tiles(6, 4, shape, rng)
        expected = keras.ops.convert_to_numpy(model(x, training=False))
        np.testing.assert_allclose(predict(x), expected, atol=TOLERANCE)
        # channels first in and out (how tiled prediction runs a series), the graph's own layout
        first = predict.channels_first(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        np.testing.assert_allclose(first, expected.transpose(0, 3, 1, 2), atol=TOLERANCE)
    one = _series_tiles(6, 4, (12, 12), rng)[:1]  # a last batch of one tile
    np.testing.assert_allclose(predict(one), keras.ops.convert_to_numpy(model(one, training=False)), atol=TOLERANCE)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="onnxruntime's blocked convolutions are x86 kernels")
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_recurrent_graph_stays_in_the_blocked_layout(tmp_path, cell):
    """What makes the recurrent networks fast: written for a tile shape, onnxruntime keeps every gate in its
    blocked (NCHWc) layout with the sums and activations fused into the convolutions, so the only tensor
    reordered back is the head's; for a GRU three elementwise ops are left per date and direction (r·h_n,
    u·(n − h), h + ·)."""
    import onnxruntime as ort

    from geodl_plugin.core.models.temporal_onnx import temporal_onnx

    n_dates = 5
    model = build_temporal_model(n_dates, 4, 3, [1000.0] * 4, [300.0**2] * 4, cell, 16)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    options.log_severity_level = 3  # (it warns that the saved graph is for this CPU only)
    ort.InferenceSession(temporal_onnx(model, (2, 32, 32)).SerializeToString(), options, providers=["CPUExecutionProvider"])
    import onnx

    ops = [node.op_type for node in onnx.load(str(tmp_path / "optimised.onnx")).graph.node]
    assert ops.count("ReorderOutput") == 1  # the head's logits, for the softmax
    assert ops.count("ReorderInput") == 0
    assert "Sigmoid" not in ops  # every gate's activation is fused into its convolution
    if cell == "lstm":
        assert ops.count("Tanh") == 2 * n_dates  # tanh(cell), once per date and direction
        return
    steps = 2 * (n_dates - 1)  # dates after the first, both directions
    # r·h_n and u·(n − h) per step and u·n at each direction's first date: the inputs come prepared (date_features)
    assert ops.count("Mul") == 2 * steps + 2
    assert ops.count("Add") == steps  # h + u·(n − h); every other sum is fused into a convolution
    assert "Sigmoid" not in ops and "Tanh" not in ops  # fused into the convolutions as their activations


def test_unet_runs_in_onnxruntime_with_keras_probabilities():
    import keras

    keras.utils.set_random_seed(5)
    model = build_unet(4, 3, [1000.0] * 4, [300.0**2] * 4, depth=2, base_filters=4)
    predict = onnx_predictor(model, 4)
    if keras.backend.backend() != "tensorflow":  # tf2onnx converts TensorFlow graphs only
        assert predict is None
        return
    assert predict is not None
    x = np.random.default_rng(6).normal(1000, 300, (3, 24, 40, 4)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(predict(x), expected, atol=TOLERANCE)
    # the graph's own layout is channels first (its first and last transposes dropped): tiles go in as read
    assert predict.first
    first = predict.channels_first(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(first, expected.transpose(0, 3, 1, 2), atol=TOLERANCE)
    assert onnx_predictor(model, 4) is predict  # converted once per loaded model


def test_stacked_dates_baseline_stays_on_keras():
    import keras

    model = build_temporal_model(3, 2, 3, [0.0, 0.0], [1.0, 1.0], "stack")
    assert onnx_predictor(model) is None
    x = _series_tiles(3, 2, (8, 8), np.random.default_rng(7))
    np.testing.assert_allclose(
        keras_predictor(model, what="temporal model")(x), keras.ops.convert_to_numpy(model(x, training=False)), atol=1e-5
    )
