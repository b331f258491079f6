"""Model builders. Neural networks are pure Keras 3 (``keras.layers``, ``keras.ops``; nothing from ``tf.*``)
so they run on any Keras backend. The random forest is trained with scikit-learn and stored as plain arrays,
so loading it runs no code (no pickle); it predicts through scikit-learn's compiled trees rebuilt from those
arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

_FOREST_CHUNK = 262_144  # pixels per call into the compiled forest


def build_pixel_dnn(
    n_bands: int,
    n_classes: int,
    mean: Sequence[float] | np.ndarray,
    variance: Sequence[float] | np.ndarray,
    hidden_units: Sequence[int] = (64,),
    dropout: float = 0.2,
) -> Any:
    """Per-pixel DNN: z-score normalisation (the model's first layer, so scaling lives in exactly one place
    and travels with the weights) → Dense(relu) → Dropout … → softmax."""
    import keras

    inputs = keras.Input((n_bands,), name="pixels")
    x = keras.layers.Normalization(mean=list(map(float, mean)), variance=list(map(float, variance)), name="normalize")(inputs)
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(int(units), activation="relu", name=f"dense_{i}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(float(dropout), name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="geodl_pixel_dnn")


@dataclass
class Forest:
    """A fitted random forest as flat node arrays (all trees concatenated): what the model file stores, so
    loading runs no code (``np.load(allow_pickle=False)``).

    Prediction goes through scikit-learn's compiled trees: each tree is rebuilt from these arrays with
    ``sklearn.tree._tree.Tree.__setstate__`` (plain arrays in, no unpickling) and the whole forest through
    ``RandomForestClassifier.predict_proba`` — the same code and the same numbers as the forest that was
    trained. ``n_node_samples`` and ``impurity`` only matter to training and inspection; files written before
    they were stored get dummies.

    Pixels are first reduced to their *bin key*: for each band, how many of the forest's split thresholds on
    that band lie below the value. Two pixels with the same key take the same branch at every node of every
    tree, so the forest is evaluated once per distinct key (a block of imagery holds far fewer keys than
    pixels) and the answers are remembered across calls in a table indexed by key. The probabilities are
    exactly those of evaluating every pixel."""

    left: np.ndarray  # int32, -1 at leaves
    right: np.ndarray
    feature: np.ndarray  # int32
    threshold: np.ndarray  # float64
    proba: np.ndarray  # (nodes, classes) float32 class fractions at each node
    roots: np.ndarray  # int32, one root per tree
    max_depth: int
    n_features: int = 0  # 0: unknown (older files); taken from the first input then
    n_node_samples: Optional[np.ndarray] = None  # int64 per node
    impurity: Optional[np.ndarray] = None  # float64 per node
    missing_go_to_left: Optional[np.ndarray] = None  # uint8 per node: where NaN goes (older files: right)
    _compiled: Any = field(default=None, init=False, repr=False, compare=False)
    _memo: Any = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_sklearn(cls, forest: Any) -> Forest:
        lefts, rights, feats, thrs, probas, roots, counts, impurities, nan_left = [], [], [], [], [], [], [], [], []
        offset = 0
        depth = 0
        for est in forest.estimators_:
            t = est.tree_
            n = t.node_count
            leaf = t.children_left == -1
            lefts.append(np.where(leaf, -1, t.children_left + offset))
            rights.append(np.where(leaf, -1, t.children_right + offset))
            feats.append(np.where(leaf, 0, t.feature))
            thrs.append(t.threshold)
            value = t.value[:, 0, :].astype(np.float64)
            probas.append(value / np.maximum(value.sum(axis=1, keepdims=True), 1e-12))
            counts.append(t.n_node_samples)
            impurities.append(t.impurity)
            state = t.__getstate__()["nodes"]
            nan_left.append(state["missing_go_to_left"] if "missing_go_to_left" in state.dtype.names else np.zeros(n, np.uint8))
            roots.append(offset)
            depth = max(depth, int(t.max_depth))
            offset += n
        return cls(
            np.concatenate(lefts).astype(np.int32),
            np.concatenate(rights).astype(np.int32),
            np.concatenate(feats).astype(np.int32),
            np.concatenate(thrs).astype(np.float64),
            np.concatenate(probas).astype(np.float32),
            np.array(roots, np.int32),
            depth,
            int(forest.n_features_in_),
            np.concatenate(counts).astype(np.int64),
            np.concatenate(impurities).astype(np.float64),
            np.concatenate(nan_left).astype(np.uint8),
        )

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, classes), float32, through scikit-learn's compiled forest."""
        return self.classify(x, probabilities=True)[2]  # type: ignore[return-value]

    def classify(self, x: np.ndarray, probabilities: bool = False) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """(most probable class index uint8, its probability float32, all probabilities or None). Through
        the bin-key table the first two are looked up, not recomputed from the probabilities."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"expected (pixels, bands), got shape {x.shape}")
        n_classes = self.proba.shape[1]
        if not len(x):
            return np.zeros(0, np.uint8), np.zeros(0, np.float32), np.zeros((0, n_classes), np.float32)
        forest = self.compiled(x.shape[1])
        memo = self._memo if self._memo is not None and self._memo.n_features == x.shape[1] else None
        if memo is None:
            memo = self._memo = _BinMemo.build(self, x.shape[1])
        if memo.cells:
            return memo.lookup(x, forest.predict_proba, probabilities)
        out = np.empty((len(x), n_classes), np.float32)
        for start in range(0, len(x), _FOREST_CHUNK):  # bounds sklearn's per-thread float64 accumulators
            out[start : start + _FOREST_CHUNK] = forest.predict_proba(x[start : start + _FOREST_CHUNK])
        return out.argmax(axis=1).astype(np.uint8), out.max(axis=1), out if probabilities else None

    def compiled(self, n_features: int = 0) -> Any:
        """The scikit-learn ``RandomForestClassifier`` these arrays describe (built once, then cached)."""
        n_features = int(self.n_features or n_features)
        if self._compiled is not None and self._compiled.n_features_in_ == n_features:
            return self._compiled
        import os

        from sklearn.ensemble import RandomForestClassifier
        from sklearn.tree import DecisionTreeClassifier
        from sklearn.tree._tree import NODE_DTYPE, Tree

        if n_features <= int(self.feature.max(initial=0)):
            raise ValueError(f"the forest splits on feature {int(self.feature.max())}; got {n_features} features")
        n_classes = self.proba.shape[1]
        classes = np.arange(n_classes, dtype=np.int64)
        bounds = list(self.roots) + [len(self.left)]
        counts = self.n_node_samples if self.n_node_samples is not None else np.ones(len(self.left), np.int64)
        impurity = self.impurity if self.impurity is not None else np.zeros(len(self.left), np.float64)
        estimators = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            nodes = np.zeros(b - a, dtype=NODE_DTYPE)
            leaf = self.left[a:b] < 0
            nodes["left_child"] = np.where(leaf, -1, self.left[a:b] - a)
            nodes["right_child"] = np.where(leaf, -1, self.right[a:b] - a)
            nodes["feature"] = np.where(leaf, -2, self.feature[a:b])  # sklearn's TREE_UNDEFINED at leaves
            nodes["threshold"] = np.where(leaf, -2.0, self.threshold[a:b])
            nodes["impurity"] = impurity[a:b]
            nodes["n_node_samples"] = counts[a:b]
            nodes["weighted_n_node_samples"] = counts[a:b]
            if self.missing_go_to_left is not None and "missing_go_to_left" in NODE_DTYPE.names:
                nodes["missing_go_to_left"] = self.missing_go_to_left[a:b]
            tree = Tree(n_features, np.array([n_classes], dtype=np.intp), 1)
            tree.__setstate__(
                {
                    "max_depth": int(self.max_depth),
                    "node_count": int(b - a),
                    "nodes": nodes,
                    "values": np.ascontiguousarray(self.proba[a:b, None, :], np.float64),
                }
            )
            est = DecisionTreeClassifier()
            est.tree_, est.n_outputs_, est.n_classes_, est.classes_ = tree, 1, n_classes, classes
            est.n_features_in_, est.max_features_ = n_features, n_features
            estimators.append(est)
        rf = RandomForestClassifier(n_estimators=len(estimators), n_jobs=os.cpu_count() or 1)
        rf.estimators_, rf.n_outputs_, rf.n_classes_, rf.classes_ = estimators, 1, n_classes, classes
        rf.n_features_in_ = n_features
        self._compiled = rf
        return rf

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "left": self.left,
            "right": self.right,
            "feature": self.feature,
            "threshold": self.threshold,
            "proba": self.proba,
            "roots": self.roots,
            "max_depth": np.array(self.max_depth),
            "n_features": np.array(self.n_features),
        }
        if self.n_node_samples is not None:
            arrays["n_node_samples"] = self.n_node_samples
        if self.impurity is not None:
            arrays["impurity"] = self.impurity
        if self.missing_go_to_left is not None:
            arrays["missing_go_to_left"] = self.missing_go_to_left
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Any) -> Forest:
        names = set(arrays.keys()) if hasattr(arrays, "keys") else set(arrays.files)
        optional = {k: arrays[k] for k in ("n_node_samples", "impurity", "missing_go_to_left") if k in names}
        return cls(
            arrays["left"],
            arrays["right"],
            arrays["feature"],
            arrays["threshold"],
            arrays["proba"],
            arrays["roots"],
            int(arrays["max_depth"]),
            int(arrays["n_features"]) if "n_features" in names else 0,
            **optional,
        )


class _BinMemo:
    """Forest answers by bin key (see :class:`Forest`): per band the sorted split thresholds, strides that
    make the per-band bin numbers one integer key, and a table of probabilities for the keys seen so far.
    Used when the key space is small enough for a dense table (``cells`` > 0); else ``cells`` is 0."""

    MAX_CELLS = 1 << 22  # the dense table: ≤ 4 Mi keys (a few tens of MB with its probabilities)

    def __init__(self, n_features: int, edges: list[np.ndarray], n_classes: int) -> None:
        import threading

        self.n_features = n_features
        self.edges = edges
        sizes = [len(e) + 1 for e in edges]
        self.cells = int(np.prod(sizes, dtype=np.float64)) if edges else 0
        if self.cells > self.MAX_CELLS:
            self.cells = 0
        self.strides = np.cumprod([1] + sizes[:-1]).astype(np.int64)
        self.known = np.zeros(self.cells, bool)
        self.table = np.zeros((self.cells, n_classes), np.float32)
        self.best = np.zeros(self.cells, np.uint8)
        self.confidence = np.zeros(self.cells, np.float32)
        self.lock = threading.Lock()
        self.luts: dict[int, np.ndarray] = {}

    @classmethod
    def build(cls, forest: Forest, n_features: int) -> _BinMemo:
        split = forest.left >= 0
        edges = []
        for f in range(n_features):
            t = np.unique(forest.threshold[split & (forest.feature == f)])
            # float32 edges rounded down: for any float32 v, t < v exactly when edge < v (v > t means v is at
            # least the next float32 above t's round-down), so binning runs on float32 without conversion
            e = t.astype(np.float32)
            edges.append(np.unique(np.where(e > t, np.nextafter(e, np.float32(-np.inf)), e)))
        return cls(n_features, edges, forest.proba.shape[1])

    INTEGER_LUT = 1 << 16  # integer-valued bands in [0, 65536) (8- and 16-bit imagery) bin by table look-up

    def keys(self, x: np.ndarray) -> np.ndarray:
        # searchsorted 'left' counts thresholds t < v; a pixel goes left at a node iff v <= t, so equal counts
        # mean equal branches everywhere (NaN rows never get here). Keys fit int32: cells ≤ MAX_CELLS.
        key = np.zeros(len(x), np.int32)
        for f, (edges, stride) in enumerate(zip(self.edges, self.strides)):
            if len(edges):
                column = np.ascontiguousarray(x[:, f])
                scaled = self._integer_bins(f, column)
                if scaled is None:
                    scaled = np.searchsorted(edges, column, side="left").astype(np.int32) * np.int32(stride)
                key += scaled
        return key

    def _integer_bins(self, f: int, column: np.ndarray) -> Optional[np.ndarray]:
        """Count × stride for a band of whole numbers in [0, 65536) (digital numbers, as most imagery holds),
        read from a 65,536-entry table per band: a gather instead of a binary search per value."""
        if not (column.min() >= 0 and column.max() < self.INTEGER_LUT):
            return None
        whole = column.astype(np.int32)
        if not np.array_equal(whole, column):
            return None
        if f not in self.luts:
            values = np.arange(self.INTEGER_LUT, dtype=np.float32)
            bins = np.searchsorted(self.edges[f], values, side="left")
            self.luts[f] = (bins * int(self.strides[f])).astype(np.int32)
        return self.luts[f][whole]

    def lookup(self, x: np.ndarray, predict: Any, probabilities: bool) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        if np.isnan(x.ravel()).any():  # NaN follows each node's missing-value branch, not a bin: direct
            nan = np.isnan(x).any(axis=1)
            probs = np.empty((len(x), self.table.shape[1]), np.float32)
            probs[nan] = predict(x[nan])
            probs[~nan] = self.lookup(x[~nan], predict, True)[2]
            return probs.argmax(axis=1).astype(np.uint8), probs.max(axis=1), probs if probabilities else None
        key = self.keys(x)
        missing = ~self.known[key]
        if missing.any():
            with self.lock:
                new, first = np.unique(key[missing], return_index=True)
                rows = np.flatnonzero(missing)[first]  # one pixel stands for each new key
                for start in range(0, len(rows), _FOREST_CHUNK):
                    cells = new[start : start + _FOREST_CHUNK]
                    probs = predict(x[rows[start : start + _FOREST_CHUNK]])
                    self.table[cells] = probs
                    self.best[cells] = probs.argmax(axis=1)
                    self.confidence[cells] = probs.max(axis=1)
                self.known[new] = True
        return self.best[key], self.confidence[key], self.table[key] if probabilities else None


def fit_random_forest(
    x: np.ndarray,
    y_index: np.ndarray,
    n_classes: int,
    n_trees: int = 200,
    max_depth: int = 20,
    seed: int = 0,
    class_weight: str | None = "balanced",
) -> Forest:
    """Fit scikit-learn's forest; its output columns are mapped onto class-table indices 0..n_classes-1,
    so a class missing from the training split still has a (zero) column."""
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(n_estimators=n_trees, max_depth=max_depth, random_state=seed, n_jobs=-1, class_weight=class_weight)
    rf.fit(x, y_index)
    forest = Forest.from_sklearn(rf)
    if forest.proba.shape[1] != n_classes:
        proba = np.zeros((len(forest.proba), n_classes), np.float32)
        proba[:, rf.classes_.astype(int)] = forest.proba
        forest.proba = proba
    return forest
