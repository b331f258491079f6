"""Multi-temporal land-cover networks in pure Keras 3 (``keras.layers``, ``keras.ops``; no ``tf.*``), after
MTLCC (Rußwurm & Körner 2018): a bidirectional convolutional recurrent encoder (ConvGRU or ConvLSTM) over a
time series of images and a convolutional softmax head.

Input: one image-shaped tensor (batch, h, w, dates·(bands+1)): for every date its bands, then its day of
year. So a series goes through every image path of the plugin (patch samples, chips, flips and rotations,
tiled blended prediction) exactly like a multi-band image. A missing observation (cloud, nodata, a date the
series lacks) is NaN in its bands: :class:`SeriesInput` turns the input into normalised bands (missing → 0),
a day-of-year encoding (sin, cos) and a per-pixel "observed" flag, and the recurrent cells keep their state
unchanged wherever a date is not observed, so a pixel's code depends only on its observed dates (per pixel,
per date: finer than Keras' per-sample sequence mask, which is why ``keras.layers.ConvLSTM2D`` is not used).

Everything is convolutional with "same" padding and no pooling: a model trained on 24-px tiles predicts
tiles of any size. The weights do not depend on the number of dates, so a recurrent model rebuilt for a
longer or shorter series takes the trained weights (:func:`rebuild_for_dates`).

The per-pixel baseline (``encoder="stack"``) stacks all dates' features into one vector per pixel and runs
a DNN on it (as 1×1 convolutions, so it uses the same input and prediction path): what a user gets from
"dates as bands", beside which the recurrent model's gain shows.

The custom layers are registered Keras serialisables: a model file holds only their configuration and
weights and loads in safe mode (no code is stored).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

ENCODERS = ("gru", "lstm", "stack")
_PACKAGE = "geodl"
_REGISTERED: dict[str, Any] = {}
# Added to a GRU's update-gate pre-activation at an unobserved date: sigmoid of it is exactly 1.0 in float32
# (and its gradient 0), so the state is kept bit for bit whatever the gate's own pre-activation.
KEEP = 1e4


def custom_objects() -> dict[str, Any]:
    """The temporal layers by name, defined (and registered) on first use."""
    if not _REGISTERED:
        _define_layers()
    return dict(_REGISTERED)


def _define_layers() -> None:  # noqa: C901 - the layer classes, defined once on first use
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package=_PACKAGE)
    class SeriesInput(keras.layers.Layer):
        """(b, h, w, T·(B+1)) raw bands + day of year, NaN = missing → ``features`` (b, T, h, w, B+3)
        (z-scored bands, 0 where missing; sin and cos of the day of year; the observed flag) and
        ``observed`` (b, T, h, w, 1). Mean and variance are per band, shared by all dates."""

        def __init__(self, n_dates: int, mean: Sequence[float], variance: Sequence[float], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.n_dates = int(n_dates)
            self.mean = [float(v) for v in mean]
            self.variance = [float(v) for v in variance]

        def call(self, inputs: Any) -> Any:
            n_bands = len(self.mean)
            shape = ops.shape(inputs)
            x = ops.reshape(inputs, (shape[0], shape[1], shape[2], self.n_dates, n_bands + 1))
            x = ops.transpose(x, (0, 3, 1, 2, 4))
            bands, doy = x[..., :n_bands], x[..., n_bands:]
            finite = ops.isfinite(bands)
            observed = ops.cast(ops.all(finite, axis=-1, keepdims=True), self.compute_dtype)
            mean = ops.convert_to_tensor(np.asarray(self.mean, np.float32))
            std = ops.convert_to_tensor(np.sqrt(np.maximum(np.asarray(self.variance, np.float32), 1e-12)))
            z = (ops.where(finite, bands, mean) - mean) / std * observed
            angle = ops.where(ops.isfinite(doy), doy, ops.zeros_like(doy)) * (2.0 * math.pi / 365.25)
            return ops.concatenate([z, ops.sin(angle), ops.cos(angle), observed], axis=-1), observed

        def compute_output_shape(self, input_shape: Any) -> Any:
            b, h, w = input_shape[0], input_shape[1], input_shape[2]
            n = len(self.mean)
            return (b, self.n_dates, h, w, n + 3), (b, self.n_dates, h, w, 1)

        def get_config(self) -> dict:
            return {**super().get_config(), "n_dates": self.n_dates, "mean": self.mean, "variance": self.variance}

    @keras.saving.register_keras_serializable(package=_PACKAGE)
    class ConvRecurrent2D(keras.layers.Layer):
        """A convolutional GRU or LSTM run over the date axis of (b, T, h, w, C), forwards or backwards.

        Every date costs two convolutions, the date's features to the gates (``input_kernel``) and the state to
        the gates (``recurrent_kernel``): exactly the network's multiply-adds, no zero blocks, and no gradient
        computed for the input features (they hold no weight). Where ``observed`` is 0 the state (and an LSTM's
        cell) is kept, so a missing date is skipped per pixel. Returns the last state (b, h, w, F) or, with
        ``return_sequences``, every date's state (b, T, h, w, F) in date order.

        Measured on TensorFlow (CPU) training, the step is written for few, large operations: the gates come
        out of each convolution with one split (a slice's gradient, StridedSliceGrad, writes a zero tensor of
        the whole input and scatters into it: with four slices a date it took a third of a training step); a
        GRU keeps its state at an unobserved date by saturating its update gate (``KEEP`` added to the gate's
        pre-activation, so z is exactly 1) rather than by a masked update; the input convolution runs inside
        the loop, date by date (one convolution of all dates at once wrote and read back a T × 3F-channel
        tensor per pixel, and was slower).

        For inference the loop is ``keras.ops.scan``: the traced graph stays one step long whatever the number
        of dates. Training (``training=True``) unrolls it (:meth:`unrolled`): same steps, same outputs. XLA
        (``jit_compile``) does not help training here: the scan's gradient does not compile (its accumulators
        have no fixed size) and the unrolled one compiled ran about 4× slower on CPU.

        Tried for training and not kept (TensorFlow 2.20, 2-core CPU, 18 dates, 16 filters, batch 16 of 24²):
        the GRU's elementwise step alone compiled by XLA (each compiled call cost more than the ops it
        replaced); the input convolution as one im2col matmul over all dates (the (T·b·h·w, 9C) × (9C, 3F)
        matmul ran at a third of the machine's matmul rate, and the stack of its gradient cost more than the
        per-date convolutions); splitting the kernels per gate instead of the outputs (three small
        convolutions cost more than one and a split); the recurrence with its gradient written out
        (``keras.ops.custom_gradient``: the state's gradient as a forward convolution with the flipped kernel,
        the kernel's as one convolution with the batch as channels, one concatenation per date): it did ~20 %
        less work on one thread, but fit on two threads was within the machine's noise of autodiff (50.7 vs
        50.0, 51.9 vs 55.1 samples/s in interleaved runs), not worth a hand-written gradient. Profiled, a
        training step's time is mostly the convolutions (the weight gradients, Conv2DBackpropFilter, about a
        third of it: the (9F × b·h·w) × (b·h·w × 3F) product is too thin to run at the matmul rate), the
        7-channel input convolution running at about a third of that rate."""

        def __init__(
            self,
            filters: int,
            kernel_size: int = 3,
            cell: str = "gru",
            reverse: bool = False,
            return_sequences: bool = False,
            **kwargs: Any,
        ) -> None:
            super().__init__(**kwargs)
            if cell not in ("gru", "lstm"):
                raise ValueError(f"cell must be gru or lstm, not {cell}")
            self.filters, self.kernel_size, self.cell = int(filters), int(kernel_size), cell
            self.reverse, self.return_sequences = bool(reverse), bool(return_sequences)
            self.gates = 3 if cell == "gru" else 4

        def build(self, input_shape: Any) -> None:
            channels = int(input_shape[0][-1])
            k, f = self.kernel_size, self.filters
            self.input_kernel = self.add_weight(name="input_kernel", shape=(k, k, channels, self.gates * f), initializer="glorot_uniform")
            self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(k, k, f, self.gates * f), initializer="orthogonal")
            bias = np.zeros(self.gates * f, np.float32)
            if self.cell == "lstm":
                bias[f : 2 * f] = 1.0  # forget gate open at the start: the usual LSTM initialisation
            self.bias = self.add_weight(name="bias", shape=(self.gates * f,), initializer=keras.initializers.Constant(bias))

        def advance(self, gx: Any, gh: Any, carry: tuple[Any, ...], m: Any) -> tuple[Any, ...]:
            """The new carry from a date's input and recurrent pre-activations ``gx``, ``gh`` (b, h, w, gates·F)
            and the previous carry: ``(state,)`` for a GRU, ``(state, cell)`` for an LSTM (apart, not side by
            side: one tensor holding both made XLA build it element by element). ``gh`` is None at the first
            date, whose state is all zero (so is its recurrent convolution, which is not run). ``m`` is a GRU's
            update-gate bias (0 where observed, ``KEEP`` where not: z = 1 keeps the state exactly) and an LSTM's
            observed flag (its cell and state are both kept where it is 0)."""
            f, state = self.filters, carry[0]
            if self.cell == "gru":
                # One split per pre-activation, into the three gates (a split's gradient is a concatenation).
                x_z, x_r, x_n = ops.split(gx, [f, 2 * f], axis=-1)
                if gh is None:  # the state and its recurrent pre-activations are all zero
                    return ((1.0 - ops.sigmoid(x_z + m)) * ops.tanh(x_n),)
                h_z, h_r, h_n = ops.split(gh, [f, 2 * f], axis=-1)
                z, r = ops.sigmoid(x_z + h_z + m), ops.sigmoid(x_r + h_r)
                n = ops.tanh(x_n + r * h_n)  # the reset gate scales only the recurrent part (Keras' reset_after)
                return (state + (1.0 - z) * (n - state),)
            cell = carry[1]
            i, fg, o, cand = ops.split(gx if gh is None else gx + gh, 4, axis=-1)
            i, fg, o, cand = ops.sigmoid(i), ops.sigmoid(fg), ops.sigmoid(o), ops.tanh(cand)
            new_cell = fg * cell + i * cand
            new = o * ops.tanh(new_cell)
            return state + m * (new - state), cell + m * (new_cell - cell)  # an unobserved date keeps both

        def call(self, inputs: Any, training: Optional[bool] = None) -> Any:
            x, observed = inputs
            n_dates = int(x.shape[1])
            xs = ops.transpose(x, (1, 0, 2, 3, 4))  # dates first: a date is one slice
            ms = ops.transpose(observed, (1, 0, 2, 3, 4))
            if self.cell == "gru":
                ms = (1.0 - ms) * KEEP  # the update gate's bias: 0 where observed, KEEP where not
            # The first date (the last one backwards) starts from an all-zero state: its recurrent convolution
            # is not run.
            first = n_dates - 1 if self.reverse else 0
            zero = ops.repeat(ops.zeros_like(ms[first]), self.filters, axis=-1)  # (b, h, w, F)
            carry = self.advance(self.input_gates(xs[first]), None, (zero,) if self.cell == "gru" else (zero, zero), ms[first])
            if training:
                return self.unrolled(carry, xs, ms, n_dates)
            if n_dates == 1:
                return ops.expand_dims(carry[0], 1) if self.return_sequences else carry[0]
            # Inference: a symbolic loop (a while loop on TensorFlow) over the other dates, so the graph XLA
            # compiles for tiled prediction stays two steps long.
            rest = slice(0, n_dates - 1) if self.reverse else slice(1, n_dates)
            last, sequence = ops.scan(self.step, carry, (xs[rest], ms[rest]), length=n_dates - 1, reverse=self.reverse)
            if not self.return_sequences:
                return last[0]
            dates = [sequence[0], ops.expand_dims(carry[0], 0)]
            return ops.transpose(ops.concatenate(dates if self.reverse else dates[::-1], axis=0), (1, 0, 2, 3, 4))

        def input_gates(self, x_t: Any) -> Any:
            """A date's input pre-activations (b, h, w, gates·F), the bias included."""
            return ops.conv(x_t, self.input_kernel, padding="same") + self.bias

        def step(self, carry: tuple[Any, ...], inputs: Any) -> Any:
            """One date after the first: (carry, date's features and ``m``) → (carry, carry)."""
            x_t, m = inputs
            gh = ops.conv(carry[0], self.recurrent_kernel, padding="same")
            carry = self.advance(self.input_gates(x_t), gh, carry, m)
            return carry, carry  # Keras' TensorFlow scan wants the per-step output shaped as the carry

        def unrolled(self, carry: tuple[Any, ...], xs: Any, ms: Any, n_dates: int) -> Any:
            """The same steps as the scan, as a Python loop over the (static) dates from the first date's
            ``carry``: training only. The while loop's gradient pushes every step's intermediates onto
            accumulators and pops them back one by one; unrolled, the backward pass is plain ops (fit ~10-20 %
            faster on TensorFlow, CPU, measured in-process against the scan) for a few more seconds of tracing,
            paid once per training."""
            states = [carry[0]]
            for t in range(n_dates - 2, -1, -1) if self.reverse else range(1, n_dates):
                carry, _ = self.step(carry, (xs[t], ms[t]))
                states.append(carry[0])
            if not self.return_sequences:
                return carry[0]
            return ops.stack(states[::-1] if self.reverse else states, axis=1)

        def compute_output_shape(self, input_shape: Any) -> Any:
            s = input_shape[0]
            if self.return_sequences:
                return (s[0], s[1], s[2], s[3], self.filters)
            return (s[0], s[2], s[3], self.filters)

        def get_config(self) -> dict:
            return {
                **super().get_config(),
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "cell": self.cell,
                "reverse": self.reverse,
                "return_sequences": self.return_sequences,
            }

    @keras.saving.register_keras_serializable(package=_PACKAGE)
    class StackDates(keras.layers.Layer):
        """(b, T, h, w, C) → (b, h, w, T·C): every date's features side by side (the baseline's input)."""

        def call(self, inputs: Any) -> Any:
            shape = ops.shape(inputs)
            n_dates, c = int(inputs.shape[1]), int(inputs.shape[4])
            x = ops.transpose(inputs, (0, 2, 3, 1, 4))
            return ops.reshape(x, (shape[0], shape[2], shape[3], n_dates * c))

        def compute_output_shape(self, input_shape: Any) -> Any:
            return (input_shape[0], input_shape[2], input_shape[3], input_shape[1] * input_shape[4])

    _REGISTERED.update(SeriesInput=SeriesInput, ConvRecurrent2D=ConvRecurrent2D, StackDates=StackDates)


