"""How a pixel prediction walks and writes: every pixel once, the ends cut into strips on the overview grid;
GDAL's compression pool only where it pays."""

from __future__ import annotations

import numpy as np
import pytest

from geodl_plugin.core.io.overviews import overview_factors
from geodl_plugin.core.predict.raster_prediction import compression_threads, pipeline_windows


@pytest.mark.parametrize(
    ("width", "height", "block"),
    [(4082, 3720, 1024), (48, 48, 1024), (700, 600, 256), (700, 600, 64), (700, 600, 100), (1025, 2049, 1024), (1, 1, 16)],
)
def test_every_pixel_once_and_the_ends_in_strips(width, height, block):
    windows = pipeline_windows(width, height, block)
    seen = np.zeros((height, width), np.int32)
    for c, r, w, h in windows:
        assert w > 0 and h > 0 and w <= block and h <= block
        seen[r : r + h, c : c + w] += 1
    assert (seen == 1).all()
    strip = max(32, block // 4 // 32 * 32)
    first, last = windows[0], windows[-1]
    assert first[3] <= strip and last[3] <= strip
    factor = max(overview_factors(width, height), default=1)
    if block % 32 == 0:  # blocks on the overview grid: so are the strips
        assert all(c % factor == 0 and r % factor == 0 for c, r, _, _ in windows)


def test_compression_in_the_writers_thread_only_on_two_cores_with_little_to_compress():
    assert compression_threads(1, cores=2) == "1"  # class + confidence: the usual prediction
    assert compression_threads(0, cores=1) == "1"  # the class map alone
    assert compression_threads(2, cores=2) == "ALL_CPUS"  # a regression's value and spread
    assert compression_threads(6, cores=2) == "ALL_CPUS"  # probabilities and uncertainty: the writer would lag
    assert compression_threads(1, cores=8) == "ALL_CPUS"  # spare cores absorb the pool's hand-offs
