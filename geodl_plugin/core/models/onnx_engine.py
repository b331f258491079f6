"""Keras image networks run by onnxruntime for tiled prediction on a CPU.

Why: onnxruntime's convolutions (MLAS: blocked layouts, direct kernels for few channels) run a U-Net's
full-resolution layers (4 → 16, 16 → 16 channels) about twice as fast as XLA's or TensorFlow's, and a
temporal network's 1.2–3× as fast (``scripts/bench_unet.py``, ``bench_temporal.py``). The model file is
unchanged: the first time a loaded model predicts, its network is converted in memory (a U-Net: its graph
frozen and converted by tf2onnx, as the Deepness export does; a recurrent temporal network: written from its
weights, ``temporal_onnx``) and checked against Keras on small random tiles. Where Keras runs on a GPU, the
packages are missing, the conversion fails or the check disagrees, the caller keeps Keras (same answer;
slower on a CPU); the reason is logged. Three rewrites of the graph before onnxruntime sees it
(:func:`explicit_softmax`, :func:`channels_first_input`, :func:`without_layout_transposes`) took a U-Net's
tiles from 1.28–1.37× to 1.18–1.26× their FLOP bound.

The conversion is cached per Keras model object (a worker that keeps a model loaded converts it once); a
temporal network keeps a session for each of its last few tile batch shapes.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

log = logging.getLogger("geodl")

OPSET = 17
TOLERANCE = 1e-4  # max |onnxruntime − Keras| of the check's probabilities
_SESSIONS: weakref.WeakKeyDictionary[Any, Optional[TileNetwork]] = weakref.WeakKeyDictionary()


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


def onnx_predictor(model: Any, multiple: int = 1) -> Optional[TileNetwork]:
    """The network on tile batches through onnxruntime (:class:`TileNetwork`: (n, h, w, bands) float32 → (n,
    h, w, classes), or channels first), or None where it cannot be used (see the module notes).
    ``multiple``: the tile sizes the network takes are multiples of it (2^depth)."""
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


class TileNetwork:
    """A network run on batches of tiles, in either layout. ``network(x)``: (n, h, w, bands) → (n, h, w,
    classes), as Keras takes and gives them; ``network.channels_first(x)``: (n, bands, h, w) → (n, classes, h,
    w), as rasters are read. ``run`` computes in one of them (``first``: channels first) and the other goes
    through two transposing copies. A series' tiles have many channels (18 dates × 5: 90): read, cut and run
    channels first they skip a copy in NumPy and a transpose in the graph, ~10 ms a 4-tile strip each."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], first: bool = False) -> None:
        self.run, self.first = run, first

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if not self.first:
            return self.run(x)
        return np.moveaxis(self.run(np.ascontiguousarray(np.moveaxis(x, -1, 1))), 1, -1)

    def channels_first(self, x: np.ndarray) -> np.ndarray:
        if self.first:
            return self.run(x)
        return np.moveaxis(self.run(np.ascontiguousarray(np.moveaxis(x, 1, -1))), -1, 1)


@dataclass(frozen=True)
class _Graphs:
    """How a network is written for onnxruntime: ``graph(shape)`` gives it as an ``onnx.ModelProto`` for a tile
    batch of ``shape`` ((n, h, w), or () for a graph that serves every shape; None when it cannot be written),
    ``temporal`` says it is written per shape, ``first`` that it takes and gives tiles channels first, and
    ``inputs`` turns a batch of raw tiles into the graph's input."""

    graph: Callable[[tuple[int, ...]], Any]
    temporal: bool
    first: bool
    inputs: Callable[[np.ndarray], np.ndarray] = lambda x: x


