"""The recurrent temporal network (``temporal.build_temporal_model``, gru / lstm) written as an ONNX graph from
its weights, for onnxruntime to run tiled prediction.

Why by hand: onnxruntime's convolutions run this network's shapes 1.2–3× faster than XLA's on a CPU (the
input-to-gate convolution of all dates at once, 7 → 96 channels: ~3×; the state-to-gate one, 16 → 48: ~1.3×),
but tf2onnx turns the date loop into tensor-list code onnxruntime rejects. The graph here is channels-first
from the first layer to the last, with the dates unrolled (the number of dates is fixed per model). A ConvGRU
is written gate by gate so that onnxruntime keeps it in its blocked layout with the gate arithmetic fused
into the convolutions (:func:`_gru_levels`); a ConvLSTM as one convolution of every date's input per
recurrent layer, then per date one convolution of the state and the gate arithmetic. It computes what the
Keras layers compute (``SeriesInput``: missing
observations, day-of-year encoding; ``ConvRecurrent2D``: a state kept where a date is not observed) and
``onnx_engine`` checks it against Keras before using it.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .temporal import KEEP

OPSET = 17


class _Graph:
    """A tiny ONNX graph builder: every node gets fresh output names."""

    def __init__(self) -> None:
        from onnx import helper

        self.helper = helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value: Any, hint: str = "c") -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, output: str = "", **attrs: Any) -> Any:
        names = [output] if output else [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names


def _weights(model: Any) -> Optional[dict]:
    """The network's layers and weights as NumPy, or None when it is not a recurrent temporal network."""
    import keras

    def array(v: Any) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(v), np.float32)

    names = {layer.name: layer for layer in model.layers}
    series = names.get("series_input")
    head = names.get("probabilities")
    recurrent = [layer for layer in model.layers if type(layer).__name__ == "ConvRecurrent2D"]
    if series is None or head is None or not recurrent or getattr(head.activation, "__name__", "") != "softmax":
        return None
    layers: list[list[dict]] = []

    def order(layer: Any) -> tuple[int, bool]:  # "gru1_backward" → (1, True): by level, forward first
        return int("".join(c for c in layer.name.rsplit("_", 1)[0] if c.isdigit()) or 0), bool(layer.reverse)

    for layer in sorted(recurrent, key=order):
        level = layer.name.rsplit("_", 1)[0]
        if not layers or layers[-1][0]["level"] != level:
            layers.append([])
        layers[-1].append(
            {
                "level": level,
                "cell": layer.cell,
                "filters": layer.filters,
                "reverse": layer.reverse,
                "sequences": layer.return_sequences,
                "input_kernel": array(layer.input_kernel),
                "recurrent_kernel": array(layer.recurrent_kernel),
                "bias": array(layer.bias),
            }
        )
    return {
        "n_dates": series.n_dates,
        "mean": np.asarray(series.mean, np.float32),
        "std": np.sqrt(np.maximum(np.asarray(series.variance, np.float32), 1e-12)),
        "layers": layers,
        "head_kernel": array(head.kernel),
        "head_bias": array(head.bias),
    }


def _pads(k: int) -> list[int]:
    """Keras/TensorFlow "same" padding at stride 1: (k - 1) // 2 before, k // 2 after."""
    return [(k - 1) // 2, (k - 1) // 2, k // 2, k // 2]


def _oihw(kernel: np.ndarray) -> np.ndarray:
    """Keras (kh, kw, in, out) → ONNX (out, in, kh, kw)."""
    return np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)))


def block_channels() -> int:
    """The channel block of onnxruntime's blocked (NCHWc) convolutions on this CPU: 16 with AVX-512, else 8
    (MLAS' own choice). Tensors whose channels are a multiple of it stay blocked from one node to the next."""
    import importlib

    module = "numpy.core._multiarray_umath" if np.__version__.startswith("1.") else "numpy._core._multiarray_umath"
    features = getattr(importlib.import_module(module), "__cpu_features__", {})  # NumPy's own CPU detection
    return 16 if features.get("AVX512F") else 8