def build_temporal_model(
    n_dates: int,
    n_bands: int,
    n_classes: int,
    mean: Sequence[float] | np.ndarray,
    variance: Sequence[float] | np.ndarray,
    encoder: str = "gru",
    filters: int = 32,
    kernel_size: int = 3,
    layers: int = 1,
    bidirectional: bool = True,
    head_kernel: int = 3,
    hidden_units: Sequence[int] = (64,),
    dropout: float = 0.0,
) -> Any:
    """SeriesInput → ``layers`` × bidirectional ConvGRU/ConvLSTM (sequences between layers; the last layer's
    final forward and backward states concatenated, as MTLCC) → dropout → conv ``head_kernel`` softmax.
    ``encoder="stack"``: SeriesInput → dates stacked per pixel → 1×1-conv DNN (``hidden_units``) → softmax."""
    import keras
    from keras import layers as kl

    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, not {encoder}")
    if n_dates < 1 or n_bands < 1 or layers < 1 or filters < 1 or kernel_size < 1:
        raise ValueError("dates, bands, layers, filters and kernel size must be at least 1")
    objects = custom_objects()
    inputs = keras.Input((None, None, n_dates * (n_bands + 1)), name="series")
    features, observed = objects["SeriesInput"](n_dates, mean, variance, name="series_input")(inputs)
    if encoder == "stack":
        x = objects["StackDates"](name="stack_dates")(features)
        for i, units in enumerate(hidden_units):
            x = kl.Conv2D(int(units), 1, activation="relu", name=f"dense_{i}")(x)
            if dropout > 0:
                x = kl.Dropout(float(dropout), name=f"dropout_{i}")(x)
        head = 1
    else:
        x = features
        for level in range(layers):
            last = level == layers - 1
            parts = [
                objects["ConvRecurrent2D"](filters, kernel_size, encoder, False, not last, name=f"{encoder}{level}_forward")([x, observed])
            ]
            if bidirectional:
                parts.append(
                    objects["ConvRecurrent2D"](filters, kernel_size, encoder, True, not last, name=f"{encoder}{level}_backward")(
                        [x, observed]
                    )
                )
            x = kl.Concatenate(name=f"{encoder}{level}_states")(parts) if len(parts) > 1 else parts[0]
        if dropout > 0:
            x = kl.Dropout(float(dropout), name="dropout")(x)
        head = head_kernel
    outputs = kl.Conv2D(n_classes, head, padding="same", activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"geodl_temporal_{encoder}")


