"""The pixel DNN's compiled kernel: Keras' classes, confidences and probabilities for every layer count, class
count and chunk remainder; a vectorised exp that stays accurate over the whole range of logits; other networks
and a kernel that disagrees with Keras stay on Keras."""

from __future__ import annotations

import numpy as np
import pytest

from geodl_plugin.core.models.dense_kernel import CHUNK, DenseStack, dense_stack, fused_classifier, kernel_source
from geodl_plugin.core.models.networks import build_pixel_dnn
from geodl_plugin.core.models.regression import build_dnn_regressor
from geodl_plugin.core.models.unet import build_unet

TOLERANCE = 2e-6  # max |kernel − Keras| probability (float32 sums in another order)


def _model(bands: int, classes: int, hidden: tuple[int, ...], seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    mean, std = rng.uniform(500, 9000, bands), rng.uniform(50, 2000, bands)
    model = build_pixel_dnn(bands, classes, mean, std**2, hidden_units=hidden)
    for layer in model.layers:  # trained-looking weights: large enough that several classes compete
        if layer.get_weights() and type(layer).__name__ == "Dense":
            w, b = layer.get_weights()
            layer.set_weights(
                [rng.normal(0, 1.5 / np.sqrt(w.shape[0]), w.shape).astype(np.float32), rng.normal(0, 0.5, b.shape).astype(np.float32)]
            )
    x = (rng.normal(size=(3 * CHUNK + 77, bands)) * std * 1.5 + mean).astype(np.float32)  # a partial last chunk
    return model, x


def _keras(model, x: np.ndarray) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(x)))