def temporal_onnx(model: Any, shape: Optional[tuple[int, ...]] = None, channels_first: bool = False) -> Optional[Any]:
    """The ONNX model (input (n, h, w, dates·(bands+1)) raw values, output (n, h, w, classes)
    probabilities; with ``channels_first``, (n, dates·(bands+1), h, w) and (n, classes, h, w)), or None for a
    network this does not write (the stacked-dates baseline). ``shape``: the (n, h, w) of the tiles it will
    run, declared in the graph (required channels first). onnxruntime proves tensors of equal shape only from
    declared sizes; with them a GRU's gate arithmetic stays in its blocked layout and fuses into the
    convolutions (:func:`_gru_levels`); without them every convolution's output is reordered back."""
    from onnx import TensorProto

    w = _weights(model)
    if w is None:
        return None
    g = _Graph()
    h = g.helper
    n_dates, n_bands = w["n_dates"], len(w["mean"])
    if channels_first:
        if shape is None:
            raise ValueError("a channels-first graph is written for one tile shape")
        n, rows, cols = shape
        x = g.op("Reshape", "series", g.const(np.array([n, n_dates, n_bands + 1, rows, cols], np.int64)))  # no copy
    else:
        x = g.op("Reshape", "series", g.const(np.array([0, 0, 0, n_dates, n_bands + 1], np.int64)))
        x = g.op("Transpose", x, perm=[0, 3, 4, 1, 2])  # (n, T, B+1, h, w)
    if w["layers"][0][0]["cell"] == "gru":
        state = _gru_levels(g, x, w, n_bands)
    else:
        shape_of = g.op("Shape", x)
        batch_dates = g.op("Slice", shape_of, g.const(np.array([0], np.int64)), g.const(np.array([2], np.int64)))
        spatial = g.op("Slice", shape_of, g.const(np.array([3], np.int64)), g.const(np.array([5], np.int64)))
        features, observed = _series_features(g, x, w, n_bands)
        sequence, channels = features, n_bands + 3
        for level in w["layers"]:
            sequence, state, channels = _recurrent_layer(g, sequence, observed, level, channels, n_dates, batch_dates, spatial)
    k = int(w["head_kernel"].shape[0])
    logits = g.op("Conv", state, g.const(_oihw(w["head_kernel"]), "head"), g.const(w["head_bias"], "head_bias"), pads=_pads(k))
    dims: list[Any] = list(shape) if shape is not None else ["n", "h", "w"]
    channels, classes = n_dates * (n_bands + 1), int(w["head_bias"].shape[0])
    if channels_first:
        g.op("Softmax", logits, axis=1, output="probabilities")
        put = lambda c: [dims[0], c, *dims[1:]]  # noqa: E731
    else:
        g.op("Transpose", g.op("Softmax", logits, axis=1), perm=[0, 2, 3, 1], output="probabilities")
        put = lambda c: [*dims, c]  # noqa: E731
    graph = h.make_graph(
        g.nodes,
        "geodl_temporal",
        [h.make_tensor_value_info("series", TensorProto.FLOAT, put(channels))],
        [h.make_tensor_value_info("probabilities", TensorProto.FLOAT, put(classes))],
        g.initializers,
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="geodl")


