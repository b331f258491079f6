"""Model builders. Neural networks are pure Keras 3 (``keras.layers``, ``keras.ops``; nothing from ``tf.*``)
so they run on any Keras backend. The random forest is trained with scikit-learn and stored as plain arrays,
so loading it runs no code (no pickle); it predicts through scikit-learn's compiled trees rebuilt from those
arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

PIXEL_DNN, RANDOM_FOREST, UNET = "dnn", "rf", "unet"
MODEL_TYPES = (PIXEL_DNN, RANDOM_FOREST, UNET)
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
    x = keras.layers.Normalization(mean=list(map(float, mean)), variance=list(map(float, variance)),
                                   name="normalize")(inputs)
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
    they were stored get dummies."""

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
    _compiled: Any = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_sklearn(cls, forest: Any) -> Forest:
        lefts, rights, feats, thrs, probas, roots, counts, impurities = [], [], [], [], [], [], [], []
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
            roots.append(offset)
            depth = max(depth, int(t.max_depth))
            offset += n
        return cls(np.concatenate(lefts).astype(np.int32), np.concatenate(rights).astype(np.int32),
                   np.concatenate(feats).astype(np.int32), np.concatenate(thrs).astype(np.float64),
                   np.concatenate(probas).astype(np.float32), np.array(roots, np.int32), depth,
                   int(forest.n_features_in_), np.concatenate(counts).astype(np.int64),
                   np.concatenate(impurities).astype(np.float64))

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, classes), float32, through scikit-learn's compiled forest."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"expected (pixels, bands), got shape {x.shape}")
        n_classes = self.proba.shape[1]
        if not len(x):
            return np.zeros((0, n_classes), np.float32)
        forest = self.compiled(x.shape[1])
        out = np.empty((len(x), n_classes), np.float32)
        for start in range(0, len(x), _FOREST_CHUNK):  # bounds sklearn's per-thread float64 accumulators
            out[start:start + _FOREST_CHUNK] = forest.predict_proba(x[start:start + _FOREST_CHUNK])
        return out

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
            tree = Tree(n_features, np.array([n_classes], dtype=np.intp), 1)
            tree.__setstate__({"max_depth": int(self.max_depth), "node_count": int(b - a), "nodes": nodes,
                               "values": np.ascontiguousarray(self.proba[a:b, None, :], np.float64)})
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
        arrays = {"left": self.left, "right": self.right, "feature": self.feature, "threshold": self.threshold,
                  "proba": self.proba, "roots": self.roots, "max_depth": np.array(self.max_depth),
                  "n_features": np.array(self.n_features)}
        if self.n_node_samples is not None:
            arrays["n_node_samples"] = self.n_node_samples
        if self.impurity is not None:
            arrays["impurity"] = self.impurity
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Any) -> Forest:
        names = set(arrays.keys()) if hasattr(arrays, "keys") else set(arrays.files)
        optional = {k: arrays[k] for k in ("n_node_samples", "impurity") if k in names}
        return cls(arrays["left"], arrays["right"], arrays["feature"], arrays["threshold"], arrays["proba"],
                   arrays["roots"], int(arrays["max_depth"]),
                   int(arrays["n_features"]) if "n_features" in names else 0, **optional)


def fit_random_forest(x: np.ndarray, y_index: np.ndarray, n_classes: int, n_trees: int = 200,
                      max_depth: int = 20, seed: int = 0, class_weight: str | None = "balanced") -> Forest:
    """Fit scikit-learn's forest; its output columns are mapped onto class-table indices 0..n_classes-1,
    so a class missing from the training split still has a (zero) column."""
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(n_estimators=n_trees, max_depth=max_depth, random_state=seed, n_jobs=-1,
                                class_weight=class_weight)
    rf.fit(x, y_index)
    forest = Forest.from_sklearn(rf)
    if forest.proba.shape[1] != n_classes:
        proba = np.zeros((len(forest.proba), n_classes), np.float32)
        proba[:, rf.classes_.astype(int)] = forest.proba
        forest.proba = proba
    return forest
