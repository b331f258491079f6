"""Does labelling where the model is unsure help? A simulated labelling session on a scene whose truth is known.

The oracle is the truth map: every point the strategy asks about is labelled with its true class at once.
Each round the model is refitted on all labels so far, classifies the whole scene, and is scored against the
truth (overall accuracy over every pixel); then the strategy picks the next ``batch`` points:

- ``random``: uniformly among the unlabelled pixels (what one does without guidance);
- ``uncertainty``: :func:`.suggest.select_points` on the margin (or entropy) of the model's
  probabilities — exactly what the dock's **Suggest points** does, spread out and with a share per predicted
  class.

Both start from the same random initial labels and spend the same budget. :func:`labels_to_reach` reads the
label saving off the two curves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..runtime.errors import GeoDLError
from .raster_prediction import uncertainty_from_probabilities
from .suggest import ENTROPY, select_points

RANDOM, UNCERTAINTY = "random", "uncertainty"
FitPredict = Callable[[np.ndarray, np.ndarray, int], np.ndarray]  # (x_labelled, y_index, seed) → probs (pixels, C)


@dataclass
class LearningCurve:
    strategy: str
    labels: list[int] = field(default_factory=list)  # labels used at each round
    accuracy: list[float] = field(default_factory=list)  # overall accuracy of the map at that round


def forest_fit_predict(x_all: np.ndarray, n_classes: int, n_trees: int = 20, max_depth: int = 10) -> FitPredict:
    """geodl's random forest (the plugin's own, predicted with its NumPy tree walker) as the model."""
    from ..models.networks import fit_random_forest

    def fit_predict(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
        forest = fit_random_forest(x, y, n_classes, n_trees=n_trees, max_depth=max_depth, seed=seed)
        return forest.predict_proba(x_all)

    return fit_predict


def simulate_labelling(
    image: np.ndarray,
    truth_index: np.ndarray,
    strategy: str,
    fit_predict: FitPredict,
    budget: int = 120,
    batch: int = 8,
    initial: int = 8,
    seed: int = 0,
    measure: str = "margin",
    min_distance_px: float = 3.0,
    class_share: float = 0.5,
) -> LearningCurve:
    """One session. ``image`` (bands, h, w); ``truth_index`` (h, w) class positions 0..C-1 (the oracle)."""
    if strategy not in (RANDOM, UNCERTAINTY):
        raise GeoDLError(f"Unknown strategy '{strategy}'.")
    bands, h, w = image.shape
    x_all = image.reshape(bands, -1).T.astype(np.float32)
    y_all = truth_index.ravel()
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(h * w, initial, replace=False))
    curve = LearningCurve(strategy)
    while True:
        probs = fit_predict(x_all[labelled], y_all[labelled], seed)
        curve.labels.append(len(labelled))
        curve.accuracy.append(float((probs.argmax(axis=1) == y_all).mean()))
        if len(labelled) >= budget:
            return curve
        n = min(batch, budget - len(labelled))
        if strategy == RANDOM:
            pool = np.setdiff1d(np.arange(h * w), labelled)
            new = list(rng.choice(pool, n, replace=False))
        else:
            entropy, margin = uncertainty_from_probabilities(probs)
            score = (entropy if measure == ENTROPY else 1.0 - margin).reshape(h, w)
            valid = np.ones((h, w), bool)
            valid.ravel()[labelled] = False
            done = np.array([(i // w, i % w) for i in labelled])
            rc = select_points(
                score, probs.argmax(axis=1).reshape(h, w), valid, n, min_distance_px, class_share, done, seed + len(labelled)
            )
            new = list(rc[:, 0] * w + rc[:, 1])
        labelled += [int(i) for i in new]


def mean_curve(curves: list[LearningCurve]) -> LearningCurve:
    """The average of sessions with the same label counts (different seeds)."""
    return LearningCurve(curves[0].strategy, list(curves[0].labels), [float(v) for v in np.mean([c.accuracy for c in curves], axis=0)])


def labels_to_reach(curve: LearningCurve, target: float) -> Optional[float]:
    """Labels at which ``curve`` first reaches ``target`` accuracy (linear between rounds); None if never."""
    for i, (n, acc) in enumerate(zip(curve.labels, curve.accuracy)):
        if acc >= target:
            if i == 0:
                return float(n)
            n0, a0 = curve.labels[i - 1], curve.accuracy[i - 1]
            return float(n0 + (n - n0) * (target - a0) / max(acc - a0, 1e-12))
    return None