def _graphs(model: Any) -> Optional[_Graphs]:
    """The network as onnxruntime will run it, or None for a network not converted. A U-Net's graph serves
    every shape (converted once; declared sizes were measured not to speed it up); a temporal network's is
    written per shape, whose declared sizes let onnxruntime fuse its gates, and takes each date's features
    (``temporal_onnx``)."""
    import keras

    from .temporal_onnx import date_features, series_mean, temporal_onnx

    if any(type(layer).__name__ == "ConvRecurrent2D" for layer in model.layers):
        mean = series_mean(model)
        if mean is None:
            return None

        def per_shape(shape: tuple[int, ...]) -> Any:
            return _softmax_written_out(temporal_onnx(model, shape))

        return _Graphs(per_shape, True, True, lambda x: date_features(x, len(mean), mean))
    if keras.backend.backend() != "tensorflow" or any(type(layer).__name__ == "StackDates" for layer in model.layers):
        return None  # tf2onnx converts TensorFlow graphs (the stacked-dates baseline is 1×1 convolutions: XLA does)
    import tensorflow as tf

    proto = channels_first_input(
        explicit_softmax(frozen_onnx(model, [tf.TensorSpec((None, None, None, int(model.input_shape[-1])), tf.float32)]))
    )
    first = without_layout_transposes(proto)
    return _Graphs(lambda shape: proto, False, first)


def _softmax_written_out(proto: Optional[Any]) -> Optional[Any]:
    return None if proto is None else explicit_softmax(proto)


def explicit_softmax(proto: Any) -> Any:
    """``proto`` with every Softmax written as exp(x − max) / sum over its axis (five plain ops). onnxruntime
    moves a network's last NCHW → NHWC transpose past the softmax, then runs Softmax across the channel axis
    of an NCHW tensor by transposing it there and back: 16 ms for a 4 × 256² × 4-class batch, 9 % of a
    U-Net's tiles. The explicit ops run across channels as broadcasts: 2.3 ms (measured here)."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    nodes = []
    for node in graph.node:
        if node.op_type != "Softmax":
            nodes.append(node)
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)  # (opset ≥ 13: one axis; may be < 0)
        x, y, tag = node.input[0], node.output[0], node.output[0] + "_softmax"
        axes = numpy_helper.from_array(np.array([axis], np.int64), tag + "_axes")
        graph.initializer.append(axes)
        nodes += [
            helper.make_node("ReduceMax", [x], [tag + "_max"], axes=[axis], keepdims=1),
            helper.make_node("Sub", [x, tag + "_max"], [tag + "_shifted"]),
            helper.make_node("Exp", [tag + "_shifted"], [tag + "_exp"]),
            helper.make_node("ReduceSum", [tag + "_exp", axes.name], [tag + "_sum"], keepdims=1),
            helper.make_node("Div", [tag + "_exp", tag + "_sum"], [y]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    return proto


def channels_first_input(proto: Any) -> Any:
    """``proto`` with a leading chain of per-band arithmetic on the NHWC input (a U-Net's normalisation: Sub,
    Mul by band vectors) moved after the graph's transpose to NCHW, their vectors reshaped to (C, 1, 1).
    onnxruntime broadcasts a length-C vector over an NHWC tensor in C-element runs, 9 ms for a 4 × 256² ×
    4-band batch; over NCHW planes the same ops take a fraction of that. Graphs of another shape are
    returned unchanged."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    if len(graph.input) != 1:
        return proto
    constants = {init.name: init for init in graph.initializer}
    users: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1
    current, chain = graph.input[0].name, []
    for node in graph.node:
        vector = constants.get(node.input[1]) if len(node.input) == 2 else None
        per_band = vector is not None and len(vector.dims) >= 1 and all(d == 1 for d in vector.dims[:-1])  # (C,), (1, 1, 1, C)
        if node.op_type in ("Sub", "Mul", "Add", "Div") and node.input[0] == current and users.get(current) == 1 and per_band:
            chain.append(node)
            current = node.output[0]
            continue
        transpose = node
        break
    else:
        return proto
    perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), None)
    if not chain or transpose.op_type != "Transpose" or transpose.input[0] != current or perm != [0, 3, 1, 2] or users.get(current) != 1:
        return proto
    moved = [helper.make_node("Transpose", [graph.input[0].name], [transpose.output[0] + "_input_nchw"], perm=perm)]
    current = moved[0].output[0]
    for number, node in enumerate(chain):
        vector = numpy_helper.to_array(constants[node.input[1]]).reshape(-1, 1, 1)
        plane = numpy_helper.from_array(np.ascontiguousarray(vector), f"{node.input[1]}_nchw")
        graph.initializer.append(plane)
        output = transpose.output[0] if number == len(chain) - 1 else node.output[0] + "_nchw"
        moved.append(helper.make_node(node.op_type, [current, plane.name], [output]))
        current = output
    rest = [node for node in graph.node if node not in chain and node is not transpose]
    del graph.node[:]
    graph.node.extend(moved + rest)
    return proto


