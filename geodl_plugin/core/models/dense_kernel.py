"""The pixel DNN's prediction as one compiled CPU kernel: normalise → dense layers (ReLU) → softmax →
class and confidence, fused per block of pixels so that no hidden activation leaves the core's cache.

Why: the pixel DNN is tiny (3 bands → 64 → 4 classes is ~450 multiply-adds a pixel), so every general
engine spends its time moving activations, not computing: XLA and onnxruntime both ran the sample model at
~12 Mpx/s on this machine's two cores, a small fraction of what the arithmetic allows. Here a chunk of 256 pixels
sits in one small array with the pixels along the vector lanes; for each hidden unit its weights are held in
registers while the unit's activation and its contribution to every class logit are computed for the whole
chunk, so a hidden activation is used as soon as it exists and never stored. The softmax needs only the
largest logit and one sum, with a vectorised ``exp`` (2^round + a polynomial, ~1e-7 relative error).

The kernel's source is generated for the network's *shape* (band, unit and class counts: integers) and
compiled by numba once per shape, its machine code kept in the user's cache for the next process
(:func:`kernel_cache_dir`); the weights are arguments, so a model file never supplies code. Used for Keras
models that are exactly Normalization → (Dense ReLU [Dropout])* → Dense softmax (the pixel DNN's
architecture) and small enough (:data:`MAX_SOURCE_LINES`). Before first use its answers are checked against Keras on random pixels; where
numba is missing, the network has another shape, or the check disagrees, the caller keeps Keras (same
answer, slower); the reason is logged.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..io.atomic import atomic_path
from ..runtime.errors import GeoDLError

log = logging.getLogger("geodl")

CHUNK = 256  # pixels a chunk: 256 × (bands + units of the inner layers + classes) floats stay in L1/L2
TOLERANCE = 1e-4  # max |kernel − Keras| of the check's probabilities
_EPSILON = 1e-7  # Keras' Normalization divides by max(sqrt(variance), epsilon)
GROUP = 4  # hidden units of the last hidden layer computed together (see _last_hidden_lines)
_PARALLEL_ROWS = 65_536  # calls with more rows than this are split across the cores
# Larger networks stay on Keras: compile time grows with the unrolled source (measured here: 110 lines, 3→64→4,
# ~1.4 s; 230 lines, 6→64→10, ~3.2 s; 500 lines ~15 s), while wide layers are matrix products XLA already runs
# well. Compiled once per network shape: the machine code is cached on disk.
MAX_SOURCE_LINES = 300
MAX_CLASSES = 127  # a class position shares its byte with the invalid flag (bit 7)
_LOCK = threading.Lock()
_KERNELS: dict[tuple, Callable[..., None]] = {}
_POOL: Optional[ThreadPoolExecutor] = None


@dataclass
class DenseStack:
    """A pixel DNN as arrays: input mean and 1/std, then (weights (in, out), bias (out,)) per dense layer; all
    but the last are ReLU, the last is softmax."""

    mean: np.ndarray
    inv_std: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]

    @property
    def dims(self) -> tuple[int, ...]:
        return (int(self.layers[0][0].shape[0]), *(int(w.shape[1]) for w, _ in self.layers))


def dense_stack(model: Any) -> Optional[DenseStack]:
    """The model's layers as a :class:`DenseStack`, or None if it is not exactly the pixel DNN's shape."""
    kinds = [type(layer).__name__ for layer in model.layers]
    if not kinds or kinds[0] == "InputLayer":
        kinds, layers = kinds[1:], list(model.layers[1:])
    else:
        layers = list(model.layers)
    if not layers or kinds[0] != "Normalization" or kinds[-1] != "Dense":
        return None
    dense = [layer for layer, kind in zip(layers[1:], kinds[1:]) if kind != "Dropout"]
    if any(type(layer).__name__ != "Dense" for layer in dense):
        return None
    activations = [getattr(getattr(layer, "activation", None), "__name__", "") for layer in dense]
    if activations[-1] != "softmax" or any(a != "relu" for a in activations[:-1]):
        return None
    norm = layers[0]
    mean = np.asarray(norm.mean, np.float32).ravel()
    std = np.maximum(np.sqrt(np.asarray(norm.variance, np.float32).ravel()), np.float32(_EPSILON))
    stack = []
    for layer in dense:
        weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
        if len(weights) != 2 or weights[0].ndim != 2:
            return None  # a dense layer without bias, or a kernel of another rank
        stack.append((np.ascontiguousarray(weights[0]), np.ascontiguousarray(weights[1])))
    if len(mean) != stack[0][0].shape[0]:
        return None
    return DenseStack(mean, (np.float32(1.0) / std).astype(np.float32), stack)


def _exp_lines(out: str, arg: str, indent: str) -> list[str]:
    """``out = exp(arg)`` for ``arg`` ≤ 0, vectorisable: 2^t = 2^q · 2^f with q = round(t), |f| ≤ ½; 2^q is
    built in the float's exponent bits (a scalar bit cast: through memory, LLVM would not vectorise the
    loop), 2^f by a degree-7 polynomial; below 2^-126 (a probability under 1e-38 of the best class's) it is 0."""
    # Taylor terms ln2^k / k!: on |f| ≤ ½ the degree-7 truncation is ~5e-9 relative, below float32 rounding
    coefficients = [1.0, 0.6931471805599453, 0.2402265069591007, 0.05550410866482158, 0.009618129107628477]
    coefficients += [0.0013333558146428443, 0.00015403530393381606, 1.525273380405984e-05]
    poly = f"np.float32({coefficients[-1]!r})"
    for c in reversed(coefficients[:-1]):
        poly = f"np.float32({c!r}) + f * ({poly})"
    return [
        f"{indent}t0 = ({arg}) * np.float32(1.4426950408889634)",
        f"{indent}t = max(t0, np.float32(-126.0))",
        f"{indent}q = np.rint(t)",
        f"{indent}f = t - q",
        f"{indent}two_q = np.int32((np.int32(q) + np.int32(127)) << np.int32(23)).view(np.float32)",
        f"{indent}{out} = ({poly}) * two_q if t0 > np.float32(-126.0) else np.float32(0.0)",  # below: ~0 (< 1e-38)
    ]


def _last_hidden_lines(layer: int, width: int, n_in: int, first_in: int, logit: int, logits: int) -> list[str]:
    """The last hidden layer feeding the logits at once (its activations are never stored), ``GROUP`` units at
    a time: each logit's running sum is loaded and stored once per group rather than once per unit, which the
    core's store port, not its multiply-adds, was limiting (measured one core: 3→64→4 up to 15% faster,
    6→64→10 about 35%)."""
    group = next(g for g in (GROUP, 2, 1) if width % g == 0) if n_in <= 16 else 1  # wide inputs: multiply-add bound
    lines = [f"        for j in range(0, {width}, {group}):"]
    for g in range(group):
        lines += [f"            b{g} = b[{layer}][j + {g}]"]
        lines += [f"            w{k}_{g} = W[{layer}][{k}, j + {g}]" for k in range(n_in)]
        lines += [f"            u{c}_{g} = W[{layer + 1}][j + {g}, {c}]" for c in range(logits)]
    lines += [f"            for p in range({CHUNK}):"]
    lines += [f"                x{k} = S[{first_in + k}, p]" for k in range(n_in)]
    for g in range(group):
        total = " + ".join(f"w{k}_{g} * x{k}" for k in range(n_in))
        lines += [f"                v{g} = max(b{g} + {total}, np.float32(0.0))"]
    lines += [f"                S[{logit + c}, p] += " + " + ".join(f"v{g} * u{c}_{g}" for g in range(group)) for c in range(logits)]
    return lines


def _input_lines(bands: int, floats: bool, pad: str) -> list[str]:
    """A chunk's pixels from the raster's own values (no converted copy of the block is made): each band
    normalised into ``S``; ``B`` set to 1 where the pixel is invalid (a band equal to ``nd``, when ``check``;
    for float rasters also a band that is not finite), else 0. Measured (3→64→4, one core): flags in a uint8 row
    and comparisons in the raster's own type ran the kernel ~15% faster than float64 comparisons and a float
    flag row (a pixel DNN without hidden layers, twice as fast). A float raster's invalid pixel runs through
    the network as zeros, so a NaN or an infinity never reaches the arithmetic; an integer cannot hold one."""
    lines = [f"{pad}r{k} = x[{k}, s + p]" for k in range(bands)]
    same = " | ".join(f"(r{k} == nd)" for k in range(bands))
    finite = " | ".join(f"(r{k} - r{k} != 0)" for k in range(bands))
    lines += [f"{pad}bad = (({same}) & check) | {finite}" if floats else f"{pad}bad = ({same}) & check"]
    lines += [f"{pad}B[p] = np.uint8(1) if bad else np.uint8(0)"]
    value = "(np.float32(r{k}) - mean[{k}]) * inv_std[{k}]"
    if floats:
        value = "np.float32(0.0) if bad else " + value
    lines += [f"{pad}S[{k}, p] = " + value.format(k=k) for k in range(bands)]
    return lines


def _output_lines(logit: int, classes: int, probabilities: bool, pad: str) -> list[str]:
    """Softmax, class and confidence of a chunk. The network's last layer gives each class's logit minus class
    0's (:class:`FusedDense`), so class 0's is 0 and the others are compared and exponentiated against it. A
    pixel's class position joins its invalid flag in ``B`` (bit 7: set where invalid)."""
    lines = ["        for p in range(m):", f"{pad}best = np.float32(0.0)", f"{pad}bi = np.uint8(0)"]
    for c in range(1, classes):
        lines += [f"{pad}v = S[{logit + c - 1}, p]", f"{pad}bi = np.uint8({c}) if v > best else bi", f"{pad}best = max(v, best)"]
    lines += [f"{pad}B[p] = bi | (B[p] << np.uint8(7))", f"{pad}T[1, p] = best", f"{pad}T[2, p] = np.float32(0.0)"]
    for c in range(classes):
        lines += ["        for p in range(m):"]
        lines += _exp_lines("e", "-T[1, p]" if c == 0 else f"S[{logit + c - 1}, p] - T[1, p]", pad)
        lines += [f"{pad}T[2, p] += e"] + ([f"{pad}T[{3 + c}, p] = e"] if probabilities else [])
    invalid = "B[p] >= np.uint8(128)"
    lines += ["        for p in range(m):", f"{pad}T[2, p] = np.float32(1.0) / T[2, p]"]
    lines += [f"{pad}conf[s + p] = fill_conf if {invalid} else T[2, p]"]
    for c in range(classes if probabilities else 0):  # one loop a class: each a plain vector loop
        lines += ["        for p in range(m):", f"{pad}probs[{c}, s + p] = fill_conf if {invalid} else T[{3 + c}, p] * T[2, p]"]
    lines += ["        for p in range(m):", f"{pad}if {invalid}:", f"{pad}    idx[s + p] = fill_class"]
    lines += [f"{pad}else:", f"{pad}    bi = B[p]", f"{pad}    idx[s + p] = ids[bi]", f"{pad}    counts[bi] += 1"]
    return lines


def kernel_source(dims: tuple[int, ...], probabilities: bool, floats: bool = True) -> str:
    """Python source of the kernel for a network of ``dims`` (bands, hidden units…, classes) reading an integer
    or (``floats``) a float raster: integers and flags are all that is interpolated. Rows of ``S``: the
    normalised bands, each inner hidden layer, the logits of classes 1… relative to class 0's. Rows of ``T``:
    1, the best logit; 2, the softmax's sum (then its inverse); 3…, each class's exp. ``B``: each pixel's
    invalid flag and class position, mapped through ``ids`` on the way out and counted."""
    bands, hidden, classes = dims[0], dims[1:-1], dims[-1]
    logits = classes - 1
    rows = [0]
    for width in (bands, *hidden[:-1]):
        rows.append(rows[-1] + width)
    logit = rows[-1]
    pad = " " * 12
    lines = [
        "def kernel(x, nd, check, mean, inv_std, W, b, ids, fill_class, fill_conf, idx, conf, probs, counts, start, stop):",
        f"    S = np.empty(({logit + logits}, {CHUNK}), np.float32)",
        f"    T = np.empty((3 + {classes}, {CHUNK}), np.float32)",
        f"    B = np.empty({CHUNK}, np.uint8)",
        f"    for s in range(start, stop, {CHUNK}):",
        f"        m = min({CHUNK}, stop - s)",
        "        for p in range(m):",
    ]
    lines += _input_lines(bands, floats, pad)
    if not hidden:  # no hidden layer: the logits straight from the bands
        lines += [
            f"{pad}S[{logit + c}, p] = b[0][{c}] + " + " + ".join(f"W[0][{k}, {c}] * S[{k}, p]" for k in range(bands))
            for c in range(logits)
        ]
    else:
        lines += [f"{pad}S[{logit + c}, p] = b[{len(hidden)}][{c}]" for c in range(logits)]
    # A chunk with no valid pixel (a scene's collar, a masked area) skips the network: fills only.
    lines += ["        invalid = 0", "        for p in range(m):", f"{pad}invalid += B[p]", "        if invalid == m:"]
    lines += ["            for p in range(m):", "                idx[s + p] = fill_class", "                conf[s + p] = fill_conf"]
    lines += [f"                probs[{c}, s + p] = fill_conf" for c in range(classes if probabilities else 0)]
    lines += ["            continue"]
    for layer, width in enumerate(hidden):
        n_in, first_in = (bands, 0) if layer == 0 else (hidden[layer - 1], rows[layer])
        if layer == len(hidden) - 1:
            lines += _last_hidden_lines(layer, width, n_in, first_in, logit, logits)
            continue
        lines += [f"        for j in range({width}):", f"            bj = b[{layer}][j]"]
        lines += [f"            w{k} = W[{layer}][{k}, j]" for k in range(n_in)]
        lines += [f"            for p in range({CHUNK}):"]
        total = " + ".join(f"w{k} * S[{first_in + k}, p]" for k in range(n_in))
        lines += [f"                v = max(bj + {total}, np.float32(0.0))", f"                S[{rows[layer + 1]} + j, p] = v"]
    lines += _output_lines(logit, classes, probabilities, pad)
    return "\n".join(lines) + "\n"


def _compile(dims: tuple[int, ...], probabilities: bool, floats: bool = True) -> Callable[..., None]:
    key = (dims, probabilities, floats)
    with _LOCK:
        if key not in _KERNELS:
            _KERNELS[key] = _cached_module(dims, probabilities, floats) or _in_memory(dims, probabilities, floats)
        return _KERNELS[key]


# 'contract' lets LLVM fuse multiply-adds; no 'nnan'/'ninf', so odd inputs keep their IEEE meaning.
_JIT = "numba.njit(nogil=True, fastmath={'contract'}, error_model='numpy', cache=%s)"


def kernel_cache_dir() -> Path:
    """Where compiled kernels are kept between processes: ``GEODL_KERNEL_CACHE``, else the user's cache."""
    if os.environ.get("GEODL_KERNEL_CACHE"):
        return Path(os.environ["GEODL_KERNEL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "geodl" / "kernels"


def _cached_module(dims: tuple[int, ...], probabilities: bool, floats: bool) -> Optional[Callable[..., None]]:
    """The kernel from a module file in :func:`kernel_cache_dir`, compiled with numba's on-disk cache, so a
    new process (each ``qgis_process`` run) loads machine code instead of compiling for ~1–2 s. The file holds
    only the generated source (shape-dependent, no weights); None where the folder cannot be written."""
    import importlib.util
    import sys

    name = "geodl_dense_" + "_".join(map(str, dims)) + ("_probabilities" if probabilities else "") + ("" if floats else "_integers")
    source = f"import numpy as np\nimport numba\n\n\n@{_JIT % True}\n" + kernel_source(dims, probabilities, floats)
    folder = kernel_cache_dir()
    path = folder / f"{name}.py"
    try:
        if not path.is_file() or path.read_text(encoding="utf-8") != source:  # unchanged file: numba's cache holds
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                Path(tmp).write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # numba's cache finds the module by name
        spec.loader.exec_module(module)
        return module.kernel
    except (OSError, GeoDLError) as exc:  # a read-only or full home: compile in memory instead
        log.info("Compiled kernels are not kept between sessions (%s).", exc)
        return None


def _in_memory(dims: tuple[int, ...], probabilities: bool, floats: bool) -> Callable[..., None]:
    import numba

    namespace: dict[str, Any] = {"np": np, "numba": numba}
    exec(compile(kernel_source(dims, probabilities, floats), f"<geodl dense kernel {dims}>", "exec"), namespace)  # noqa: S102 - our own source, from integers
    return eval(_JIT % False)(namespace["kernel"])  # noqa: S307 - the decorator above, with constants


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="geodl-dense")
        return _POOL


def _nodata_of(dtype: np.dtype, nodata: Optional[float]) -> tuple[Any, bool]:
    """``nodata`` in the raster's own type, and whether any pixel can equal it (an integer raster cannot hold
    NaN, 0.5 or a value outside its range). As NumPy compares a block with a Python number."""
    if dtype.kind == "f":
        return dtype.type(np.nan if nodata is None else nodata), True
    if nodata is None or not np.isfinite(nodata) or float(nodata) != int(nodata):
        return dtype.type(0), False
    info = np.iinfo(dtype)
    if not info.min <= int(nodata) <= info.max:
        return dtype.type(0), False
    return dtype.type(int(nodata)), True


# Raster values the kernel reads as they are; anything else (float16, complex) is converted to float32 first.
_READ_AS_IS = frozenset("int8 uint8 int16 uint16 int32 uint32 int64 uint64 float32 float64".split())


class FusedDense:
    """``classify`` of a :class:`DenseStack` through the compiled kernel (see the module notes). The last layer
    is given to the kernel as differences against class 0's weights: softmax is unchanged by subtracting one
    logit from all, and class 0's logit is then 0, one class's multiply-adds fewer a hidden unit."""

    def __init__(self, stack: DenseStack) -> None:
        self.stack = stack
        self.classes = stack.dims[-1]
        (*hidden, (weights, bias)) = stack.layers
        last = (np.ascontiguousarray(weights[:, 1:] - weights[:, :1]), np.ascontiguousarray(bias[1:] - bias[:1]))
        self._weights = tuple(w for w, _ in hidden) + (last[0],)
        self._biases = tuple(b for _, b in hidden) + (last[1],)
        self._positions = np.arange(self.classes, dtype=np.uint8)

    def classify(self, x: np.ndarray, probabilities: bool = False) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """``x``: (n, bands). The kernel reads it band by band ((bands, n) in memory): a transposed view of such
        memory is not copied, any other layout is copied once. A row that is not finite gets class 0 and a NaN
        confidence."""
        xt = np.asarray(x, dtype=np.float32).T
        index, confidence, probs, _ = self.classify_block(xt, None, self._positions, 0, np.nan, probabilities)
        return index, confidence, None if probs is None else probs.T

    def classify_block(
        self, x: np.ndarray, nodata: Optional[float], ids: np.ndarray, fill_class: int, fill_conf: float, probabilities: bool = False
    ) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray], np.ndarray]:
        """A raster block as read, (bands, n) of the raster's own type: pixels where a band equals ``nodata`` or
        is not finite get ``fill_class`` and ``fill_conf``; the others the id ``ids[position]`` of their class
        and its probability. Returns (n,) class ids, (n,) confidences, (classes, n) probabilities when asked
        and the count of valid pixels given each class (by position). Validity, conversion, class ids and
        counts all happen inside the kernel, in the pass that classifies (on NumPy they were five more passes
        over the block)."""
        if x.dtype.name not in _READ_AS_IS:
            x = x.astype(np.float32)
        x = np.ascontiguousarray(x)
        n = x.shape[1]
        idx, conf = np.empty(n, np.uint8), np.empty(n, np.float32)
        # (classes, n): each class's probabilities are written as one run of memory
        probs = np.empty((self.classes, n if probabilities else 0), np.float32)
        floats = x.dtype.kind == "f"
        kernel = _compile(self.stack.dims, probabilities, floats)
        # One core is left to the reader and writer threads that run beside the kernel in a raster prediction:
        # on two cores, splitting the kernel too cost 0.1-0.25 CPU-s more per 15 Mpx (measured) for no gain.
        parts = max(1, min((os.cpu_count() or 1) - 1, 4, n // _PARALLEL_ROWS))
        counts = np.zeros((parts, self.classes), np.int64)  # one row a slice: no two threads add to one count
        missing = _nodata_of(x.dtype, nodata)
        lookup = np.ascontiguousarray(ids, dtype=np.uint8)
        fills = (np.uint8(fill_class), np.float32(fill_conf))

        def run(part: int, a: int, z: int) -> None:
            args = (self.stack.mean, self.stack.inv_std, self._weights, self._biases, lookup, *fills, idx, conf, probs)
            kernel(x, *missing, *args, counts[part], a, z)

        if parts == 1:
            run(0, 0, n)
        else:  # the kernel releases the GIL: one slice a core
            step = -(-n // parts)
            list(_pool().map(lambda i: run(i, i * step, min(n, (i + 1) * step)), range(parts)))
        return idx, conf, probs if probabilities else None, counts.sum(axis=0)


def fused_classifier(model: Any, check: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> Optional[FusedDense]:
    """A :class:`FusedDense` for ``model``, or None where it cannot be used (see the module notes). ``check``:
    Keras' probabilities for an (n, bands) array, compared with the kernel's before it is trusted."""
    stack = dense_stack(model)
    if stack is None:
        return None
    if stack.dims[-1] > MAX_CLASSES:
        log.info("Pixels run through Keras: %d classes are more than the compiled kernel holds.", stack.dims[-1])
        return None
    if kernel_source(stack.dims, True).count("\n") > MAX_SOURCE_LINES:
        log.info("Pixels run through Keras: a %s network is too large for the compiled kernel.", "→".join(map(str, stack.dims)))
        return None
    try:
        fused = FusedDense(stack)
        if check is not None:
            x = _check_pixels(stack)
            error = _disagreement(fused.classify(x), check(x))
            if not error <= TOLERANCE:
                log.warning("The compiled pixel kernel differs from Keras by %.2g; predicting through Keras.", error)
                return None
    except Exception as exc:  # noqa: BLE001 - numba missing or failing to compile: keep Keras
        log.info("Pixels run through Keras, not the compiled kernel (%s).", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return None
    return fused


def _disagreement(answer: tuple[np.ndarray, np.ndarray, Optional[np.ndarray]], probabilities: np.ndarray) -> float:
    """Largest confidence error against Keras' probabilities; infinite if a class differs where Keras' two best
    classes are further apart than the tolerance (closer, either is right). Checked on the class-and-confidence
    kernel, the one prediction uses, so only that one is compiled up front."""
    index, confidence, _ = answer
    top2 = np.sort(probabilities, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > TOLERANCE
    if np.any(index[decided] != probabilities.argmax(axis=1)[decided]):
        return float("inf")
    return float(np.abs(confidence - top2[:, 1]).max())


def _check_pixels(stack: DenseStack) -> np.ndarray:
    """Random pixels around the training statistics (±3 std), plus an odd count so the last chunk is partial."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(CHUNK * 4 + 37, len(stack.mean))).astype(np.float32) * np.float32(1.5)
    return (z / stack.inv_std + stack.mean).astype(np.float32)
