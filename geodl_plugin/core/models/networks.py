"""Model builders. Neural networks are pure Keras 3 (``keras.layers``, ``keras.ops``; nothing from ``tf.*``)
so they run on any Keras backend. The random forest is trained with scikit-learn and stored as plain arrays,
so loading it runs no code (no pickle)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


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
    """A fitted random forest as flat node arrays (all trees concatenated), predicted with NumPy."""

    left: np.ndarray  # int32, -1 at leaves
    right: np.ndarray
    feature: np.ndarray  # int32
    threshold: np.ndarray  # float64
    proba: np.ndarray  # (nodes, classes) float32 class fractions at leaves
    roots: np.ndarray  # int32, one root per tree
    max_depth: int

    @classmethod
    def from_sklearn(cls, forest: Any) -> Forest:
        lefts, rights, feats, thrs, probas, roots = [], [], [], [], [], []
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
            roots.append(offset)
            depth = max(depth, int(t.max_depth))
            offset += n
        return cls(np.concatenate(lefts).astype(np.int32), np.concatenate(rights).astype(np.int32),
                   np.concatenate(feats).astype(np.int32), np.concatenate(thrs).astype(np.float64),
                   np.concatenate(probas).astype(np.float32), np.array(roots, np.int32), depth)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        out = np.zeros((len(x), self.proba.shape[1]), dtype=np.float32)
        rows = np.arange(len(x))[:, None]
        for start in range(0, len(self.roots), 16):  # trees in groups bound the (n, trees) index matrix
            node = np.broadcast_to(self.roots[start:start + 16], (len(x), len(self.roots[start:start + 16]))).copy()
            for _ in range(self.max_depth):
                left = self.left[node]
                active = left >= 0
                if not active.any():
                    break
                go_left = x[rows, self.feature[node]] <= self.threshold[node]
                node = np.where(active, np.where(go_left, left, self.right[node]), node)
            out += self.proba[node].sum(axis=1)
        return out / len(self.roots)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"left": self.left, "right": self.right, "feature": self.feature, "threshold": self.threshold,
                "proba": self.proba, "roots": self.roots, "max_depth": np.array(self.max_depth)}

    @classmethod
    def from_arrays(cls, arrays: Any) -> Forest:
        return cls(arrays["left"], arrays["right"], arrays["feature"], arrays["threshold"], arrays["proba"],
                   arrays["roots"], int(arrays["max_depth"]))


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
