"""Pixel models compiled to Earth Engine expressions, so a whole country is classified inside Earth Engine with
no server to deploy and no cost beyond Earth Engine's own.

- The pixel DNN (Keras ``Normalization`` → ``Dense``/relu … → ``Dense``/softmax) becomes array-image algebra:
  the bands as a column vector per pixel (``Image.toArray().toArray(1)``), z-scored, each dense layer a
  constant weight matrix times that vector (``Image.matrixMultiply``) plus a bias, relu as ``Image.max(0)``,
  and a softmax with the maximum subtracted first (as Keras does) so ``exp`` cannot overflow.
- The random forest becomes ``ee.Classifier.decisionTreeEnsemble`` over tree strings in the R/rpart text
  format Earth Engine reads. geodl's forest averages the trees' leaf class fractions (soft voting), whereas an
  Earth Engine classification ensemble takes a majority of votes; to compute the same thing, each class gets
  its own ensemble of the same trees whose leaves hold that class's fraction, run in ``REGRESSION`` mode (the
  mean of the trees' outputs). Thresholds are written with 17 significant digits, so the double Earth Engine
  parses is the one scikit-learn chose, and ``x <= t`` goes left as in scikit-learn.

Both end in the same head: a 1-D probability array per pixel → ``class`` (the model's class ids, via
``Image.remap``), ``confidence`` (the top probability) and, when asked, one ``p_<id>`` band per class.
Ties go to the first class, as ``numpy.argmax`` does (``Image.arrayArgmax`` returns the first maximum).

:mod:`.native_eval` evaluates the serialised expression with NumPy, which is how the tests prove the
expression equals the model's own prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ..models.family import ModelFamily
from ..models.model_file import ModelBundle
from ..models.networks import Forest
from ..runtime.errors import GeoDLError
from .output_bands import class_bands

PIXEL_DNN, RANDOM_FOREST = ModelFamily.PIXEL_DNN.value, ModelFamily.RANDOM_FOREST.value
NATIVE_FAMILIES = (PIXEL_DNN, RANDOM_FOREST)
KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): Normalization divides by max(sqrt(variance), epsilon)
# Earth Engine refuses a request body over 10 MB; the tree strings travel inline in every request.
MAX_REQUEST_BYTES = 10_000_000
# The rpart node numbering (children of n are 2n and 2n+1) must fit the 63-bit integers it is parsed into.
MAX_TREE_DEPTH = 62


@dataclass
class DenseLayer:
    kernel: np.ndarray  # (inputs, units)
    bias: np.ndarray  # (units,)
    activation: str  # "relu", "softmax" or "linear"


@dataclass
class DnnWeights:
    """Everything the pixel DNN computes at inference, read from its layers (dropout is off at inference)."""

    mean: np.ndarray
    scale: np.ndarray  # max(sqrt(variance), epsilon), as Keras divides by it
    layers: list[DenseLayer]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Float64 reference of what the compiled expression computes."""
        h = (np.asarray(x, np.float64) - self.mean) / self.scale
        for layer in self.layers:
            h = h @ layer.kernel.astype(np.float64) + layer.bias.astype(np.float64)
            if layer.activation == "relu":
                h = np.maximum(h, 0.0)
            elif layer.activation == "softmax":
                e = np.exp(h - h.max(axis=1, keepdims=True))
                h = e / e.sum(axis=1, keepdims=True)
        return h


