"""The time-series path through the Processing algorithms: geodl:extractsamples with a series → geodl:train
with the temporal family → geodl:predict mapping the series (its dates from the file names), in-process with
the real worker."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))


@pytest.mark.slow
def test_series_through_processing(geodl_provider, tmp_path):
    import processing
    import rasterio
    from make_synthetic_series import make_series_scene

    from geodl_plugin.core.models.family import ModelFamily
    from geodl_plugin.processing.algorithms.train import FAMILY_LIST

    temporal = next(i for i, spec in enumerate(FAMILY_LIST) if spec.family == ModelFamily.TEMPORAL)

    scene = make_series_scene(tmp_path / "scene", size=40, n_points=40, seed=3)
    samples = tmp_path / "s.tfrecord.gz"
    processing.run(
        "geodl:extractsamples",
        {
            "INPUT": [str(p) for p in scene.rasters],
            "LABELS": str(scene.points),
            "CLASS_FIELD": "class_name",
            "PATCH_SIZE": 5,
            "SERIES": True,
            "OUTPUT": str(samples),
        },
    )
    trained = processing.run(
        "geodl:train",
        {
            "SAMPLES": str(samples),
            "MODEL_TYPE": temporal,
            "EPOCHS": 8,
            "BATCH_SIZE": 32,
            "SPLIT": 1,
            "TEMPORAL_FILTERS": 4,
            "TEMPORAL_KERNEL_SIZE": 1,
            "TEMPORAL_HEAD_KERNEL": 1,
            "OUTPUT": str(tmp_path / "m.geodl"),
        },
    )
    assert 0.0 <= trained["OVERALL_ACCURACY"] <= 1.0
    # The series given as its first date plus the other dates, in shuffled order: dates come from the names.
    others = [str(p) for p in reversed(scene.rasters[1:])]
    out = processing.run(
        "geodl:predict",
        {
            "INPUT": str(scene.rasters[0]),
            "SERIES": others,
            "MODEL": str(tmp_path / "m.geodl"),
            "OUTPUT": str(tmp_path / "c.tif"),
            "OUTPUT_CONFIDENCE": str(tmp_path / "conf.tif"),
            "OUTPUT_PROBABILITIES": str(tmp_path / "p.tif"),
        },
    )
    with rasterio.open(out["OUTPUT"]) as ds, rasterio.open(scene.rasters[0]) as src:
        assert ds.transform == src.transform and ds.crs == src.crs
        classes = ds.read(1)
    assert set(np.unique(classes).tolist()) <= {1, 2, 3}  # every pixel is observed on some date
    with rasterio.open(out["OUTPUT_PROBABILITIES"]) as ds:
        assert ds.count == 3 and ds.descriptions[0] == "p(fastgreen)"
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]