def _gru_levels(g: _Graph, x: str, w: dict, n_bands: int) -> str:
    """The ConvGRU levels, written for onnxruntime's blocked convolutions: the last states side by side.

    Each date's input (its features, then a "keep" channel: 0 where observed, −KEEP where not) comes out of
    one 1×1 convolution that also z-scores the bands. Per date and direction, the update gate is computed as
    u = 1 − z = sigmoid(−pre-activation) (the kernels negated) from one convolution of [input, state] whose
    keep channel saturates it to 0 where the date is unobserved (the state is then kept, as ``KEEP`` does in
    Keras); the reset gate from the same [input, state]; the candidate n = tanh(x_n + r·h_n) from the input's
    and the state's own convolutions, the sum and the tanh fused into the first. The step h + u·(n − h) takes
    n − h as a 1×1 convolution of h (weights −I) with n added in. So no gate is split out of a wider tensor
    and no tensor leaves the blocked layout until the head: about 1.3× faster than convolutions over all
    gates followed by splits and elementwise ops (18 dates, 16 filters, 96² tiles, 2 cores)."""
    n_dates = w["n_dates"]
    c_in = n_bands + 3
    block = block_channels()
    width = -(-(c_in + 1) // block) * block  # the features and the keep channel, padded to whole blocks
    bands, doy = g.op("Split", x, g.const(np.array([n_bands, 1], np.int64)), axis=2, outputs=2)  # one pass, not two slices
    observed = g.op("ReduceMin", g.op("Cast", _finite(g, bands), to=1), axes=[2], keepdims=1)  # (n, T, 1, h, w) 0/1
    # A date missing any band is missing: all its bands become the mean, which the 1×1 convolution maps to 0.
    mean = w["mean"].reshape(1, 1, -1, 1, 1)
    clean = g.op("Where", g.op("Cast", observed, to=9), bands, g.const(mean, "mean"))
    angle = g.op("Mul", g.op("Where", _finite(g, doy), doy, g.const(np.float32(0))), g.const(np.float32(2.0 * math.pi / 365.25)))
    features = g.op("Concat", clean, g.op("Sin", angle), g.op("Cos", angle), observed, axis=2)  # (n, T, B+3, h, w)
    weights = np.zeros((width, c_in), np.float32)
    bias = np.zeros(width, np.float32)
    weights[np.arange(c_in), np.arange(c_in)] = 1.0
    weights[np.arange(n_bands), np.arange(n_bands)] = 1.0 / w["std"]
    bias[:n_bands] = -w["mean"] / w["std"]
    weights[c_in, c_in - 1] = KEEP  # keep = KEEP·observed − KEEP: exactly 0 or −KEEP (every other term is 0)
    bias[c_in] = -KEEP
    pre = g.const(weights.reshape(width, c_in, 1, 1), "date_input"), g.const(bias, "date_input_bias")
    dates = [g.op("Conv", g.op("Gather", features, g.const(np.int64(t)), axis=1), *pre) for t in range(n_dates)]
    inputs, channels, places, keep = dates, width, np.arange(c_in), c_in
    last: list[str] = []
    for number, level in enumerate(w["layers"]):
        states = [_gru_direction(g, d, inputs, channels, places, keep, n_dates) for d in level]  # forward first
        if number == len(w["layers"]) - 1:
            last = [s[0] if d["reverse"] else s[n_dates - 1] for s, d in zip(states, level)]
            return g.op("Concat", *last, axis=1) if len(last) > 1 else last[0]
        # The next level's input: this level's states side by side, then the date's input (for its keep channel).
        inputs = [g.op("Concat", *[s[t] for s in states], dates[t], axis=1) for t in range(n_dates)]
        f = sum(d["filters"] for d in level)
        channels, places, keep = f + width, np.arange(f), f + c_in
    raise ValueError("a temporal network has at least one recurrent level")


def _gru_direction(g: _Graph, d: dict, inputs: list[str], channels: int, places: np.ndarray, keep: int, n_dates: int) -> dict[int, str]:
    """One ConvGRU direction over the dates (see :func:`_gru_levels`): every date's state by date index.
    ``inputs``: each date's input tensor, of ``channels`` channels; ``places``: where the Keras input
    kernel's channels sit in it; ``keep``: the channel holding 0 / −KEEP."""
    f, k = d["filters"], int(d["input_kernel"].shape[0])
    pads, centre = _pads(k), (k - 1) // 2
    wx, wh, b = _oihw(d["input_kernel"]), _oihw(d["recurrent_kernel"]), d["bias"]

    def placed(kernel: np.ndarray, keep_weight: float) -> np.ndarray:  # (f, in, k, k) → (f, channels, k, k)
        out = np.zeros((f, channels, k, k), np.float32)
        out[:, places] = kernel
        out[:, keep, centre, centre] = keep_weight
        return out

    gate = lambda a, i: a[i * f : (i + 1) * f]  # noqa: E731 - z, r, n in Keras' order
    x_u = placed(-gate(wx, 0), 1.0)  # u = 1 − z: negated; the keep channel drives it to 0 where unobserved
    w_u = g.const(np.concatenate([x_u, -gate(wh, 0)], axis=1), "update")
    w_r = g.const(np.concatenate([placed(gate(wx, 1), 0.0), gate(wh, 1)], axis=1), "reset")
    x_u0, x_n, h_n = g.const(x_u, "update_first"), g.const(placed(gate(wx, 2), 0.0), "candidate"), g.const(gate(wh, 2), "candidate_state")
    b_u, b_r, b_n = g.const(-gate(b, 0), "update_bias"), g.const(gate(b, 1), "reset_bias"), g.const(gate(b, 2), "candidate_bias")
    minus = g.const(-np.eye(f, dtype=np.float32).reshape(f, f, 1, 1), "minus_state")
    state: Optional[str] = None
    states: dict[int, str] = {}
    for t in range(n_dates - 1, -1, -1) if d["reverse"] else range(n_dates):
        x_t = inputs[t]
        if state is None:  # the first date: an all-zero state, no recurrent term
            u = g.op("Sigmoid", g.op("Conv", x_t, x_u0, b_u, pads=pads))
            state = g.op("Mul", u, g.op("Tanh", g.op("Conv", x_t, x_n, b_n, pads=pads)))
        else:
            both = g.op("Concat", x_t, state, axis=1)
            r = g.op("Sigmoid", g.op("Conv", both, w_r, b_r, pads=pads))
            reset = g.op("Mul", r, g.op("Conv", state, h_n, pads=pads))
            n = g.op("Tanh", g.op("Add", g.op("Conv", x_t, x_n, b_n, pads=pads), reset))
            u = g.op("Sigmoid", g.op("Conv", both, w_u, b_u, pads=pads))
            step = g.op("Mul", u, g.op("Add", n, g.op("Conv", state, minus)))
            state = g.op("Add", state, step)
        states[t] = state
    return states


def _finite(g: _Graph, v: str) -> str:
    return g.op("Not", g.op("Or", g.op("IsNaN", v), g.op("IsInf", v)))


def _series_features(g: _Graph, x: str, w: dict, n_bands: int) -> tuple[str, str]:
    """``SeriesInput``: (n, T, B+1, h, w) raw → features (n, T, B+3, h, w) and observed (n, T, 1, h, w)."""
    bands, doy = g.op("Split", x, g.const(np.array([n_bands, 1], np.int64)), axis=2, outputs=2)

    ok = _finite(g, bands)
    observed = g.op("ReduceMin", g.op("Cast", ok, to=1), axes=[2], keepdims=1)  # all bands finite (float 0/1)
    mean = g.const(w["mean"].reshape(1, 1, -1, 1, 1), "mean")
    std = g.const(w["std"].reshape(1, 1, -1, 1, 1), "std")
    z = g.op("Mul", g.op("Div", g.op("Sub", g.op("Where", ok, bands, mean), mean), std), observed)
    angle = g.op("Mul", g.op("Where", _finite(g, doy), doy, g.const(np.float32(0))), g.const(np.float32(2.0 * math.pi / 365.25)))
    return g.op("Concat", z, g.op("Sin", angle), g.op("Cos", angle), observed, axis=2), observed


def _recurrent_layer(
    g: _Graph, sequence: str, observed: str, directions: list[dict], channels: int, n_dates: int, batch_dates: str, spatial: str
) -> tuple[str, str, int]:
    """One (bi)directional ConvLSTM level: (sequence of its outputs (n, T, D·F, h, w) or "", the last
    states side by side (n, D·F, h, w), D·F)."""
    k = int(directions[0]["input_kernel"].shape[0])
    # every date's input-to-gate convolution at once, one per direction (one for both, then split in two,
    # copied the whole (n, T, gates, h, w) tensor once more)
    flat = g.op("Reshape", sequence, g.op("Concat", g.const(np.array([-1, channels], np.int64)), spatial, axis=0))
    parts = []
    for d in directions:
        gates = g.op("Conv", flat, g.const(_oihw(d["input_kernel"]), "input_kernel"), g.const(d["bias"], "bias"), pads=_pads(k))
        width = g.const(np.array([int(d["input_kernel"].shape[-1])], np.int64))
        parts.append(g.op("Reshape", gates, g.op("Concat", batch_dates, width, spatial, axis=0)))
    lasts, sequences = [], []
    for d, part in zip(directions, parts):
        last, states = _direction(g, d, part, observed, n_dates, k)
        lasts.append(last)
        if d["sequences"]:
            unsqueezed = [g.op("Unsqueeze", s, g.const(np.array([1], np.int64))) for s in states]
            sequences.append(g.op("Concat", *unsqueezed, axis=1))
    f = sum(d["filters"] for d in directions)
    last = g.op("Concat", *lasts, axis=1) if len(lasts) > 1 else lasts[0]
    seq = (g.op("Concat", *sequences, axis=2) if len(sequences) > 1 else sequences[0]) if sequences else ""
    return seq, last, f


def _direction(g: _Graph, d: dict, gates: str, observed: str, n_dates: int, k: int) -> tuple[str, list[str]]:
    """The date loop of one ConvLSTM direction, unrolled: (last state, every date's state in date order)."""
    f = d["filters"]
    recurrent = g.const(_oihw(d["recurrent_kernel"]), "recurrent_kernel")
    order = list(range(n_dates - 1, -1, -1)) if d["reverse"] else list(range(n_dates))
    state: Optional[str] = None
    cell: Optional[str] = None
    states: dict[int, str] = {}
    for t in order:
        index = g.const(np.int64(t))
        gx = g.op("Gather", gates, index, axis=1)  # (n, gates·F, h, w)
        m = g.op("Gather", observed, index, axis=1)  # (n, 1, h, w)
        pre = g.op("Add", gx, g.op("Conv", state, recurrent, pads=_pads(k))) if state is not None else gx  # zero state: no term
        pi, pf, po, pc = g.op("Split", pre, g.const(np.array([f] * 4, np.int64)), axis=1, outputs=4)
        i, o, cand = g.op("Sigmoid", pi), g.op("Sigmoid", po), g.op("Tanh", pc)
        new_cell = g.op("Mul", i, cand) if cell is None else g.op("Add", g.op("Mul", g.op("Sigmoid", pf), cell), g.op("Mul", i, cand))
        new = g.op("Mul", o, g.op("Tanh", new_cell))
        if state is None or cell is None:
            state, cell = g.op("Mul", m, new), g.op("Mul", m, new_cell)
        else:
            state = g.op("Add", state, g.op("Mul", m, g.op("Sub", new, state)))
            cell = g.op("Add", cell, g.op("Mul", m, g.op("Sub", new_cell, cell)))
        states[t] = state
    assert state is not None
    return state, [states[t] for t in range(n_dates)]
