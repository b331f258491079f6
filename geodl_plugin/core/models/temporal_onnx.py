"""The recurrent temporal network (``temporal.build_temporal_model``, gru / lstm) written as an ONNX graph from
its weights, for onnxruntime to run tiled prediction.

Why by hand: onnxruntime's convolutions run this network's shapes 1.2–3× faster than XLA's on a CPU (the
input-to-gate convolution of all dates at once, 7 → 96 channels: ~3×; the state-to-gate one, 16 → 48: ~1.3×),
but tf2onnx turns the date loop into tensor-list code onnxruntime rejects. The graph here is channels-first
from the first layer to the last, with the dates unrolled (the number of dates is fixed per model): per
recurrent layer, one convolution of every date's input for both directions, then per date one convolution of
the state and the gate arithmetic. It computes what the Keras layers compute (``SeriesInput``: missing
observations, day-of-year encoding; ``ConvRecurrent2D``: a state kept where a date is not observed) and
``onnx_engine`` checks it against Keras before using it.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

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


def temporal_onnx(model: Any) -> Optional[Any]:
    """The ONNX model (input (n, h, w, dates·(bands+1)) raw values, output (n, h, w, classes)
    probabilities), or None for a network this does not write (the stacked-dates baseline)."""
    from onnx import TensorProto

    w = _weights(model)
    if w is None:
        return None
    g = _Graph()
    h = g.helper
    n_dates, n_bands = w["n_dates"], len(w["mean"])
    x = g.op("Reshape", "series", g.const(np.array([0, 0, 0, n_dates, n_bands + 1], np.int64)))
    x = g.op("Transpose", x, perm=[0, 3, 4, 1, 2])  # (n, T, B+1, h, w)
    shape = g.op("Shape", x)
    batch_dates = g.op("Slice", shape, g.const(np.array([0], np.int64)), g.const(np.array([2], np.int64)))
    spatial = g.op("Slice", shape, g.const(np.array([3], np.int64)), g.const(np.array([5], np.int64)))
    features, observed = _series_features(g, x, w, n_bands)
    sequence, channels = features, n_bands + 3
    state = ""
    for level in w["layers"]:
        sequence, state, channels = _recurrent_layer(g, sequence, observed, level, channels, n_dates, batch_dates, spatial)
    k = int(w["head_kernel"].shape[0])
    logits = g.op("Conv", state, g.const(_oihw(w["head_kernel"]), "head"), g.const(w["head_bias"], "head_bias"), pads=_pads(k))
    g.op("Transpose", g.op("Softmax", logits, axis=1), perm=[0, 2, 3, 1], output="probabilities")
    channels_in = n_dates * (n_bands + 1)
    graph = h.make_graph(
        g.nodes,
        "geodl_temporal",
        [h.make_tensor_value_info("series", TensorProto.FLOAT, ["n", "h", "w", channels_in])],
        [h.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", "h", "w", int(w["head_bias"].shape[0])])],
        g.initializers,
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="geodl")


def _series_features(g: _Graph, x: str, w: dict, n_bands: int) -> tuple[str, str]:
    """``SeriesInput``: (n, T, B+1, h, w) raw → features (n, T, B+3, h, w) and observed (n, T, 1, h, w)."""
    axis = g.const(np.array([2], np.int64))
    bands = g.op("Slice", x, g.const(np.array([0], np.int64)), g.const(np.array([n_bands], np.int64)), axis)
    doy = g.op("Slice", x, g.const(np.array([n_bands], np.int64)), g.const(np.array([n_bands + 1], np.int64)), axis)

    def finite(v: str) -> str:
        return g.op("Not", g.op("Or", g.op("IsNaN", v), g.op("IsInf", v)))

    ok = finite(bands)
    observed = g.op("ReduceMin", g.op("Cast", ok, to=1), axes=[2], keepdims=1)  # all bands finite (float 0/1)
    mean = g.const(w["mean"].reshape(1, 1, -1, 1, 1), "mean")
    std = g.const(w["std"].reshape(1, 1, -1, 1, 1), "std")
    z = g.op("Mul", g.op("Div", g.op("Sub", g.op("Where", ok, bands, mean), mean), std), observed)
    angle = g.op("Mul", g.op("Where", finite(doy), doy, g.const(np.float32(0))), g.const(np.float32(2.0 * math.pi / 365.25)))
    return g.op("Concat", z, g.op("Sin", angle), g.op("Cos", angle), observed, axis=2), observed


def _recurrent_layer(
    g: _Graph, sequence: str, observed: str, directions: list[dict], channels: int, n_dates: int, batch_dates: str, spatial: str
) -> tuple[str, str, int]:
    """One (bi)directional ConvGRU/ConvLSTM level: (sequence of its outputs (n, T, D·F, h, w) or "", the last
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
    """The date loop of one direction, unrolled: (last state, every date's state in date order)."""
    f, cell_type = d["filters"], d["cell"]
    recurrent = g.const(_oihw(d["recurrent_kernel"]), "recurrent_kernel")
    n_parts = 3 if cell_type == "gru" else 4
    order = list(range(n_dates - 1, -1, -1)) if d["reverse"] else list(range(n_dates))
    state: Optional[str] = None
    cell: Optional[str] = None
    states: dict[int, str] = {}
    one = g.const(np.float32(1.0))
    for t in order:
        index = g.const(np.int64(t))
        gx = g.op("Gather", gates, index, axis=1)  # (n, gates·F, h, w)
        m = g.op("Gather", observed, index, axis=1)  # (n, 1, h, w)
        hg = g.op("Conv", state, recurrent, pads=_pads(k)) if state is not None else None  # zero state: no term
        if cell_type == "gru":
            xz, xr, xn = g.op("Split", gx, g.const(np.array([f] * n_parts, np.int64)), axis=1, outputs=n_parts)
            if state is None or hg is None:
                z, cand = g.op("Sigmoid", xz), g.op("Tanh", xn)
                state = g.op("Mul", m, g.op("Mul", g.op("Sub", one, z), cand))
            else:
                hz, hr, hn = g.op("Split", hg, g.const(np.array([f] * n_parts, np.int64)), axis=1, outputs=n_parts)
                z = g.op("Sigmoid", g.op("Add", xz, hz))
                r = g.op("Sigmoid", g.op("Add", xr, hr))
                cand = g.op("Tanh", g.op("Add", xn, g.op("Mul", r, hn)))
                step = g.op("Mul", m, g.op("Mul", g.op("Sub", one, z), g.op("Sub", cand, state)))
                state = g.op("Add", state, step)
        else:
            pre = g.op("Add", gx, hg) if hg is not None else gx
            pi, pf, po, pc = g.op("Split", pre, g.const(np.array([f] * n_parts, np.int64)), axis=1, outputs=n_parts)
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
