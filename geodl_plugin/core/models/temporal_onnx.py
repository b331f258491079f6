"""The recurrent temporal network (``temporal.build_temporal_model``, gru / lstm) written as an ONNX graph from
its weights, for onnxruntime to run tiled prediction.

Why by hand: onnxruntime's convolutions run this network's shapes 1.2–3× faster than XLA's on a CPU (the
input-to-gate convolution of all dates at once, 7 → 96 channels: ~3×; the state-to-gate one, 16 → 48: ~1.3×),
but tf2onnx turns the date loop into tensor-list code onnxruntime rejects. The graph here is channels-first
from the first layer to the last, with the dates unrolled (the number of dates is fixed per model). A ConvGRU
or ConvLSTM is written gate by gate so that onnxruntime keeps it in its blocked layout with the gate
arithmetic fused into the convolutions (:func:`_levels`). It computes what the Keras layers compute
(``SeriesInput``: missing observations, day-of-year encoding, prepared outside the graph by
:func:`date_features`; ``ConvRecurrent2D``: a state kept where a date is not observed) and ``onnx_engine``
checks it against Keras before using it.
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

    def op(self, op_type: str, *inputs: str, output: str = "", **attrs: Any) -> str:
        name = output or self.name(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [name], **attrs))
        return name


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


def temporal_onnx(model: Any, shape: tuple[int, ...]) -> Optional[Any]:
    """The ONNX model for tiles of ``shape`` (n, h, w), channels first: input (n, dates, bands+3, h, w) date
    features (:func:`date_features` of the raw tiles), output (n, classes, h, w) probabilities; or None for a
    network this does not write (the stacked-dates baseline). The sizes are declared in the graph because
    onnxruntime proves tensors of equal shape only from declared sizes; with them the gate arithmetic stays in
    its blocked layout and fuses into the convolutions (:func:`_levels`); without them every convolution's
    output is reordered back."""
    from onnx import TensorProto

    w = _weights(model)
    if w is None:
        return None
    g = _Graph()
    h = g.helper
    n_dates, n_bands = w["n_dates"], len(w["mean"])
    n, rows, cols = shape
    state = _levels(g, "features", w, n_bands)
    k = int(w["head_kernel"].shape[0])
    logits = g.op("Conv", state, g.const(_oihw(w["head_kernel"]), "head"), g.const(w["head_bias"], "head_bias"), pads=_pads(k))
    g.op("Softmax", logits, axis=1, output="probabilities")
    classes = int(w["head_bias"].shape[0])
    graph = h.make_graph(
        g.nodes,
        "geodl_temporal",
        [h.make_tensor_value_info("features", TensorProto.FLOAT, [n, n_dates, n_bands + 3, rows, cols])],
        [h.make_tensor_value_info("probabilities", TensorProto.FLOAT, [n, classes, rows, cols])],
        g.initializers,
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="geodl")


def series_mean(model: Any) -> Optional[np.ndarray]:
    """The band means of a temporal network's input (``SeriesInput``), or None for another network."""
    layer = next((layer for layer in model.layers if layer.name == "series_input"), None)
    return None if layer is None else np.asarray(layer.mean, np.float32)


def date_features(x: np.ndarray, n_bands: int, mean: np.ndarray) -> np.ndarray:
    """Raw tiles (n, dates·(bands+1), h, w), channels first (per date its bands then its day of year, NaN where
    not observed) → (n, dates, bands+3, h, w): per date its bands, all of them set to the band means where the
    date is missing any band (not finite), the sine and cosine of its day-of-year angle, and 1 where observed
    else 0. What ``SeriesInput`` computes before its z-scores, done here in a few NumPy passes over the tiles:
    as the graph's first ops (split, finiteness tests, where, sin, cos, concat) it took ~10% of the network's
    time. The day of year is one value per date over a tile (as tiled prediction reads a series): its sine
    and cosine are then taken once per date."""
    n, channels, h, w = x.shape
    n_dates = channels // (n_bands + 1)
    raw = x.reshape(n, n_dates, n_bands + 1, h, w)
    out = np.empty((n, n_dates, n_bands + 3, h, w), np.float32)
    bands = out[:, :, :n_bands]
    np.copyto(bands, raw[:, :, :n_bands])
    observed = np.isfinite(bands).all(axis=2)
    if not observed.all():
        np.copyto(bands, np.asarray(mean, np.float32).reshape(1, 1, -1, 1, 1), where=~observed[:, :, None])
    out[:, :, n_bands + 2] = observed
    doy = raw[:, :, n_bands]
    first = doy[:, :, :1, :1]
    if np.isfinite(first).all() and (doy == first).all():  # one day of year a date: the usual tile
        doy = first
    angle = np.where(np.isfinite(doy), doy, np.float32(0.0)) * np.float32(2.0 * math.pi / 365.25)
    out[:, :, n_bands] = np.sin(angle)
    out[:, :, n_bands + 1] = np.cos(angle)
    return out