@dataclass
class NativeModel:
    """A model ready to be applied to an ``ee.Image`` holding its bands."""

    architecture: str
    bands: list[str]
    class_ids: list[int]
    dnn: DnnWeights | None = None
    forest: Forest | None = None

    def tree_strings(self, class_index: int) -> list[str]:
        if self.forest is None:
            raise GeoDLError("Only a random forest has decision trees.")
        return forest_tree_strings(self.forest, self.bands, class_index)

    def vote_strings(self) -> list[str]:
        """Trees whose leaves hold the position of their (only) class, for :func:`pure_leaves` forests."""
        if self.forest is None:
            raise GeoDLError("Only a random forest has decision trees.")
        return forest_tree_strings(self.forest, self.bands, None)

    def apply(self, composite: Any, probabilities: bool = False) -> Any:
        """``class`` and ``confidence`` bands (plus ``p_<id>`` per class when asked) for ``composite``, which
        must hold the model's bands (see :func:`check_composite_bands`)."""
        image = composite.select(list(self.bands)).toFloat()
        probs = _dnn_probabilities(image, self.dnn) if self.dnn is not None else self._forest_probabilities(image)
        return class_bands(probs, self.class_ids, probabilities)

    def _forest_probabilities(self, image: Any) -> Any:
        import ee

        bands = []
        if self.forest is not None and pure_leaves(self.forest):
            # Every leaf holds one class: the mean of the trees' one-hot leaves is each class's share of the
            # votes, so one ensemble (leaves = class positions) in RAW mode — the trees' votes as an array per
            # pixel — gives the same probabilities as the model with a K times smaller request.
            votes = image.classify(ee.Classifier.decisionTreeEnsemble(self.vote_strings()).setOutputMode("RAW"), "votes")
            for k in range(len(self.class_ids)):
                bands.append(votes.eq(k).arrayReduce(ee.Reducer.mean(), [0]).arrayGet([0]).rename(f"p{k}"))
            return ee.Image.cat(bands).toArray()
        for k in range(len(self.class_ids)):
            ensemble = ee.Classifier.decisionTreeEnsemble(self.tree_strings(k)).setOutputMode("REGRESSION")
            bands.append(image.classify(ensemble, f"p{k}"))
        return ee.Image.cat(bands).toArray()


def ee_classifier_for(bundle: ModelBundle) -> NativeModel:
    """The Earth Engine form of a loaded model file, chosen by its architecture; a family with no Earth Engine
    form gets a message pointing at Vertex AI."""
    arch = bundle.architecture
    bands = bundle.bands
    ids = bundle.classes.ids
    if arch == PIXEL_DNN:
        weights = dnn_weights(bundle.model)
        if weights.layers[-1].kernel.shape[1] != len(ids):
            raise GeoDLError(f"The model has {weights.layers[-1].kernel.shape[1]} outputs but {len(ids)} classes.")
        return NativeModel(arch, bands, ids, dnn=weights)
    if arch == RANDOM_FOREST:
        forest = bundle.model
        if not isinstance(forest, Forest):
            raise GeoDLError("The model file says 'rf' but holds no forest arrays.")
        if forest.max_depth > MAX_TREE_DEPTH:
            raise GeoDLError(
                f"The forest's trees are {forest.max_depth} levels deep; Earth Engine's tree format "
                f"takes at most {MAX_TREE_DEPTH}. Retrain with a smaller maximum depth."
            )
        return NativeModel(arch, bands, ids, forest=forest)
    if "vertex" in bundle.manifest:  # deployed: Earth Engine calls the endpoint (see .vertex)
        from .vertex import VertexModel

        return VertexModel.from_manifest(bundle.manifest)  # type: ignore[return-value]
    raise GeoDLError(
        f"A '{arch}' model cannot be written as Earth Engine operations (only the pixel DNN and the "
        "random forest can). Export it as a SavedModel, deploy it on Vertex AI and record the endpoint "
        "(geodl:exportsavedmodel)."
    )


def native_model_from_file(path: str, in_worker: bool = True) -> tuple[ModelBundle, NativeModel]:
    """Read a model file into its Earth Engine form without TensorFlow in this process: the forest is plain
    arrays; the DNN's weights are read by the worker process (Keras there, JSON back — floats round-trip
    exactly). Returns a manifest-only bundle (for the checks) and the compiled model."""
    from ..models.model_file import load_model_file, read_manifest

    manifest = read_manifest(path)
    shell = ModelBundle(manifest, None, str(path))
    if shell.architecture != PIXEL_DNN:
        bundle = load_model_file(path) if shell.architecture == RANDOM_FOREST else shell
        return shell, ee_classifier_for(bundle)
    if in_worker:
        from ..runtime.worker import run_in_worker

        raw = run_in_worker(dnn_weights_json, model=str(path))
    else:
        raw = dnn_weights_json(model=str(path))
    weights = DnnWeights(
        np.asarray(raw["mean"]),
        np.asarray(raw["scale"]),
        [DenseLayer(np.asarray(la["kernel"], np.float32), np.asarray(la["bias"], np.float32), la["activation"]) for la in raw["layers"]],
    )
    return shell, NativeModel(PIXEL_DNN, shell.bands, shell.classes.ids, dnn=weights)


