"""A Keras image network run by onnxruntime, for tiled prediction on the TensorFlow backend.

Why: on a CPU, onnxruntime's convolutions (MLAS, blocked layouts, direct kernels for few channels) run a
U-Net's full-resolution layers (4 → 16, 16 → 16 channels) about twice as fast as XLA's or TensorFlow's, and
the whole network near the machine's matmul rate (``scripts/bench_unet.py``). The model file is unchanged:
the network's graph is frozen and converted in memory (tf2onnx, as the Deepness export does) the first time
a loaded model predicts, then checked against Keras on a small random tile. If the packages are missing, the
backend is not TensorFlow, the conversion fails or the check disagrees, the caller keeps Keras (same answer,
slower); the reason is logged.

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


def _convert(model: Any, multiple: int) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    import keras

    if keras.backend.backend() != "tensorflow":
        return None  # tf2onnx converts TensorFlow graphs; torch's own convolutions are fast on a CPU
    import onnxruntime as ort
    import tensorflow as tf

    shape = tuple(model.input_shape)
    if len(shape) != 4:
        return None
    signature = [tf.TensorSpec((None, None, None, int(shape[-1])), tf.float32)]
    proto = frozen_onnx(model, signature)
    options = ort.SessionOptions()
    # Idle worker threads sleep instead of spinning: between batches this process reads, blends and writes
    # on the same cores (and a shared machine has neighbours).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {name: np.ascontiguousarray(x, np.float32)})[0])

    diff = _check(model, predict, int(shape[-1]), max(1, multiple))
    if not diff <= TOLERANCE:
        log.warning("onnxruntime's conversion of the network differs from Keras by %.2g; tiles run through Keras.", diff)
        return None
    return predict


def _check(model: Any, predict: Callable[[np.ndarray], np.ndarray], bands: int, multiple: int) -> float:
    """Max |onnxruntime − Keras| on two random tiles of values around the network's normalisation statistics."""
    import keras

    mean, std = np.zeros(bands, np.float32), np.ones(bands, np.float32)
    try:
        norm = model.get_layer("normalize")
        mean = np.asarray(keras.ops.convert_to_numpy(norm.mean), np.float32).reshape(-1)[:bands]
        std = np.sqrt(np.asarray(keras.ops.convert_to_numpy(norm.variance), np.float32).reshape(-1)[:bands])
    except (ValueError, AttributeError):
        pass
    size = multiple * max(1, -(-16 // multiple))
    rng = np.random.default_rng(0)
    x = (mean + std * rng.uniform(-3, 3, (2, size, size, bands))).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    return float(np.abs(predict(x) - expected).max())
