"""Regression models: a number per pixel (roof fraction, tree cover %, biomass) instead of a class.

- :class:`ForestRegressor`: scikit-learn's random forest stored as plain arrays (like the classifier's
  ``Forest``: loading runs no code, no pickle), predicted with NumPy. Besides the mean of the trees it gives
  their standard deviation, the spread that becomes the uncertainty raster.
- :func:`build_dnn_regressor`: a pure-Keras pixel DNN. Like the classifier, it normalises its input in its
  first layer, and it also undoes the target's standardisation in its last one, so the saved model maps raw
  pixel values straight to target units: one scaling path, inside the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..runtime.errors import GeoDLError

_TREE_GROUP = 16  # trees walked together: bounds the (rows, trees) index matrix


@dataclass
class ForestRegressor:
    """A fitted random-forest regressor as flat node arrays (all trees concatenated)."""

    left: np.ndarray  # int32, -1 at leaves
    right: np.ndarray
    feature: np.ndarray  # int32
    threshold: np.ndarray  # float64
    value: np.ndarray  # float64: the mean target of the training samples at each node
    roots: np.ndarray  # int32, one root per tree
    max_depth: int

    @classmethod
    def from_sklearn(cls, forest: Any) -> ForestRegressor:
        lefts, rights, feats, thrs, values, roots = [], [], [], [], [], []
        offset = 0
        depth = 0
        for est in forest.estimators_:
            t = est.tree_
            leaf = t.children_left == -1
            lefts.append(np.where(leaf, -1, t.children_left + offset))
            rights.append(np.where(leaf, -1, t.children_right + offset))
            feats.append(np.where(leaf, 0, t.feature))
            thrs.append(t.threshold)
            values.append(t.value[:, 0, 0])
            roots.append(offset)
            depth = max(depth, int(t.max_depth))
            offset += t.node_count
        return cls(
            np.concatenate(lefts).astype(np.int32),
            np.concatenate(rights).astype(np.int32),
            np.concatenate(feats).astype(np.int32),
            np.concatenate(thrs).astype(np.float64),
            np.concatenate(values).astype(np.float64),
            np.array(roots, np.int32),
            depth,
        )

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def tree_predictions(self, x: np.ndarray) -> np.ndarray:
        """(rows, trees) float64: each tree's prediction."""
        x = np.asarray(x, dtype=np.float32)
        out = np.empty((len(x), self.n_trees), dtype=np.float64)
        rows = np.arange(len(x))[:, None]
        for start in range(0, self.n_trees, _TREE_GROUP):
            roots = self.roots[start : start + _TREE_GROUP]
            node = np.broadcast_to(roots, (len(x), len(roots))).copy()
            for _ in range(self.max_depth):
                left = self.left[node]
                active = left >= 0
                if not active.any():
                    break
                go_left = x[rows, self.feature[node]] <= self.threshold[node]
                node = np.where(active, np.where(go_left, left, self.right[node]), node)
            out[:, start : start + len(roots)] = self.value[node]
        return out

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean over the trees, standard deviation over the trees), float32 each."""
        trees = self.tree_predictions(x)
        return trees.mean(axis=1).astype(np.float32), trees.std(axis=1).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "left": self.left,
            "right": self.right,
            "feature": self.feature,
            "threshold": self.threshold,
            "value": self.value,
            "roots": self.roots,
            "max_depth": np.array(self.max_depth),
        }

    @classmethod
    def from_arrays(cls, arrays: Any) -> ForestRegressor:
        return cls(
            arrays["left"],
            arrays["right"],
            arrays["feature"],
            arrays["threshold"],
            arrays["value"],
            arrays["roots"],
            int(arrays["max_depth"]),
        )


def fit_forest_regressor(
    x: np.ndarray, y: np.ndarray, n_trees: int = 200, max_depth: int = 20, min_samples_leaf: int = 1, seed: int = 0
) -> ForestRegressor:
    from sklearn.ensemble import RandomForestRegressor

    if len(x) < 2:
        raise GeoDLError(f"A regression needs at least 2 samples (got {len(x)}).")
    rf = RandomForestRegressor(n_estimators=n_trees, max_depth=max_depth, min_samples_leaf=min_samples_leaf, random_state=seed, n_jobs=-1)
    rf.fit(x, y)
    return ForestRegressor.from_sklearn(rf)


def build_dnn_regressor(
    n_bands: int,
    mean: Sequence[float] | np.ndarray,
    variance: Sequence[float] | np.ndarray,
    target_mean: float,
    target_std: float,
    hidden_units: Sequence[int] = (64, 64),
    dropout: float = 0.0,
) -> Any:
    """Per-pixel regression DNN: z-score the bands → Dense(relu) … → one linear unit → × target std + target
    mean. The last layer has no weights, so the linear unit learns the standardised target (Adam does not
    care that the loss is measured in target units)."""
    import keras

    inputs = keras.Input((n_bands,), name="pixels")
    x = keras.layers.Normalization(mean=list(map(float, mean)), variance=list(map(float, variance)), name="normalize")(inputs)
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(int(units), activation="relu", name=f"dense_{i}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(float(dropout), name=f"dropout_{i}")(x)
    x = keras.layers.Dense(1, name="standardised")(x)
    outputs = keras.layers.Rescaling(scale=float(target_std), offset=float(target_mean), name="value")(x)
    return keras.Model(inputs, outputs, name="geodl_pixel_dnn_regression")


def predict_keras_regressor(model: Any, x: np.ndarray, batch: int = 262_144) -> np.ndarray:
    """float32 (rows,) target values from a Keras regressor, in bounded batches."""
    import keras

    x = np.asarray(x, dtype=np.float32)
    parts = [keras.ops.convert_to_numpy(model.predict_on_batch(x[i : i + batch])).reshape(-1) for i in range(0, max(len(x), 1), batch)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def predict_values(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(values, spread or None) float32 for raw pixel rows: the forest also gives its trees' spread."""
    if isinstance(model, ForestRegressor):
        return model.predict(x)
    return predict_keras_regressor(model, x), None