def dnn_weights_json(model: str, progress: Any = None) -> dict[str, Any]:
    """The worker job: a pixel DNN's inference weights as JSON-able lists."""
    from ..models.model_file import load_model_file

    weights = dnn_weights(load_model_file(model).model)
    return {
        "mean": weights.mean.tolist(),
        "scale": weights.scale.tolist(),
        "layers": [{"kernel": la.kernel.tolist(), "bias": la.bias.tolist(), "activation": la.activation} for la in weights.layers],
    }


# --- the DNN ---------------------------------------------------------------------------------------------


def dnn_weights(model: Any) -> DnnWeights:
    """Read the pixel DNN's normalisation and dense layers; refuse any layer the compiler does not know."""
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    layers: list[DenseLayer] = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("InputLayer", "Dropout"):
            continue
        if kind == "Normalization":
            m = np.asarray(layer.mean, np.float64).reshape(-1)
            v = np.asarray(layer.variance, np.float64).reshape(-1)
            mean, scale = m, np.maximum(np.sqrt(v), KERAS_EPSILON)
            continue
        if kind == "Dense":
            activation = getattr(layer.activation, "__name__", str(layer.activation))
            if activation not in ("relu", "softmax", "linear"):
                raise GeoDLError(
                    f"Layer '{layer.name}' uses the activation '{activation}', which geodl does not "
                    "compile to Earth Engine (relu, softmax and linear only)."
                )
            kernel, bias = (np.asarray(w) for w in layer.get_weights())
            layers.append(DenseLayer(kernel, bias, activation))
            continue
        raise GeoDLError(
            f"The layer '{layer.name}' ({kind}) has no Earth Engine form; only Normalization, Dense "
            "and Dropout do. Serve this model on Vertex AI instead."
        )
    if not layers or layers[-1].activation != "softmax":
        raise GeoDLError("The pixel DNN must end in a softmax Dense layer to be compiled to Earth Engine.")
    n_in = layers[0].kernel.shape[0]
    if mean is None or scale is None:
        mean, scale = np.zeros(n_in), np.ones(n_in)
    return DnnWeights(mean, scale, layers)


def _constant_array(values: np.ndarray) -> Any:
    """A constant array image; float32 weights become the doubles they stand for exactly."""
    import ee

    return ee.Image(ee.Array(np.asarray(values, np.float64).tolist()))


def _dnn_probabilities(image: Any, weights: DnnWeights) -> Any:
    import ee

    x = image.subtract(ee.Image.constant(weights.mean.tolist())).divide(ee.Image.constant(weights.scale.tolist()))
    h = x.toArray().toArray(1)  # (bands, 1) column vector per pixel
    for layer in weights.layers:
        # Wᵀ (units × inputs) · h (inputs × 1) + b (units × 1)
        h = _constant_array(layer.kernel.T).matrixMultiply(h).add(_constant_array(layer.bias.reshape(-1, 1)))
        if layer.activation == "relu":
            h = h.max(0)
        elif layer.activation == "softmax":
            top = h.arrayReduce(ee.Reducer.max(), [0]).arrayGet([0, 0])
            e = h.subtract(top).exp()
            h = e.divide(e.arrayReduce(ee.Reducer.sum(), [0]).arrayGet([0, 0]))
    return h.arrayProject([0])  # 1-D: one probability per class


