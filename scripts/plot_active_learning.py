"""Plot the simulated labelling session (uncertainty vs random sampling) for the README.

Same set-up as tests/core/predict/test_labelling_simulation.py: the seeded 64×64 synthetic scene
(scripts/make_synthetic_scene.py, noise 0.5), geodl's random forest, 8 initial labels, batches of 8, 120
labels, the oracle answering from the truth map; mean of ``--sessions`` sessions.

Usage: ``python scripts/plot_active_learning.py [docs/active-learning.png] [--sessions 5]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default=str(REPO / "docs" / "active-learning.png"))
    parser.add_argument("--sessions", type=int, default=5)
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio

    from geodl_plugin.core.predict.labelling_simulation import (
        RANDOM,
        UNCERTAINTY,
        forest_fit_predict,
        labels_to_reach,
        mean_curve,
        simulate_labelling,
    )

    spec = importlib.util.spec_from_file_location("make_synthetic_scene", REPO / "scripts" / "make_synthetic_scene.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["make_synthetic_scene"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory() as d:
        scene = module.make_scene(d, size=64, points_per_class=1, seed=0, noise=0.5)
        image = rasterio.open(scene.image).read()
    truth = scene.truth_array.astype(np.int64) - 1
    fit = forest_fit_predict(image.reshape(4, -1).T.astype(np.float32), 4)
    curves = {
        s: mean_curve([simulate_labelling(image, truth, s, fit, 120, 8, 8, seed) for seed in range(args.sessions)])
        for s in (RANDOM, UNCERTAINTY)
    }
    target = curves[RANDOM].accuracy[-1]
    needed = labels_to_reach(curves[UNCERTAINTY], target)

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.plot(curves[RANDOM].labels, curves[RANDOM].accuracy, "o-", ms=3, color="#888888", label="random points")
    ax.plot(
        curves[UNCERTAINTY].labels, curves[UNCERTAINTY].accuracy, "o-", ms=3, color="#d95f02", label="Suggest points (margin, spread out)"
    )
    ax.axhline(target, color="#888888", lw=0.8, ls=":")
    if needed is not None:
        ax.axvline(needed, color="#d95f02", lw=0.8, ls=":")
        ax.annotate(
            f"{needed:.0f} labels vs 120: {100 * (1 - needed / 120):.0f}% fewer",
            (needed, target),
            xytext=(needed + 8, target - 0.06),
            arrowprops={"arrowstyle": "->", "color": "#555555"},
        )
    ax.set_xlabel("labelled points")
    ax.set_ylabel("overall accuracy of the map")
    ax.set_title(f"Simulated labelling, synthetic 64×64 scene, random forest ({args.sessions} sessions)", fontsize=9)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.output)
    sys.stdout.write(f"{args.output}: random@120 = {target:.3f}; uncertainty reaches it with {needed} labels\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
