"""The temporal family's part of training (``models/temporal.py``), from patch or chip sequences.

Samples are :func:`~geodl_plugin.core.data.series_samples.load_series_samples` ChipSets: network channels
(n, k, k, dates·(bands+1)), NaN where not observed, and a mask (255 = unlabelled; point samples have only
their centre labelled). Training is masked cross-entropy over labelled pixels (class-weighted when asked),
with random flips and rotations, on tiles of at most ``train_tile`` pixels (MTLCC trains on 24 px); the
network is fully convolutional, so it then predicts larger tiles. The skeleton (``trainer.run_training``)
does the split, the report and the model file; the manifest's ``training`` keeps ``temporal`` (the settings
that rebuild the network) and ``series`` (dates, bands per date, days of year).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import numpy as np

from ..data.chips import IGNORE, ChipSet
from ..evaluate.metrics import report_from_confusion
from ..evaluate.reports import AccuracyReport
from ..models.family import TemporalParams
from ..models.temporal import encoder_settings
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .trainer import FamilyTrainer, Fitted, TrainParams, class_weight_vector, fit_keras, validation_split

log = logging.getLogger("geodl")


def series_shape(chips: ChipSet) -> tuple[int, int]:
    """(dates, bands per date) of series samples."""
    series = chips.meta.get("series") or {}
    n_dates, n_bands = len(series.get("dates", [])), len(series.get("bands", []))
    if not n_dates or chips.x.shape[-1] != n_dates * (n_bands + 1):
        raise GeoDLError(
            "These samples are not a time series (bands per date). Extract them from a series "
            "(dates given, or in the file names) or name their bands {band}_{YYYYMMDD}."
        )
    return n_dates, n_bands


def band_statistics(x: np.ndarray, n_dates: int, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Per band mean and standard deviation over every observed pixel and date (NaN left out)."""
    values = x.reshape(-1, n_dates, n_bands + 1)[:, :, :n_bands].reshape(-1, n_bands).astype(np.float64)
    values = values[np.isfinite(values).all(axis=1)]
    if not len(values):
        raise GeoDLError("No observed pixel in the training samples (all are cloudy or nodata).")
    std = values.std(axis=0)
    return values.mean(axis=0), np.where(std > 0, std, 1.0)


def class_indices(mask: np.ndarray, class_ids: list[int]) -> np.ndarray:
    lut = np.full(256, IGNORE, np.uint8)
    lut[np.asarray(class_ids, np.int64)] = np.arange(len(class_ids), dtype=np.uint8)
    return lut[mask]


def series_entry(chips: ChipSet) -> dict:
    """The manifest's description of the series a model reads: dates, bands of a date, days of year."""
    from ..data.series import as_date, day_of_year

    series = chips.meta["series"]
    dates = [as_date(d) for d in series["dates"]]
    return {"dates": [d.isoformat() for d in dates], "bands": list(series["bands"]), "doy": [int(v) for v in day_of_year(dates)]}


def settings_of(options: TemporalParams, n_dates: int, train_tile: int) -> dict:
    return {
        **encoder_settings(
            options.encoder,
            options.filters,
            options.kernel_size,
            options.layers,
            options.bidirectional,
            options.head_kernel,
            options.hidden_units,
            options.dropout,
            n_dates,
        ),
        "train_tile": int(train_tile),
    }


