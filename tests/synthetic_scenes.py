"""Seeded truth scenes for the U-Net-from-points tests: fields (a Voronoi partition) of four classes, one
spectral signature per class plus independent per-pixel Gaussian noise, and labelled points drawn from the
truth map. The same arguments always give the same files.

Two regimes, set by ``separation`` (the distance of each class mean from the others' along its own band, in
noise standard deviations):

- :func:`spectral_scene` (8 σ): one pixel's spectrum identifies its class; a per-pixel model is right
  everywhere, and so must a U-Net be.
- :func:`noisy_fields_scene` (1.9 σ): the best per-pixel rule is right for only ~80 % of pixels, but classes
  fill whole fields, so a model that sees the neighbourhood can be right almost everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.core.synthetic import ORIGIN, PIXEL, write_points, write_raster

CLASS_NAMES = ("crop", "forest", "urban", "water")  # ids 1..4, as read_labels numbers the sorted names
SCALE, OFFSET = 300.0, 1000.0  # digital-number-like values


@dataclass
class TruthScene:
    image: Path
    truth: Path
    points: Path  # layer "points", field "name"
    truth_array: np.ndarray  # (h, w) uint8 class ids 1..4
    class_names: tuple[str, ...] = CLASS_NAMES


def fields(size: int, n_fields: int, rng: np.random.Generator) -> np.ndarray:
    """A Voronoi partition into ``n_fields`` fields, classes 1..4 each used (cycled, then shuffled)."""
    seeds = rng.uniform(0, size, (n_fields, 2))
    classes = rng.permutation(np.arange(n_fields) % len(CLASS_NAMES) + 1)
    rows, cols = np.mgrid[0:size, 0:size]
    d = (rows[None] - seeds[:, 0, None, None]) ** 2 + (cols[None] - seeds[:, 1, None, None]) ** 2
    return classes[d.argmin(axis=0)].astype(np.uint8)


def truth_scene(
    out_dir: str | Path, size: int = 128, n_fields: int = 10, separation: float = 8.0, points_per_class: int = 100, seed: int = 0
) -> TruthScene:
    """Write ``scene.tif`` (float32, 4 bands), ``truth.tif`` (uint8) and ``points.gpkg`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth = fields(size, n_fields, rng)
    means = separation * np.eye(len(CLASS_NAMES))[truth - 1]  # (h, w, 4): class c bright in band c
    image = OFFSET + SCALE * (means + rng.standard_normal(means.shape))
    write_raster(out / "scene.tif", np.moveaxis(image, -1, 0).astype(np.float32))
    write_raster(out / "truth.tif", truth[None], nodata=255)
    xy, names = [], []
    for cid, name in enumerate(CLASS_NAMES, start=1):
        rr, cc = np.nonzero(truth == cid)
        pick = rng.choice(len(rr), size=min(points_per_class, len(rr)), replace=False)
        for r, c in zip(rr[pick], cc[pick], strict=True):
            xy.append((ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL))
            names.append(name)
    write_points(out / "points.gpkg", xy, names)
    return TruthScene(out / "scene.tif", out / "truth.tif", out / "points.gpkg", truth)


def spectral_scene(out_dir: str | Path, **kwargs) -> TruthScene:
    return truth_scene(out_dir, **{"separation": 8.0, **kwargs})


def noisy_fields_scene(out_dir: str | Path, **kwargs) -> TruthScene:
    return truth_scene(out_dir, **{"separation": 1.9, **kwargs})


def bayes_pixel_accuracy(separation: float, n: int = 200_000, seed: int = 0) -> float:
    """Accuracy of the best per-pixel rule (the brightest band) for a given separation, by simulation."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CLASS_NAMES), n)
    x = separation * np.eye(len(CLASS_NAMES))[y] + rng.standard_normal((n, len(CLASS_NAMES)))
    return float((x.argmax(axis=1) == y).mean())
