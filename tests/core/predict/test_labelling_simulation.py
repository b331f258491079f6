"""Proof that labelling where the model is unsure helps: a simulated session on a seeded truth scene, the
oracle answering from the truth map, the same label budget for both strategies. Uncertainty sampling (the
dock's Suggest points) must reach the accuracy random sampling gets with the whole budget using at least 30%
fewer labels. Model: geodl's random forest (fast); scene: scripts/make_synthetic_scene.py, 64×64, 4 classes."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from geodl_plugin.core.predict.labelling_simulation import (
    RANDOM,
    UNCERTAINTY,
    forest_fit_predict,
    labels_to_reach,
    mean_curve,
    simulate_labelling,
)
from tests.conftest import REPO

BUDGET, BATCH, INITIAL, SEEDS = 120, 8, 8, (0, 1, 2)


def _scene(tmp_path):
    spec = importlib.util.spec_from_file_location("make_synthetic_scene", REPO / "scripts" / "make_synthetic_scene.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_synthetic_scene"] = module
    spec.loader.exec_module(module)
    return module.make_scene(tmp_path, size=64, points_per_class=1, seed=0, noise=0.5)


@pytest.mark.slow
def test_uncertainty_sampling_needs_30_percent_fewer_labels(tmp_path):
    import rasterio

    scene = _scene(tmp_path)
    image = rasterio.open(scene.image).read()
    truth = scene.truth_array.astype(np.int64) - 1
    fit = forest_fit_predict(image.reshape(4, -1).T.astype(np.float32), 4)
    curves = {
        s: mean_curve([simulate_labelling(image, truth, s, fit, BUDGET, BATCH, INITIAL, seed) for seed in SEEDS])
        for s in (RANDOM, UNCERTAINTY)
    }
    print("\nlabels  random  uncertainty (overall accuracy of the whole map, mean of 3 sessions)")
    for n, r, u in zip(curves[RANDOM].labels, curves[RANDOM].accuracy, curves[UNCERTAINTY].accuracy):
        print(f"{n:6d}  {r:.3f}   {u:.3f}")
    target = curves[RANDOM].accuracy[-1]
    needed = labels_to_reach(curves[UNCERTAINTY], target)
    print(
        f"random sampling with {BUDGET} labels: {target:.3f}; uncertainty sampling reaches it with "
        f"{needed if needed is None else round(needed, 1)} labels"
    )
    assert needed is not None and needed <= 0.7 * BUDGET
    assert curves[UNCERTAINTY].accuracy[-1] > target  # and ends higher with the same budget