def fit_temporal(
    chips: ChipSet, options: TemporalParams, params: TrainParams, progress: Optional[Progress] = None
) -> tuple[Any, np.ndarray, np.ndarray, dict, int, int]:
    """(uncompiled model, band mean, band std, history, n fit, n validation). The validation split (from
    ``chips``) drives early stopping and the best epoch's weights are kept; a cancel raises Cancelled."""
    import keras

    from ..models.temporal import build_temporal_model
    from ..models.unet import chip_batches, make_loss

    progress = ensure(progress)
    options.validate()
    n_dates, n_bands = series_shape(chips)
    classes = chips.classes
    n_classes = len(classes)
    y = class_indices(chips.mask, classes.ids)
    fit_idx, val_idx = validation_split(chips.majority(), params, minimum=10)
    x_fit = chips.x[fit_idx]
    mean, std = band_statistics(x_fit, n_dates, n_bands)
    counts = np.bincount(y[fit_idx].ravel(), minlength=256)[:n_classes].astype(np.float64)
    weights = class_weight_vector(counts) if params.class_weights else None
    keras.utils.set_random_seed(params.seed)

    def build() -> Any:
        return build_temporal_model(
            n_dates,
            n_bands,
            n_classes,
            mean,
            std**2,
            options.encoder,
            options.filters,
            options.kernel_size,
            options.layers,
            options.bidirectional,
            options.head_kernel,
            options.hidden_units,
            options.dropout,
        )

    model = build()
    model.compile(optimizer=keras.optimizers.Adam(params.learning_rate), loss=make_loss(weights, dice_weight=0.0))
    validation = (chips.x[val_idx].astype(np.float32), y[val_idx].astype(np.int32)) if len(val_idx) else None
    batches = chip_batches(x_fit, y[fit_idx], params.batch_size, options.augment, params.seed)
    progress.update(
        0,
        f"training a temporal {options.encoder} model ({n_dates} dates × {n_bands} bands) on "
        f"{len(fit_idx)} samples of {chips.patch_size}×{chips.patch_size} px",
    )
    history = fit_keras(model, batches, validation, params, progress)
    clean = build()  # uncompiled copy: no loss function travels in the model file
    clean.set_weights(model.get_weights())
    return clean, mean, std, history, int(len(fit_idx)), int(len(val_idx))


def predict_labelled(model: Any, chips: ChipSet, batch: int = 16) -> np.ndarray:
    """(n, k, k, classes) probabilities of series samples."""
    import keras

    x = chips.x.astype(np.float32)
    return np.concatenate([keras.ops.convert_to_numpy(model.predict_on_batch(x[i : i + batch])) for i in range(0, len(x), batch)])


def score_temporal(model: Any, chips: ChipSet) -> AccuracyReport:
    """Accuracy, kappa, per-class F1 over the labelled pixels of held-out samples (the centre of each point
    patch; every labelled pixel of a chip), plus each class's mean confidence there."""
    probs = predict_labelled(model, chips)
    idx = class_indices(chips.mask, chips.classes.ids).ravel()
    flat = probs.reshape(-1, probs.shape[-1])
    pred = flat.argmax(axis=-1)
    keep = idx != IGNORE
    n = len(chips.classes)
    cm = np.bincount(idx[keep].astype(np.int64) * n + pred[keep], minlength=n * n).reshape(n, n)
    report = report_from_confusion(cm, chips.classes, unit="labelled pixels of the held-out samples")
    confidence = flat.max(axis=-1)
    report.mean_confidence = {
        c.name: float(confidence[keep & (pred == i)].mean()) if (keep & (pred == i)).any() else None for i, c in enumerate(chips.classes)
    }
    return report


class TemporalTrainer(FamilyTrainer):
    task = "semantic-segmentation"

    def load(self, params: TrainParams, progress: Progress) -> ChipSet:
        from ..data.series_samples import load_series_samples

        chips = load_series_samples(params.samples)
        series_shape(chips)
        options: TemporalParams = params.options
        if chips.patch_size > options.train_tile:
            progress.message(f"patches of {chips.patch_size} px cropped to {options.train_tile} px for training")
            chips = chips.crop(options.train_tile)
        if len(set(np.unique(chips.mask).tolist()) - {IGNORE}) < 2:
            raise GeoDLError("The samples hold one labelled class only; a classifier needs at least two.")
        return chips

    def split_labels(self, data: ChipSet) -> np.ndarray:
        return data.majority()

    def block_pixels(self, data: ChipSet, params: TrainParams) -> int:
        return max(params.block_size_pixels, data.patch_size)

    def fit(self, train: ChipSet, params: TrainParams, progress: Progress, warnings: list[str]) -> Fitted:
        options: TemporalParams = params.options
        model, mean, std, history, n_fit, n_val = fit_temporal(train, options, params, progress)
        n_dates, _ = series_shape(train)
        details = {"temporal": settings_of(options, n_dates, train.patch_size), "series": series_entry(train)}
        return Fitted(model, mean, std, history, n_fit=n_fit, n_validation=n_val, patch_size=train.patch_size, details=details)

    def score(self, model: Any, test: ChipSet) -> AccuracyReport:
        return score_temporal(model, test)

    def write_test(self, path: str, test: ChipSet) -> str:
        from ..data.series_samples import write_series_chips

        return write_series_chips(path, test)
