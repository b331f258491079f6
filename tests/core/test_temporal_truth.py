"""Truth for the temporal model: a seeded series scene whose two crops have the same spectra on every single
date and differ only in the timing of their seasonal curve (``scripts/make_synthetic_series.py``).

Trained from points on one scene, scored on every pixel of a second scene with new fields and sowing dates:
the recurrent model must reach 0.95 overall accuracy; a single-date model must be near chance between the two
crops (while it separates water); the stacked-dates per-pixel baseline is reported beside them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from make_synthetic_series import make_series_scene  # noqa: E402

from geodl_plugin.core.data.chips import ChipSet  # noqa: E402
from geodl_plugin.core.data.labels import read_labels  # noqa: E402
from geodl_plugin.core.data.series import model_channels, open_series  # noqa: E402
from geodl_plugin.core.data.series_samples import extract_series_samples, load_series_samples  # noqa: E402
from geodl_plugin.core.train.temporal_training import TemporalParams, fit_temporal  # noqa: E402

EPOCHS = 40


def _one_date(chips: ChipSet, t: int) -> ChipSet:
    series = chips.meta["series"]
    c = len(series["bands"]) + 1
    meta = {**chips.meta, "series": {**series, "dates": [series["dates"][t]]}}
    return ChipSet(chips.x[..., t * c:(t + 1) * c], chips.mask, chips.xy, chips.bands[t * c:(t + 1) * c],
                   chips.classes, meta)


def _map(model, channels: np.ndarray) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(model.predict_on_batch(channels[None]))[0].argmax(-1) + 1


@pytest.mark.slow
def test_recurrent_model_reads_timing_a_single_date_cannot(tmp_path, record_property):
    train_scene = make_series_scene(tmp_path / "train", size=48, n_points=100, seed=0)
    test_scene = make_series_scene(tmp_path / "test", size=48, n_points=1, seed=1)
    series = open_series(train_scene.rasters)
    labels = read_labels(train_scene.points, "class_name", target_crs_wkt=series.info.crs_wkt)
    extract_series_samples(series, labels, tmp_path / "samples.tfrecord.gz", patch_size=5)
    chips = load_series_samples(tmp_path / "samples.tfrecord.gz")
    assert np.isnan(chips.x).any()  # clouds reach the samples as missing values

    test = open_series(test_scene.rasters)
    channels = model_channels(test.read(0, 0, 48, 48), test.doy).transpose(1, 2, 0)
    truth = test_scene.truth_array
    crops = truth < 3
    fit = {"epochs": EPOCHS, "batch_size": 32, "learning_rate": 1e-2, "patience": EPOCHS}

    model, history, _ = fit_temporal(chips, TemporalParams(encoder="gru", filters=8), **fit)
    predicted = _map(model, channels)
    recurrent_oa = float((predicted == truth).mean())

    mid = series.n_dates // 2
    single, _, _ = fit_temporal(_one_date(chips, mid), TemporalParams(encoder="stack", hidden_units=(32,)), **fit)
    c = series.n_bands + 1
    single_map = _map(single, channels[..., mid * c:(mid + 1) * c])
    single_crops = float((single_map[crops] == truth[crops]).mean())
    single_water = float((single_map[~crops] == truth[~crops]).mean())

    stacked, _, _ = fit_temporal(chips, TemporalParams(encoder="stack", hidden_units=(32,)), **fit)
    stacked_oa = float((_map(stacked, channels) == truth).mean())

    for name, value in (("recurrent_oa", recurrent_oa), ("single_date_crop_accuracy", single_crops),
                        ("single_date_water_accuracy", single_water), ("stacked_dates_oa", stacked_oa)):
        record_property(name, round(value, 3))
    print(f"recurrent (ConvGRU) OA {recurrent_oa:.3f}; single date: crops {single_crops:.3f} (chance 0.5), water "
          f"{single_water:.3f}; stacked dates (per-pixel DNN) OA {stacked_oa:.3f}")
    assert recurrent_oa >= 0.95
    assert 0.35 <= single_crops <= 0.65  # near chance between the two crops
    assert single_water >= 0.9  # the single-date model works where spectra do differ
