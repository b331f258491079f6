"""A seeded synthetic stand-in for GOOGLE/SATELLITE_EMBEDDING/V1/ANNUAL, in the dataset's layout: 64 float
bands A00-A63 on a 10 m UTM grid, every pixel a unit-length vector, masked where there is no embedding.

The truth is a function of the absolute map position (so any tiling of computePixels requests mosaics into
the same image): a blocky three-class map, each class a seeded unit centroid plus per-pixel noise, then
normalised. Served by the fake transport as computePixels responses (``install``).
"""

from __future__ import annotations

import numpy as np

BANDS = [f"A{i:02d}" for i in range(64)]
CLASSES = ("water", "forest", "crop")
NOISE = 0.3  # per-axis amplitude before normalising: noise norm ≈ 1.4 × the centroid's


class EmbeddingStandIn:
    def __init__(self, seed: int = 15, mask_box: tuple[float, float, float, float] | None = None) -> None:
        rng = np.random.default_rng(seed)
        centroids = rng.normal(size=(len(CLASSES), 64))
        self.centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        self.phase = rng.uniform(0, 1000, size=64)
        self.mask_box = mask_box  # xmin, ymin, xmax, ymax (map units) without an embedding

    def classes_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The true class of the pixels whose centres are (x, y): cells of 120 × 90 m."""
        return ((np.floor(x / 120.0) + np.floor(y / 90.0)) % len(CLASSES)).astype(np.int64)

    def masked_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.mask_box is None:
            return np.zeros(np.shape(x), dtype=bool)
        xmin, ymin, xmax, ymax = self.mask_box
        return (x >= xmin) & (x < xmax) & (y >= ymin) & (y < ymax)

    def vectors_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(…, 64) unit vectors: the class centroid plus deterministic pseudo-random noise of the position."""
        cls = self.classes_at(x, y)
        seed = (x[..., None] * 12.9898 + y[..., None] * 78.233 + self.phase) * 0.01
        noise = (np.sin(seed) * 43758.5453) % 1.0 - 0.5  # uniform in [-0.5, 0.5), a hash of position
        v = self.centroids[cls] + 2 * NOISE * noise
        return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)

    @staticmethod
    def centres(grid: dict) -> tuple[np.ndarray, np.ndarray]:
        t = grid["affineTransform"]
        h, w = grid["dimensions"]["height"], grid["dimensions"]["width"]
        rows, cols = np.mgrid[0:h, 0:w]
        return t["translateX"] + (cols + 0.5) * t["scaleX"], t["translateY"] + (rows + 0.5) * t["scaleY"]

    def install(self, fake) -> None:
        """Serve computePixels from this stand-in (the bands asked for, in order)."""

        def pixels(grid: dict, bands: list) -> np.ndarray:
            x, y = self.centres(grid)
            vectors = self.vectors_at(x, y)
            return vectors[..., [BANDS.index(b) for b in bands]]

        def masked(grid: dict) -> np.ndarray:
            return self.masked_at(*self.centres(grid))

        fake.pixels, fake.masked = pixels, masked