def without_layout_transposes(proto: Any) -> bool:
    """Drop ``proto``'s leading NHWC → NCHW and trailing NCHW → NHWC transposes, so it takes and gives tiles
    channels first (as rasters are read, and as the blending wants them): True if both were there and went
    (the graph's declared input and output shapes permuted to match), False (``proto`` unchanged) if not."""
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1 or len(graph.node) < 2:
        return False
    first, last = graph.node[0], graph.node[len(graph.node) - 1]
    perm = lambda node: next((list(a.ints) for a in node.attribute if a.name == "perm"), None)  # noqa: E731
    if not (first.op_type == "Transpose" and first.input[0] == graph.input[0].name and perm(first) == [0, 3, 1, 2]):
        return False
    if not (last.op_type == "Transpose" and last.output[0] == graph.output[0].name and perm(last) == [0, 2, 3, 1]):
        return False
    start, end = first.output[0], last.input[0]
    body = list(graph.node)[1:-1]
    if any(end in node.input for node in body):  # the channels-first result is used inside too: leave it
        return False
    for node in body:
        for i, name in enumerate(node.input):
            if name == start:
                node.input[i] = graph.input[0].name
        for i, name in enumerate(node.output):
            if name == end:
                node.output[i] = graph.output[0].name
    del graph.node[:]
    graph.node.extend(body)
    for value in (graph.input[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4:
            copies = [type(dims[0])() for _ in range(4)]
            for target, source in zip(copies, (dims[0], dims[3], dims[1], dims[2])):
                target.CopyFrom(source)
            del dims[:]
            dims.extend(copies)
    return True


SHAPES_KEPT = 3  # sessions kept per network written per shape: a prediction's full batch, its last one, the check's


def _convert(model: Any, multiple: int) -> Optional[TileNetwork]:
    if len(tuple(model.input_shape)) != 4 or keras_on_gpu():
        return None
    import onnxruntime as ort

    written = _graphs(model)
    if written is None:
        return None
    options = ort.SessionOptions()
    # Worker threads spin between the operators of a run (a sleeping thread woken for each of a U-Net's ~60
    # parallel operators cost 5-9% of a tiled prediction, interleaved runs here) and stop spinning when the
    # run ends: between batches this process reads, blends and writes on the same cores (and a shared
    # machine has neighbours).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3
    sessions: OrderedDict[tuple[int, ...], Any] = OrderedDict()  # by tile batch shape, or () for every shape
    lock = threading.Lock()  # a session runs from any thread; the cache is changed by one at a time

    def session(shape: tuple[int, ...]) -> Any:
        with lock:
            if shape not in sessions:
                proto = written.graph(shape)
                if proto is None:
                    raise ValueError("this network is not written for onnxruntime")
                sessions[shape] = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
                while len(sessions) > SHAPES_KEPT:
                    sessions.popitem(last=False)
            sessions.move_to_end(shape)
            return sessions[shape]

    def run(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        shape = (x.shape[0], x.shape[2], x.shape[3]) if written.temporal else ()  # temporal: channels first, per shape
        done = session(shape)
        return np.asarray(done.run(None, {done.get_inputs()[0].name: written.inputs(x)})[0])

    predict = TileNetwork(run, first=written.first)
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