# --- the forest ------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    """Shortest text that parses back to the same double (Python's repr), no exponent surprises for EE."""
    text = repr(float(value))
    return "0" if text in ("0.0", "-0.0") else text


def pure_leaves(forest: Forest) -> bool:
    """True when every leaf holds a single class (the usual case for trees grown until pure)."""
    leaves = forest.proba[forest.left < 0]
    return bool(np.all((leaves == 0) | (leaves == 1)))


def forest_tree_strings(forest: Forest, bands: Sequence[str], class_index: Optional[int]) -> list[str]:
    """One rpart-format string per tree whose leaves hold the fraction of ``class_index`` there (``None``: the
    position of the leaf's most frequent class). Lines are
    ``id) band<=threshold n loss value`` (`` *`` at leaves), indented two spaces a level, in pre-order (the
    ``<=`` side first); the children of node ``id`` are ``2·id`` (``<=``) and ``2·id+1`` (``>``)."""
    ends = list(forest.roots[1:]) + [len(forest.left)]
    return [_tree_string(forest, int(root), int(end), bands, class_index) for root, end in zip(forest.roots, ends)]


def _tree_string(forest: Forest, root: int, end: int, bands: Sequence[str], class_index: Optional[int]) -> str:
    lines = []
    stack = [(root, 1, 0, "root")]
    while stack:
        node, number, depth, split = stack.pop()
        leaf = forest.left[node] < 0
        # n and loss are informational in the format; inner nodes need a value too, only leaves' are output.
        value = _number(float(forest.proba[node, class_index]) if class_index is not None else float(np.argmax(forest.proba[node])))
        lines.append(f"{'  ' * depth}{number}) {split} {end - root if number == 1 else 1} 0 {value}" + (" *" if leaf else ""))
        if not leaf:
            band, threshold = bands[int(forest.feature[node])], _number(forest.threshold[node])
            stack.append((int(forest.right[node]), 2 * number + 1, depth + 1, f"{band}>{threshold}"))
            stack.append((int(forest.left[node]), 2 * number, depth + 1, f"{band}<={threshold}"))
    return "\n".join(lines)


def request_size(expression: Any) -> int:
    """Bytes of the serialised expression as the client sends it."""
    import json

    import ee

    return len(json.dumps(ee.serializer.encode(expression, for_cloud_api=True)))


def check_request_size(expression: Any, what: str = "The model") -> int:
    size = request_size(expression)
    if size > MAX_REQUEST_BYTES:
        raise GeoDLError(
            f"{what} is {size / 1e6:.1f} MB as an Earth Engine request; Earth Engine takes at most "
            f"{MAX_REQUEST_BYTES / 1e6:.0f} MB. Retrain with fewer or shallower trees (or fewer "
            "classes), or export it as a SavedModel and serve it on Vertex AI."
        )
    return size


def check_composite_bands(bundle: ModelBundle, composite_bands: Sequence[str], reflectance: bool = True) -> None:
    """Refuse a composite that is not the one the model was trained on: same band names in the same order,
    and the same scaling (geodl's composites are reflectance 0–1; a model trained on integer DNs is not)."""
    wanted, given = list(bundle.bands), list(composite_bands)
    if wanted != given:
        missing = [b for b in wanted if b not in given]
        detail = f"missing {missing}" if missing else "in another order or with extra bands"
        raise GeoDLError(
            f"The model was trained on the bands {wanted}; the composite has {given} ({detail}). "
            "Build the composite with exactly the model's bands and indices."
        )
    if not reflectance:
        return
    raster = bundle.raster_meta
    dtype = str(raster.get("source_dtype", "float32"))
    stats = bundle.statistics
    means = [abs(float(m)) for m in stats[0]] if stats else []
    if dtype.startswith(("uint", "int")) or (means and max(means) > 5.0):
        raise GeoDLError(
            f"The model was trained on {dtype} pixel values (band means up to {max(means, default=0):.0f}), "
            "but Earth Engine composites hold reflectance from 0 to 1. Train the model on a download "
            "of the same Earth Engine composite, then classify in Earth Engine."
        )