# hidden units in groups of 4 (3→64→4, 1→8→3, 6→64→10), of 2 (5→6→3), one by one after a wide layer (32→16)
@pytest.mark.parametrize(
    ("bands", "classes", "hidden"), [(3, 4, (64,)), (7, 2, (32, 16)), (12, 9, ()), (1, 3, (8,)), (6, 10, (64,)), (5, 3, (6,))]
)
def test_kernel_gives_keras_answers(bands, classes, hidden):
    model, x = _model(bands, classes, hidden, seed=bands)
    fused = fused_classifier(model, lambda v: _keras(model, v))
    assert fused is not None, "the pixel DNN should run through the compiled kernel"
    expected = _keras(model, x)
    index, confidence, probabilities = fused.classify(x, probabilities=True)
    np.testing.assert_allclose(probabilities, expected, atol=TOLERANCE)
    np.testing.assert_allclose(confidence, expected.max(axis=1), atol=TOLERANCE)
    top2 = np.sort(expected, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 1e-5
    assert decided.mean() > 0.95 and len(np.unique(index)) > 1, "the test data should exercise several classes"
    np.testing.assert_array_equal(index[decided], expected.argmax(axis=1)[decided])
    # without probabilities: the same class and confidence
    index2, confidence2, none = fused.classify(x)
    assert none is None
    np.testing.assert_array_equal(index2, index)
    np.testing.assert_allclose(confidence2, confidence, atol=1e-7)
    # the raster path's layout: a (pixels, bands) view of band-major memory (read without a copy)
    index3, confidence3, _ = fused.classify(np.ascontiguousarray(x.T).T)
    np.testing.assert_array_equal(index3, index2)
    np.testing.assert_array_equal(confidence3, confidence2)


def test_split_across_threads_matches_one_call(monkeypatch):
    from geodl_plugin.core.models import dense_kernel

    model, x = _model(3, 5, (16,), seed=11)
    x = np.tile(x, (120, 1))  # > the rows a call keeps on one core
    fused = fused_classifier(model)
    assert fused is not None
    monkeypatch.setattr(dense_kernel.os, "cpu_count", lambda: 4)  # three slices, whatever this machine has
    together = fused.classify(x, probabilities=True)
    monkeypatch.setattr(dense_kernel, "_PARALLEL_ROWS", len(x) + 1)
    alone = fused.classify(x, probabilities=True)
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_array_equal(a, b)


def test_exp_is_accurate_for_far_apart_logits():
    """Logits up to ~200 apart: the small probabilities underflow gracefully, the large ones stay exact."""
    bands, classes = 1, 6
    spread = np.array([0.0, -0.3, -5.0, -20.0, -87.0, -200.0], np.float32)
    # one band equal to the logit offset t: logits = t + spread, through an identity-like network
    stack = DenseStack(np.zeros(1, np.float32), np.ones(1, np.float32), [(np.ones((1, classes), np.float32), spread)])
    from geodl_plugin.core.models.dense_kernel import FusedDense

    t = np.linspace(-50, 50, 1001, dtype=np.float32)[:, None]
    _, confidence, probabilities = FusedDense(stack).classify(t, probabilities=True)
    logits = (t + spread).astype(np.float64)  # the float32 sums the kernel sees, then exact softmax
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    # float32 rounds a logit gap g to ~g·6e-8, so exp(g) is good to ~|g|·1e-7 relative whoever computes it
    np.testing.assert_allclose(probabilities, expected, rtol=5e-6, atol=1e-37)  # below ~1e-38: 0
    np.testing.assert_allclose(confidence, expected.max(axis=1), rtol=1e-6)
    assert (probabilities[:, -1] == 0).all(), "200 below the best logit: 0, not a clamped 1e-38"
    assert bands == stack.dims[0]


def test_other_networks_stay_on_keras():
    import keras

    assert dense_stack(build_dnn_regressor(3, [1.0] * 3, [1.0] * 3, 0.0, 1.0)) is None  # a linear output, not a softmax
    assert dense_stack(build_unet(3, 2, [1.0] * 3, [1.0] * 3, depth=1, base_filters=4)) is None
    inputs = keras.Input((3,))
    tanh = keras.layers.Dense(2, activation="softmax")(
        keras.layers.Dense(4, activation="tanh")(keras.layers.Normalization(mean=[0.0] * 3, variance=[1.0] * 3)(inputs))
    )
    assert dense_stack(keras.Model(inputs, tanh)) is None  # only ReLU hidden layers are compiled
    wide = build_pixel_dnn(64, 20, [0.0] * 64, [1.0] * 64)  # 64 embedding bands, 20 classes: Keras runs it
    assert dense_stack(wide) is not None and fused_classifier(wide) is None


def test_a_kernel_that_disagrees_with_keras_is_not_used(caplog):
    model, _ = _model(3, 4, (8,), seed=2)
    wrong = lambda v: _keras(model, v)[:, ::-1]  # noqa: E731 - Keras' answer with the classes reversed
    assert fused_classifier(model, wrong) is None
    assert "differs from Keras" in caplog.text


def test_source_holds_only_the_shape():
    """The generated source depends on the layer sizes alone: the weights are arguments, never code."""
    model_a, _ = _model(3, 4, (64,), seed=1)
    model_b, _ = _model(3, 4, (64,), seed=2)
    a, b = dense_stack(model_a), dense_stack(model_b)
    assert a is not None and b is not None and a.dims == b.dims == (3, 64, 4)
    assert kernel_source(a.dims, False) == kernel_source(b.dims, False)


def test_bundle_classifies_through_the_kernel(tmp_path):
    """A saved and reloaded pixel DNN predicts through the kernel, with Keras' answer."""
    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.models.dense_kernel import FusedDense
    from geodl_plugin.core.models.model_file import load_model_file, make_manifest, save_model_file

    model, x = _model(3, 4, (64,), seed=5)
    classes = ClassTable.from_names(["a", "b", "c", "d"])
    manifest = make_manifest(
        name="t", architecture="pixel_dnn", bands=["B1", "B2", "B3"], classes=classes, mean=[0.0] * 3, std=[1.0] * 3,
        source_dtype="uint16", nodata=None, pixel_size=None, crs_wkt="", crs_units="",
    )  # fmt: skip
    bundle = load_model_file(save_model_file(tmp_path / "m.geodl", model, manifest))
    got = bundle.classify(x, probabilities=True)
    assert isinstance(bundle._predictor().fused_kernel(), FusedDense)
    np.testing.assert_allclose(got.probabilities, _keras(bundle.model, x), atol=TOLERANCE)


def test_without_numba_keras_predicts(monkeypatch, caplog):
    """numba is an optional speed-up: where it cannot be imported the bundle classifies through Keras."""
    import sys

    from geodl_plugin.core.models.model_file import ModelBundle

    model, x = _model(2, 3, (5,), seed=9)  # a shape no other test compiles, so the import is attempted
    monkeypatch.setitem(sys.modules, "numba", None)
    with caplog.at_level("INFO", logger="geodl"):
        bundle = ModelBundle({}, model)
        got = bundle.classify(x, probabilities=True)
    assert bundle._predictor().fused_kernel() is None and "not the compiled kernel" in caplog.text
    np.testing.assert_allclose(got.probabilities, _keras(model, x), atol=1e-6)


_PROBE = """
import numpy as np
from geodl_plugin.core.models.dense_kernel import DenseStack, FusedDense, _compile
rng = np.random.default_rng(0)
layers = [(rng.normal(size=(2, 6)).astype(np.float32), np.zeros(6, np.float32))]
layers.append((rng.normal(size=(6, 3)).astype(np.float32), np.zeros(3, np.float32)))
FusedDense(DenseStack(np.zeros(2, np.float32), np.ones(2, np.float32), layers)).classify(rng.normal(size=(300, 2)).astype(np.float32))
print(sum(_compile((2, 6, 3), False).stats.cache_hits.values()))
"""


def _probe(cache: str) -> str:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {**os.environ, "GEODL_KERNEL_CACHE": cache, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_compiled_kernel_is_reused_by_the_next_process(tmp_path):
    """The first process compiles and keeps the machine code; the next one loads it (no ~1-2 s compile)."""
    cache = tmp_path / "kernels"
    assert _probe(str(cache)) == "0"
    assert _probe(str(cache)) == "1"
    assert [p.name for p in cache.glob("*.py")] == ["geodl_dense_2_6_3.py"]


def test_unwritable_cache_compiles_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _probe(str(blocker / "kernels")) == "0"  # still classifies; nothing to reuse


@pytest.mark.parametrize("dtype", ["uint16", "int16", "uint8", "float32", "float64"])
def test_raster_block_as_read(dtype):
    """A block of the raster's own type: the kernel masks nodata (and, for floats, NaN and infinities) itself,
    writes class ids and the fill values, and counts the classes: the same answer as converting the valid
    pixels to float32 and classifying them. A chunk without a valid pixel is filled without the network."""
    model, _ = _model(3, 4, (16,), seed=21)
    fused = fused_classifier(model)
    assert fused is not None
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype) if dtype[0] in "ui" else None
    low, high = (max(info.min, 0), min(info.max, 9000)) if info else (0, 9000)
    x = rng.integers(low + 1, high, size=(3, 2 * CHUNK + 11)).astype(dtype)
    nodata = low  # a value of the raster's type
    x[1, ::7] = nodata
    x[:, CHUNK : 2 * CHUNK + 5] = nodata  # a whole chunk invalid (skips the network), and part of the next
    if dtype.startswith("float"):
        x[0, 3::11], x[2, 5::13] = np.nan, np.inf
    ids = np.array([10, 20, 30, 40], np.uint8)
    classes, confidence, probabilities, counts = fused.classify_block(x, float(nodata), ids, 255, -1.0, probabilities=True)
    valid = (x != nodata).all(axis=0) & np.isfinite(x.astype(np.float64)).all(axis=0)
    assert 0 < valid.sum() < x.shape[1]
    index, expected_conf, expected_probs = fused.classify(x[:, valid].astype(np.float32).T, probabilities=True)
    np.testing.assert_array_equal(classes[valid], ids[index])
    np.testing.assert_array_equal(confidence[valid], expected_conf)
    np.testing.assert_array_equal(probabilities[:, valid], expected_probs.T)
    assert (classes[~valid] == 255).all() and (confidence[~valid] == -1).all() and (probabilities[:, ~valid] == -1).all()
    np.testing.assert_array_equal(counts, np.bincount(index, minlength=4))


def test_raster_nodata_no_pixel_can_hold():
    """An integer raster cannot hold NaN, 0.5 or -9999 (unsigned): no pixel is nodata, as NumPy would compare."""
    model, _ = _model(3, 4, (8,), seed=22)
    fused = fused_classifier(model)
    assert fused is not None
    x = np.random.default_rng(4).integers(0, 3, size=(3, 300)).astype(np.uint16)  # holds zeros
    ids = np.arange(4, dtype=np.uint8)
    for nodata in (None, float("nan"), 0.5, -9999.0, 70000.0):
        classes, _, _, counts = fused.classify_block(x, nodata, ids, 255, -1.0)
        assert (classes != 255).all() and counts.sum() == x.shape[1], nodata
    classes, _, _, counts = fused.classify_block(x, 0.0, ids, 255, -1.0)
    assert ((classes == 255) == (x == 0).any(axis=0)).all() and counts.sum() == (x != 0).all(axis=0).sum()