def rebuild_for_dates(model: Any, settings: dict, n_dates: int) -> Any:
    """The same recurrent network for ``n_dates`` dates, with the trained weights (they do not depend on the
    number of dates; the stacked baseline's do, so it cannot be rebuilt)."""
    if settings.get("encoder") == "stack":
        raise ValueError("the stacked-dates baseline is bound to its number of dates")
    layer = model.get_layer("series_input")
    n_classes = int(model.output_shape[-1])
    clone = build_temporal_model(
        n_dates,
        len(layer.mean),
        n_classes,
        layer.mean,
        layer.variance,
        **{k: settings[k] for k in ("encoder", "filters", "kernel_size", "layers", "bidirectional", "head_kernel") if k in settings},
    )
    clone.set_weights(model.get_weights())
    return clone


def temporal_flops(
    height: int,
    width: int,
    n_dates: int,
    n_bands: int,
    n_classes: int,
    encoder: str = "gru",
    filters: int = 32,
    kernel_size: int = 3,
    layers: int = 1,
    bidirectional: bool = True,
    head_kernel: int = 3,
    hidden_units: Sequence[int] = (64,),
) -> float:
    """Multiply-adds × 2 of one forward pass on an ``height``×``width`` tile: the convolutions (every date's
    input convolution, the recurrent one of every date but the first, whose state is all zero and which is
    not run; both directions) and the head; gate nonlinearities are a few per value and left out."""
    px = float(height * width)
    c_in = n_bands + 3
    if encoder == "stack":
        flops, c = 0.0, n_dates * c_in
        for units in hidden_units:
            flops += 2 * px * c * units
            c = units
        return flops + 2 * px * c * n_classes
    gates = 3 if encoder == "gru" else 4
    directions = 2 if bidirectional else 1
    k2 = kernel_size * kernel_size
    flops, c = 0.0, c_in
    for _ in range(layers):
        per_direction = 2 * px * k2 * (n_dates * c + (n_dates - 1) * filters) * gates * filters
        flops += directions * per_direction
        c = directions * filters
    return flops + 2 * px * head_kernel * head_kernel * c * n_classes


def receptive_radius(n_dates: int, kernel_size: int, layers: int) -> int:
    """How far (pixels) a pixel's prediction can see: each recurrent step widens it by ``kernel_size // 2``.
    Tiled prediction overlaps tiles by about this much (bounded), so blending hides the tile edges."""
    return int(layers * (n_dates + 1) * (kernel_size // 2))


def encoder_settings(
    encoder: str,
    filters: int,
    kernel_size: int,
    layers: int,
    bidirectional: bool,
    head_kernel: int,
    hidden_units: Sequence[int],
    dropout: float,
    n_dates: Optional[int] = None,
) -> dict:
    """The network's settings as stored in the model file's manifest (enough to rebuild it)."""
    return {
        "encoder": encoder,
        "filters": int(filters),
        "kernel_size": int(kernel_size),
        "layers": int(layers),
        "bidirectional": bool(bidirectional),
        "head_kernel": int(head_kernel),
        "hidden_units": [int(u) for u in hidden_units],
        "dropout": float(dropout),
        **({"n_dates": int(n_dates)} if n_dates is not None else {}),
    }
