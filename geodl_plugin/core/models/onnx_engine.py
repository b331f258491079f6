"""Keras image networks run by onnxruntime for tiled prediction on a CPU.

Why: onnxruntime's convolutions (MLAS: blocked layouts, direct kernels for few channels) run a U-Net's
full-resolution layers (4 → 16, 16 → 16 channels) about twice as fast as XLA's or TensorFlow's, and a
temporal network's 1.2–3× as fast (``scripts/bench_unet.py``, ``bench_temporal.py``). The model file is
unchanged: the first time a loaded model predicts, its network is converted in memory (a U-Net: its graph
frozen and converted by tf2onnx, as the Deepness export does; a recurrent temporal network: written from its
weights, ``temporal_onnx``) and checked against Keras on small random tiles. Where Keras runs on a GPU, the
packages are missing, the conversion fails or the check disagrees, the caller keeps Keras (same answer;
slower on a CPU); the reason is logged.

The session is cached per Keras model object (a worker that keeps a model loaded converts it once).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Callable, Optional

import numpy as np

log = logging.getLogger("geodl")

OPSET = 17
TOLERANCE = 1e-4  # max |onnxruntime − Keras| of the check's probabilities
_SESSIONS: weakref.WeakKeyDictionary[Any, Optional[Callable[[np.ndarray], np.ndarray]]] = weakref.WeakKeyDictionary()


def frozen_onnx(graph: Any, signature: list) -> Any:
    """The ONNX model (``onnx.ModelProto``) of ``graph`` (a Keras model, called with ``training=False``) traced
    for ``signature`` with its variables frozen into constants, converted by tf2onnx."""
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    function = tf.function(lambda x: graph(x, training=False)).get_concrete_function(signature[0])
    frozen = convert_variables_to_constants_v2(function)
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # tf2onnx calls TensorFlow 1 APIs, each with a deprecation warning
    try:
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(),
            input_names=[t.name for t in frozen.inputs],
            output_names=[t.name for t in frozen.outputs],
            opset=OPSET,
        )
    finally:
        logger.setLevel(level)
    return proto


def onnx_predictor(model: Any, multiple: int = 1) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    """(n, h, w, bands) float32 → (n, h, w, classes) through onnxruntime, or None where it cannot be used
    (see the module notes). ``multiple``: the tile sizes the network takes are multiples of it (2^depth)."""
    if model in _SESSIONS:
        return _SESSIONS[model]
    predict = None
    try:
        predict = _convert(model, multiple)
    except Exception as exc:  # noqa: BLE001 - a missing package or any conversion failure: keep Keras
        log.info("Tiles run through Keras, not onnxruntime (%s).", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    _SESSIONS[model] = predict
    return predict


def keras_on_gpu() -> bool:
    """Whether Keras' backend computes on a GPU here (then it, not onnxruntime on the CPU, should run tiles)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if keras.backend.backend() == "torch":
        import torch

        return bool(torch.cuda.is_available())
    return True  # another backend: leave it to Keras


def _onnx_model(model: Any) -> Optional[Any]:
    """The network as an ``onnx.ModelProto`` (NHWC raw tiles in, NHWC probabilities out), or None."""
    import keras

    from .temporal_onnx import temporal_onnx

    if any(type(layer).__name__ == "ConvRecurrent2D" for layer in model.layers):
        return temporal_onnx(model)
    if keras.backend.backend() != "tensorflow" or any(type(layer).__name__ == "StackDates" for layer in model.layers):
        return None  # tf2onnx converts TensorFlow graphs (the stacked-dates baseline is 1×1 convolutions: XLA does)
    import tensorflow as tf

    signature = [tf.TensorSpec((None, None, None, int(model.input_shape[-1])), tf.float32)]
    return frozen_onnx(model, signature)


def _convert(model: Any, multiple: int) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    if len(tuple(model.input_shape)) != 4 or keras_on_gpu():
        return None
    import onnxruntime as ort

    proto = _onnx_model(model)
    if proto is None:
        return None
    options = ort.SessionOptions()
    # Idle worker threads sleep instead of spinning: between batches this process reads, blends and writes
    # on the same cores (and a shared machine has neighbours).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {name: np.ascontiguousarray(x, np.float32)})[0])

    diff = _check(model, predict, max(1, multiple))
    if not diff <= TOLERANCE:
        log.warning("onnxruntime's version of the network differs from Keras by %.2g; tiles run through Keras.", diff)
        return None
    return predict


def _check_tiles(model: Any, multiple: int) -> np.ndarray:
    """Two random tiles of raw values around the network's own normalisation statistics (a series: every
    date's bands, some dates missing, and its day of year)."""
    import keras

    bands = int(model.input_shape[-1])
    size = multiple * max(1, -(-16 // multiple))
    rng = np.random.default_rng(0)
    layers = {layer.name: layer for layer in model.layers}
    if "series_input" in layers:
        series = layers["series_input"]
        mean, std = np.asarray(series.mean, np.float32), np.sqrt(np.maximum(np.asarray(series.variance, np.float32), 1e-12))
        x = np.empty((2, size, size, series.n_dates, len(mean) + 1), np.float32)
        x[..., :-1] = mean + std * rng.uniform(-3, 3, x[..., :-1].shape)
        x[..., -1] = np.linspace(1, 365, series.n_dates, dtype=np.float32)
        x[rng.random(x.shape[:4]) < 0.2, 0] = np.nan  # missing observations
        return x.reshape(2, size, size, bands)
    mean, std = np.zeros(bands, np.float32), np.ones(bands, np.float32)
    if "normalize" in layers:
        mean = np.asarray(keras.ops.convert_to_numpy(layers["normalize"].mean), np.float32).reshape(-1)[:bands]
        std = np.sqrt(np.asarray(keras.ops.convert_to_numpy(layers["normalize"].variance), np.float32).reshape(-1)[:bands])
    return (mean + std * rng.uniform(-3, 3, (2, size, size, bands))).astype(np.float32)


def _check(model: Any, predict: Callable[[np.ndarray], np.ndarray], multiple: int) -> float:
    """Max |onnxruntime − Keras| on :func:`_check_tiles`."""
    import keras

    x = _check_tiles(model, multiple)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    return float(np.abs(predict(x) - expected).max())