def _levels(g: _Graph, x: str, w: dict, n_bands: int) -> str:
    """The recurrent levels, written for onnxruntime's blocked convolutions: the last states side by side.
    ``x``: the date features (:func:`date_features`).

    Each date's input (its features, then a "keep" channel: 0 where observed, −KEEP where not) comes out of
    one 1×1 convolution that also z-scores the bands. Per date and direction, the update gate is computed as
    u = 1 − z = sigmoid(−pre-activation) (the kernels negated) from one convolution of [input, state] whose
    keep channel saturates it to 0 where the date is unobserved (the state is then kept, as ``KEEP`` does in
    Keras); the reset gate from the same [input, state]; the candidate n = tanh(x_n + r·h_n) from the input's
    and the state's own convolutions, the sum and the tanh fused into the first. The step h + u·(n − h) takes
    n − h as a 1×1 convolution of h (weights −I) with n added in. So no gate is split out of a wider tensor
    and no tensor leaves the blocked layout until the head: about 1.3× faster than convolutions over all
    gates followed by splits and elementwise ops (18 dates, 16 filters, 96² tiles, 2 cores). A ConvLSTM is
    written the same way (:func:`_lstm_direction`)."""
    n_dates = w["n_dates"]
    c_in = n_bands + 3
    block = block_channels()
    width = -(-(c_in + 1) // block) * block  # the features and the keep channel, padded to whole blocks
    # A date missing any band has all its bands at the mean (date_features), which the 1×1 convolution maps to 0.
    weights = np.zeros((width, c_in), np.float32)
    bias = np.zeros(width, np.float32)
    weights[np.arange(c_in), np.arange(c_in)] = 1.0
    weights[np.arange(n_bands), np.arange(n_bands)] = 1.0 / w["std"]
    bias[:n_bands] = -w["mean"] / w["std"]
    weights[c_in, c_in - 1] = KEEP  # keep = KEEP·observed − KEEP: exactly 0 or −KEEP (every other term is 0)
    bias[c_in] = -KEEP
    pre = g.const(weights.reshape(width, c_in, 1, 1), "date_input"), g.const(bias, "date_input_bias")
    dates = [g.op("Conv", g.op("Gather", x, g.const(np.int64(t)), axis=1), *pre) for t in range(n_dates)]
    if w["layers"][0][0]["cell"] == "lstm":  # the observed flag over the filters: an LSTM's state is masked by it
        f = w["layers"][0][0]["filters"]
        spread = np.zeros((f, width, 1, 1), np.float32)
        spread[:, c_in - 1] = 1.0
        seen = g.const(spread, "observed_filters")
        observed_filters = [g.op("Conv", date, seen) for date in dates]
    inputs, channels, places, keep = dates, width, np.arange(c_in), c_in
    for number, level in enumerate(w["layers"]):
        if level[0]["cell"] == "lstm":
            states = [_lstm_direction(g, d, inputs, channels, places, keep, observed_filters, n_dates) for d in level]
        else:
            states = [_gru_direction(g, d, inputs, channels, places, keep, n_dates) for d in level]  # forward first
        if number == len(w["layers"]) - 1:
            last = [s[0] if d["reverse"] else s[n_dates - 1] for s, d in zip(states, level)]
            return g.op("Concat", *last, axis=1) if len(last) > 1 else last[0]
        # The next level's input: this level's states side by side, then the date's input (for its keep channel).
        inputs = [g.op("Concat", *[s[t] for s in states], dates[t], axis=1) for t in range(n_dates)]
        f = sum(d["filters"] for d in level)
        channels, places, keep = f + width, np.arange(f), f + c_in
    raise ValueError("a temporal network has at least one recurrent level")


class _Kernels:
    """One direction's weights, channels first, for date inputs of ``channels`` channels in which the Keras
    input kernel's channels sit at ``places`` and the keep channel at ``keep``."""

    def __init__(self, d: dict, channels: int, places: np.ndarray, keep: int) -> None:
        self.filters, self.size = int(d["filters"]), int(d["input_kernel"].shape[0])
        self.pads = _pads(self.size)
        self.wx, self.wh, self.bias = _oihw(d["input_kernel"]), _oihw(d["recurrent_kernel"]), d["bias"]
        self.channels, self.places, self.keep = channels, places, keep

    def placed(self, kernel: np.ndarray, keep_weight: float) -> np.ndarray:
        """An input kernel (f, in, k, k) laid out for the date input (f, channels, k, k), ``keep_weight`` on
        the keep channel's centre tap (the pixel itself)."""
        centre = (self.size - 1) // 2
        out = np.zeros((kernel.shape[0], self.channels, self.size, self.size), np.float32)
        out[:, self.places] = kernel
        out[:, self.keep, centre, centre] = keep_weight
        return out

    def gate(self, a: np.ndarray, i: int) -> np.ndarray:
        """Gate ``i``'s rows of a kernel or bias (gates side by side, in Keras' order)."""
        return a[i * self.filters : (i + 1) * self.filters]

    def minus(self) -> np.ndarray:
        """A 1×1 kernel giving −state."""
        return -np.eye(self.filters, dtype=np.float32).reshape(self.filters, self.filters, 1, 1)


def _gru_direction(g: _Graph, d: dict, inputs: list[str], channels: int, places: np.ndarray, keep: int, n_dates: int) -> dict[int, str]:
    """One ConvGRU direction over the dates (see :func:`_levels`): every date's state by date index.
    ``inputs``: each date's input tensor, of ``channels`` channels; ``places``: where the Keras input
    kernel's channels sit in it; ``keep``: the channel holding 0 / −KEEP."""
    weights = _Kernels(d, channels, places, keep)
    pads, wx, wh, b = weights.pads, weights.wx, weights.wh, weights.bias
    placed, gate = weights.placed, weights.gate  # z, r, n in Keras' order
    x_u = placed(-gate(wx, 0), 1.0)  # u = 1 − z: negated; the keep channel drives it to 0 where unobserved
    w_u = g.const(np.concatenate([x_u, -gate(wh, 0)], axis=1), "update")
    w_r = g.const(np.concatenate([placed(gate(wx, 1), 0.0), gate(wh, 1)], axis=1), "reset")
    x_u0, x_n, h_n = g.const(x_u, "update_first"), g.const(placed(gate(wx, 2), 0.0), "candidate"), g.const(gate(wh, 2), "candidate_state")
    b_u, b_r, b_n = g.const(-gate(b, 0), "update_bias"), g.const(gate(b, 1), "reset_bias"), g.const(gate(b, 2), "candidate_bias")
    minus = g.const(weights.minus(), "minus_state")
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


def _lstm_direction(
    g: _Graph, d: dict, inputs: list[str], channels: int, places: np.ndarray, keep: int, observed: list[str], n_dates: int
) -> dict[int, str]:
    """One ConvLSTM direction over the dates, written as :func:`_gru_direction` is: every gate from its own
    convolution of [input, state] with its activation fused. Where a date is unobserved the keep channel
    drives the input gate to 0 and the forget gate to 1 (the cell is kept), and the state's step is masked by
    ``observed`` (the flag over the filters, one tensor per date)."""
    weights = _Kernels(d, channels, places, keep)
    pads, wx, wh, b = weights.pads, weights.wx, weights.wh, weights.bias
    placed, gate = weights.placed, weights.gate  # i, f, o, c in Keras' order
    keeps, activations = (1.0, -1.0, 0.0, 0.0), ("Sigmoid", "Sigmoid", "Sigmoid", "Tanh")  # i → 0, f → 1
    first = {j: g.const(placed(gate(wx, j), keeps[j]), "lstm_input") for j in (0, 2, 3)}  # (f: no cell yet)
    both = [g.const(np.concatenate([placed(gate(wx, j), keeps[j]), gate(wh, j)], axis=1), "lstm_gate") for j in range(4)]
    biases = [g.const(gate(b, j), "lstm_bias") for j in range(4)]
    minus = g.const(weights.minus(), "minus_state")
    state: Optional[str] = None
    cell = ""
    states: dict[int, str] = {}
    for t in range(n_dates - 1, -1, -1) if d["reverse"] else range(n_dates):
        if state is None:  # the first date: all-zero state and cell (no recurrent term, no forget gate)
            i, o, c = [g.op(activations[j], g.op("Conv", inputs[t], first[j], biases[j], pads=pads)) for j in (0, 2, 3)]
            cell = g.op("Mul", i, c)
            state = g.op("Mul", observed[t], g.op("Mul", o, g.op("Tanh", cell)))
        else:
            joined = g.op("Concat", inputs[t], state, axis=1)
            i, fg, o, c = [g.op(activations[j], g.op("Conv", joined, both[j], biases[j], pads=pads)) for j in range(4)]
            cell = g.op("Add", g.op("Mul", fg, cell), g.op("Mul", i, c))
            new = g.op("Mul", o, g.op("Tanh", cell))
            state = g.op("Add", state, g.op("Mul", observed[t], g.op("Add", new, g.op("Conv", state, minus))))
        states[t] = state
    return states
