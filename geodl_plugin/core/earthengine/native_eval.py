"""A NumPy evaluator of serialised Earth Engine expressions — only the algorithms :mod:`.native` emits — on a
handful of sample pixels. It reads the request JSON exactly as the client sends it (``ee.serializer.encode``
with ``for_cloud_api=True``), so it checks what goes over the wire, not the Python objects that built it.

Semantics follow Earth Engine's documentation: binary image operators pair bands one to one or broadcast a
one-band image; array pixels combine element-wise with scalars; ``arrayReduce`` keeps reduced axes with
length 1; ``arrayArgmax`` returns the position of the first maximum; a decision-tree ensemble in
``REGRESSION`` mode outputs the mean of its trees' leaf values, a node's ``<=`` child being taken when the
pixel value is at most the threshold. Pixels are evaluated in float64 (Earth Engine promotes float ⊕ double
to double).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..runtime.errors import GeoDLError


@dataclass
class Img:
    """An image on N sample pixels: (band name, values of shape (N, *array shape) or (1, …) for constants)."""

    bands: list[tuple[str, np.ndarray]]

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.bands]

    def values(self, name: str) -> np.ndarray:
        return dict(self.bands)[name]


@dataclass
class EEArray:
    value: np.ndarray


@dataclass
class Ensemble:
    trees: list[dict[int, tuple[str, str, float, float, bool]]]  # number → (band, op, threshold, value, leaf)
    mode: str = "CLASSIFICATION"


@dataclass
class Reducer:
    name: str


@dataclass
class Evaluator:
    """``Evaluator(inputs).evaluate(encoded)``; ``inputs`` maps an asset id (``Image.load``) to a dict of band
    name → (N,) values."""

    inputs: Mapping[str, Mapping[str, np.ndarray]]
    called: set[str] = field(default_factory=set)

    def evaluate(self, encoded: dict) -> Any:
        values = encoded["values"]
        cache: dict[str, Any] = {}

        def ref(key: str) -> Any:
            if key not in cache:
                cache[key] = self._node(values[key], ref)
            return cache[key]

        return ref(encoded["result"])

    def _node(self, node: dict, ref: Callable[[str], Any]) -> Any:
        if "constantValue" in node:
            return node["constantValue"]
        if "valueReference" in node:
            return ref(node["valueReference"])
        if "arrayValue" in node:
            return [self._node(v, ref) for v in node["arrayValue"]["values"]]
        if "dictionaryValue" in node:
            return {k: self._node(v, ref) for k, v in node["dictionaryValue"]["values"].items()}
        if "integerValue" in node:
            return int(node["integerValue"])
        if "nullValue" in node:
            return None
        if "functionInvocationValue" in node:
            call = node["functionInvocationValue"]
            name = call["functionName"]
            args = {k: self._node(v, ref) for k, v in call.get("arguments", {}).items()}
            fn = _FUNCTIONS.get(name)
            if fn is None:
                raise GeoDLError(f"The evaluator does not implement '{name}'.")
            self.called.add(name)
            return fn(self, **args)
        raise GeoDLError(f"The evaluator cannot read the node {sorted(node)}.")


def _img(value: Any) -> Img:
    if isinstance(value, Img):
        return value
    return _constant(None, value)


def _constant(_: Any, value: Any) -> Img:
    if isinstance(value, EEArray):
        return Img([("constant", value.value[None, ...])])
    if isinstance(value, list):
        return Img([(f"constant_{i}", np.array([float(v)])) for i, v in enumerate(value)])
    return Img([("constant", np.array([float(value)]))])


def _binary(op: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., Img]:
    def apply(_: Any, image1: Any, image2: Any) -> Img:
        a, b = _img(image1), _img(image2)
        if len(a.bands) == len(b.bands):
            pairs = list(zip(a.bands, b.bands))
        elif len(b.bands) == 1:
            pairs = [(band, b.bands[0]) for band in a.bands]
        elif len(a.bands) == 1:
            pairs = [(a.bands[0], band) for band in b.bands]
        else:
            raise GeoDLError(f"Images with {len(a.bands)} and {len(b.bands)} bands cannot be combined.")
        out = []
        for (name_a, va), (_, vb) in pairs:
            va64, vb64 = np.asarray(va, np.float64), np.asarray(vb, np.float64)
            # An array pixel combines with a scalar pixel element-wise.
            while vb64.ndim < va64.ndim:
                vb64 = vb64[..., None]
            while va64.ndim < vb64.ndim:
                va64 = va64[..., None]
            out.append((name_a, op(va64, vb64)))
        return Img(out)

    return apply


def _load(self: Evaluator, id: str, version: Any = None) -> Img:  # noqa: A002 - EE's argument name
    if id not in self.inputs:
        raise GeoDLError(f"No sample pixels for the image '{id}'.")
    return Img([(k, np.asarray(v, np.float32)) for k, v in self.inputs[id].items()])


def _select(_: Any, input: Img, bandSelectors: list, newNames: Any = None) -> Img:  # noqa: A002, N803
    chosen = []
    for sel in bandSelectors:
        if isinstance(sel, int):
            chosen.append(input.bands[sel])
        else:
            matches = [b for b in input.bands if re.fullmatch(sel, b[0])]
            if not matches:
                raise GeoDLError(f"The image has no band '{sel}' ({input.names}).")
            chosen.extend(matches)
    if newNames:
        chosen = [(n, v) for n, (_, v) in zip(newNames, chosen)]
    return Img(chosen)


def _cast(dtype: Any) -> Callable[..., Img]:
    def apply(_: Any, value: Img) -> Img:
        out = []
        for n, v in value.bands:
            if np.issubdtype(np.dtype(dtype), np.integer):
                info = np.iinfo(dtype)
                v = np.clip(np.trunc(v), info.min, info.max)
            out.append((n, np.asarray(v).astype(dtype)))
        return Img(out)

    return apply


def _to_array(_: Any, image: Img, axis: int = 0) -> Img:
    parts = [np.asarray(v, np.float64) for _, v in image.bands]
    n = max(p.shape[0] for p in parts)
    parts = [np.broadcast_to(p, (n,) + p.shape[1:]) for p in parts]
    dims = parts[0].ndim - 1
    if axis == dims:  # one more dimension than the inputs
        value = np.stack(parts, axis=axis + 1)
    else:
        value = np.concatenate(parts, axis=axis + 1)
    return Img([("array", value)])


def _matrix_multiply(_: Any, image1: Img, image2: Img) -> Img:
    return Img([(image1.names[0], np.matmul(image1.bands[0][1], image2.bands[0][1]))])


def _array_reduce(_: Any, input: Img, reducer: Reducer, axes: list, fieldAxis: Any = None) -> Img:  # noqa: A002, N803
    fn: Any = {"max": np.max, "sum": np.sum, "mean": np.mean, "min": np.min}[reducer.name]
    return Img([(n, fn(v, axis=tuple(a + 1 for a in axes), keepdims=True)) for n, v in input.bands])


def _array_get(_: Any, image: Img, position: Any) -> Img:
    pos = [np.asarray(v).astype(int) for _, v in _img(position).bands]
    out = []
    for n, v in image.bands:
        rows = np.arange(v.shape[0])
        index = tuple(np.broadcast_to(p, (v.shape[0],)) for p in pos)
        out.append((n, v[(rows,) + index]))
    return Img(out)


def _array_project(_: Any, input: Img, axes: list) -> Img:  # noqa: A002
    out = []
    for n, v in input.bands:
        drop = tuple(i + 1 for i in range(v.ndim - 1) if i not in axes)
        if any(v.shape[d] != 1 for d in drop):
            raise GeoDLError("arrayProject: a dropped axis is longer than 1.")
        out.append((n, np.squeeze(v, axis=drop)))
    return Img(out)


def _array_argmax(_: Any, image: Img) -> Img:
    n, v = image.bands[0]
    flat = v.reshape(v.shape[0], -1).argmax(axis=1)  # the first maximum, as Earth Engine
    return Img([(n, np.stack(np.unravel_index(flat, v.shape[1:]), axis=1).astype(np.float64))])


def _array_flatten(_: Any, image: Img, coordinateLabels: list, separator: str = "_") -> Img:  # noqa: N803
    n, v = image.bands[0]
    if v.ndim != 2:
        raise GeoDLError("The evaluator flattens 1-D arrays only.")
    return Img([(label, v[:, i]) for i, label in enumerate(coordinateLabels[0])])


def _remap(_: Any, image: Img, **kw: Any) -> Img:
    lookup = {float(f): float(t) for f, t in zip(kw["from"], kw["to"])}
    n, v = image.bands[0]
    missing = set(np.unique(v).tolist()) - set(lookup)
    if missing and kw.get("defaultValue") is None:
        raise GeoDLError(f"remap: values {sorted(missing)} have no mapping (they would be masked).")
    default = kw.get("defaultValue")
    return Img([(kw.get("bandName") or n, np.array([lookup.get(float(x), default) for x in v], np.float64))])


def _rename(_: Any, input: Img, names: list) -> Img:  # noqa: A002
    return Img([(new, v) for new, (_, v) in zip(names, input.bands)])


def _add_bands(_: Any, dstImg: Img, srcImg: Img, names: Any = None, overwrite: bool = False) -> Img:  # noqa: N803
    src = [b for b in srcImg.bands if not names or b[0] in names]
    if overwrite:
        keep = [b for b in dstImg.bands if b[0] not in {n for n, _ in src}]
        return Img(keep + src)
    # Without overwrite a repeated name gets a suffix (ee.Image([0, 0]) has bands constant, constant_1).
    out = list(dstImg.bands)
    for name, v in src:
        taken, unique, i = {n for n, _ in out}, name, 0
        while unique in taken:
            i += 1
            unique = f"{name}_{i}"
        out.append((unique, v))
    return Img(out)


def _image_exp(_: Any, value: Img) -> Img:
    return Img([(n, np.exp(np.asarray(v, np.float64))) for n, v in value.bands])


def _image_round(_: Any, value: Img) -> Img:
    # Earth Engine rounds halves away from zero (Java's Math.round for positives).
    return Img([(n, np.sign(v) * np.floor(np.abs(np.asarray(v, np.float64)) + 0.5)) for n, v in value.bands])


_TREE_LINE = re.compile(r"^\s*(\d+)\) (?:root|(.+?)(<=|>)(\S+)) (\S+) (\S+) (\S+)( \*)?\s*$")


def parse_tree(text: str) -> dict[int, tuple[str, str, float, float, bool]]:
    """rpart text → {node number: (band, op, threshold, value, is leaf)}."""
    nodes = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _TREE_LINE.match(line)
        if not m:
            raise GeoDLError(f"Not an rpart tree line: {line!r}")
        number = int(m.group(1))
        band, op, threshold = m.group(2) or "", m.group(3) or "", float(m.group(4) or "nan")
        nodes[number] = (band, op, threshold, float(m.group(7)), bool(m.group(8)))
    if 1 not in nodes:
        raise GeoDLError("A tree string has no root line '1) root …'.")
    return nodes


def _tree_values(tree: dict[int, tuple[str, str, float, float, bool]], x: Img) -> np.ndarray:
    n = x.bands[0][1].shape[0]
    out = np.full(n, np.nan)
    stack = [(1, np.arange(n))]
    while stack:
        number, rows = stack.pop()
        band, op, threshold, value, leaf = tree[number]
        if leaf:
            out[rows] = value
            continue
        left, right = tree[2 * number], tree[2 * number + 1]
        pixel = np.asarray(x.values(left[0]), np.float64)[rows]
        take_left = pixel <= left[2] if left[1] == "<=" else pixel > left[2]
        if right[0] != left[0] or right[2] != left[2] or {left[1], right[1]} != {"<=", ">"}:
            raise GeoDLError(f"Node {number}'s children do not split on one band and threshold.")
        stack.append((2 * number, rows[take_left]))
        stack.append((2 * number + 1, rows[~take_left]))
    return out


def _decision_tree_ensemble(_: Any, treeStrings: list) -> Ensemble:  # noqa: N803
    return Ensemble([parse_tree(t) for t in treeStrings])


def _set_output_mode(_: Any, classifier: Ensemble, mode: str) -> Ensemble:
    return Ensemble(classifier.trees, mode)


def _classify(_: Any, image: Img, classifier: Ensemble, outputName: str = "classification") -> Img:  # noqa: N803
    per_tree = np.stack([_tree_values(t, image) for t in classifier.trees], axis=1)
    if classifier.mode == "REGRESSION":
        return Img([(outputName, per_tree.mean(axis=1))])
    if classifier.mode == "RAW":
        return Img([(outputName, per_tree)])
    raise GeoDLError(f"The evaluator does not implement the output mode '{classifier.mode}'.")


def _placement(_: Any, **kw: Any) -> Any:
    """What an export wraps around the image (projection, region, scale) decides where pixels are computed,
    not what a pixel holds: on sample pixels it passes the image through."""
    return kw.get("input", kw.get("image", ("placement", tuple(sorted(kw)))))


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "Projection": _placement,
    "GeometryConstructors.Rectangle": _placement,
    "Image.setDefaultProjection": _placement,
    "Image.clipToBoundsAndScale": _placement,
    "Image.clip": _placement,
    "Image.reproject": _placement,
    "Image.load": _load,
    "Image.select": _select,
    "Image.constant": _constant,
    "Array": lambda _, values, pixelType=None: EEArray(np.asarray(values, np.float64)),
    "Image.toFloat": _cast(np.float32),
    "Image.toDouble": _cast(np.float64),
    "Image.toUint8": _cast(np.uint8),
    "Image.toUint16": _cast(np.uint16),
    "Image.add": _binary(np.add),
    "Image.subtract": _binary(np.subtract),
    "Image.multiply": _binary(np.multiply),
    "Image.divide": _binary(np.divide),
    "Image.max": _binary(np.maximum),
    "Image.eq": _binary(lambda a, b: (a == b).astype(np.float64)),
    "Image.exp": _image_exp,
    "Image.round": _image_round,
    "Image.toArray": _to_array,
    "Image.matrixMultiply": _matrix_multiply,
    "Image.arrayReduce": _array_reduce,
    "Image.arrayGet": _array_get,
    "Image.arrayProject": _array_project,
    "Image.arrayArgmax": _array_argmax,
    "Image.arrayFlatten": _array_flatten,
    "Image.remap": _remap,
    "Image.rename": _rename,
    "Image.addBands": _add_bands,
    "Image.classify": _classify,
    "Classifier.decisionTreeEnsemble": _decision_tree_ensemble,
    "Classifier.setOutputMode": _set_output_mode,
    "Reducer.max": lambda _, **kw: Reducer("max"),
    "Reducer.sum": lambda _, **kw: Reducer("sum"),
    "Reducer.mean": lambda _, **kw: Reducer("mean"),
}
EMITTED = frozenset(_FUNCTIONS)


def evaluate_expression(encoded: dict, inputs: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Band name → (N,) values of the expression's result on the sample pixels."""
    image = Evaluator(inputs).evaluate(encoded)
    if not isinstance(image, Img):
        raise GeoDLError("The expression is not an image.")
    n = max(v.shape[0] for _, v in image.bands)
    return {name: np.broadcast_to(v, (n,) + v.shape[1:]) for name, v in image.bands}
