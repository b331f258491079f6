"""The Beam pipeline (DirectRunner) turning a point table into Earth Engine-layout TFRecord shards through the
real earthengine-api client and the fake transport: requests grouped by cell, retried after 429/503, every
patch equal to the pixels Earth Engine sent, and the shards read back by geodl's sample reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ORIGIN_X, ORIGIN_Y
from ee_signatures import signature_errors

ee = pytest.importorskip("ee")

BANDS = ["B2", "B3", "B8"]
SCALE = 10.0


def _points(n: int, seed: int = 0):
    from geodl_plugin.core.earthengine.point_shards import Point

    rng = np.random.default_rng(seed)
    xs = ORIGIN_X + 50 + rng.random(n) * 1800  # about 3 × 3 cells of 64 px at 10 m
    ys = ORIGIN_Y - 50 - rng.random(n) * 1800
    return [Point(float(x), float(y), float(i % 3 + 1)) for i, (x, y) in enumerate(zip(xs, ys))]


def _expected(point, band_index: int, patch: int) -> np.ndarray:
    """The fake transport's pixel formula (row·1000 + col + band/2 from its origin) around the point."""
    col, row = int(np.floor(point.x / SCALE)), int(np.floor(point.y / SCALE))
    h = patch // 2
    rows = np.arange(row + h, row - h - 1, -1)  # north first
    cols = np.arange(col - h, col + h + 1)
    grow = (ORIGIN_Y - (rows + 1) * SCALE) / SCALE
    gcol = (cols * SCALE - ORIGIN_X) / SCALE
    return (grow[:, None] * 1000 + gcol[None, :] + band_index * 0.5).astype(np.float32)


def test_rate_limiter_spaces_requests():
    from geodl_plugin.core.earthengine.point_shards import RateLimiter

    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(rate=5.0, burst=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(12):
        limiter.acquire()
    assert now[0] == pytest.approx((12 - 2) / 5.0)  # two in the burst, then one every 0.2 s


@pytest.mark.slow
def test_direct_runner_builds_shards_the_sample_reader_trains_on(ee_session, tmp_path):
    import apache_beam  # noqa: F401 - required: requirements/dev.txt

    from geodl_plugin.core.data.samples import load_samples
    from geodl_plugin.core.earthengine.beam_pipeline import run
    from geodl_plugin.core.earthengine.point_shards import ShardParams, cell_key
    from geodl_plugin.core.models.networks import fit_random_forest

    image = ee.Image("projects/test-project/assets/composite").select(BANDS)
    points = _points(300)
    params = ShardParams(
        ee.serializer.toJSON(image),
        BANDS,
        "EPSG:32632",
        SCALE,
        str(tmp_path / "train"),
        patch_size=3,
        cell_px=64,
        num_shards=2,
        backoff_seconds=0.01,
        requests_per_second=0,
    )
    ee_session.queue(":computePixels", 429)  # too many requests, then the service unavailable: both retried
    ee_session.queue(":computePixels", 503)
    shards = run(points, params, classes=[{"value": i, "name": f"c{i}", "color_hint": "336699"} for i in (1, 2, 3)])

    assert len(shards) == 2 and all(s.name.endswith(".tfrecord.gz") for s in shards)
    calls = ee_session.calls(":computePixels")
    cells = {cell_key(p, params) for p in points}
    assert len(calls) == len(cells) + 2  # one request per cell, plus the two refused ones
    for _, _, body in calls:
        assert signature_errors(body) == [] and body["fileFormat"] == "NPY" and body["bandIds"] == BANDS
        dims = body["grid"]["dimensions"]
        assert dims["width"] <= 64 + 3 and dims["height"] <= 64 + 3

    samples = load_samples(shards)  # the same reader as local and Earth Engine samples
    assert len(samples) == len(points) and samples.x.shape == (300, 3, 3, 3) and samples.bands == BANDS
    by_xy = {(np.float32(p.x), np.float32(p.y)): p for p in points}
    for x, (px, py), label in zip(samples.x, samples.xy, samples.y):
        point = by_xy[(np.float32(px), np.float32(py))]
        assert label == point.label
        for b in range(len(BANDS)):
            np.testing.assert_array_equal(x[..., b], _expected(point, b, 3))
    forest = fit_random_forest(samples.x.reshape(len(samples), -1), samples.y - 1, 3, n_trees=5)
    assert forest.predict_proba(samples.x.reshape(len(samples), -1)[:5]).shape == (5, 3)
    assert json.loads((shards[0].parent / (shards[0].name + ".json")).read_text())["patch_size"] == 3
