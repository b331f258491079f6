"""Figures for docs/scale-out.md: the size of the Earth Engine-native requests (DNN, forest), the Vertex AI
tile plan and time per tile of a U-Net here, and the planned request counts. Run: .venv/bin/python
scripts/bench_scaleout.py (offline: the real earthengine-api with a fake transport builds the requests)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core" / "ee"))


def main() -> None:
    import ee
    from conftest import FakeEETransport

    from geodl_plugin.core.earthengine import native, vertex
    from geodl_plugin.core.models.networks import build_pixel_dnn, fit_random_forest
    from geodl_plugin.core.models.unet import build_unet

    ee.Initialize(credentials=None, project="test-project", http_transport=FakeEETransport())
    bands, ids = ["B2", "B3", "B4", "B8", "B11", "B12"], [1, 2, 3, 4, 5]
    image = ee.Image("projects/p/assets/composite")
    dnn = build_pixel_dnn(6, 5, np.zeros(6), np.ones(6), hidden_units=(64, 64))
    compiled = native.NativeModel("dnn", bands, ids, dnn=native.dnn_weights(dnn))
    print(f"DNN 6 bands, 64-64 hidden, 5 classes: request {native.request_size(compiled.apply(image)) / 1e3:.0f} kB")
    rng = np.random.default_rng(0)
    for n, trees, depth in ((500, 100, 20), (500, 200, 20), (5000, 100, 20), (20000, 50, 12)):
        x = rng.random((n, 6)).astype(np.float32)
        y = np.clip((x[:, 3] * 5 + rng.normal(0, 0.7, n)).astype(int), 0, 4)
        forest = fit_random_forest(x, y, 5, n_trees=trees, max_depth=depth)
        size = native.request_size(native.NativeModel("rf", bands, ids, forest=forest).apply(image))
        print(
            f"forest {n} samples, {trees} trees, depth ≤{depth}, 5 classes: {len(forest.left):,} nodes, "
            f"request {size / 1e6:.2f} MB ({'fits' if size <= native.MAX_REQUEST_BYTES else 'over'} 10 MB)"
        )
    unet = build_unet(6, 5, np.zeros(6), np.ones(6), depth=3, base_filters=16)
    margin = vertex.receptive_margin(unet, 6)
    plan = vertex.plan_tiles(bands, 5, margin, vertex.pooling_divisor(unet))
    side = plan.tile + 2 * plan.overlap
    probe = np.zeros((1, side, side, 6), np.float32)
    unet.predict_on_batch(probe)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        unet.predict_on_batch(probe)
        times.append(time.perf_counter() - t)
    print(
        f"U-Net depth 3/16 filters: margin {margin} px → tile {plan.tile} + {plan.overlap} overlap ({side} px sent), "
        f"request {plan.request_bytes / 1e6:.2f} MB, answer {plan.response_bytes / 1e6:.2f} MB, "
        f"{min(times):.2f} s a tile on this CPU; core share {plan.tile**2 / side**2:.0%}"
    )
    for name, region in {
        "county (40×40 km)": (10.0, 45.0, 10.51, 45.36),
        "Switzerland": (5.96, 45.82, 10.49, 47.81),
        "Spain": (-9.3, 36.0, 3.3, 43.8),
        "Europe (W10°–E40°, N35–71°)": (-10.0, 35.0, 40.0, 71.0),
    }.items():
        est = vertex.estimate(region, 10.0, plan, min(times))
        print(
            json.dumps(
                {
                    "region": name,
                    "pixels": est.pixels,
                    "vertex_tiles": est.tiles,
                    "node_hours": round(est.node_hours, 1),
                    "usd": round(est.cost_usd),
                }
            )
        )


if __name__ == "__main__":
    main()
