"""Train a multi-temporal network (``models/temporal.py``) from patch or chip sequences.

Samples are :func:`~geodl_plugin.core.data.series_samples.load_series_samples` ChipSets: network channels
(n, k, k, dates·(bands+1)), NaN where not observed, and a mask (255 = unlabelled; point samples have only
their centre labelled). Training is masked cross-entropy over labelled pixels (class-weighted when asked),
with random flips and rotations, on tiles of at most ``train_tile`` pixels (MTLCC trains on 24 px); the
network is fully convolutional, so it then predicts larger tiles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..data.chips import IGNORE, ChipSet
from ..data.splits import split_random
from ..evaluate.metrics import report_from_confusion
from ..models.temporal import ENCODERS, encoder_settings
from ..runtime.errors import Cancelled, GeoDLError
from ..runtime.progress import Progress, ensure

log = logging.getLogger("geodl")


@dataclass
class TemporalParams:
    """The temporal family's knobs (network and tiling)."""

    encoder: str = field(default="gru", metadata={"label": "Encoder cell (gru, lstm, or stack: per-pixel "
                                                                "baseline over all dates stacked)"})
    filters: int = field(default=32, metadata={"label": "Recurrent filters per direction", "min": 1, "max": 512})
    kernel_size: int = field(default=3, metadata={"label": "Recurrent kernel size (px)", "min": 1, "max": 9})
    layers: int = field(default=1, metadata={"label": "Recurrent layers", "min": 1, "max": 4})
    bidirectional: bool = field(default=True, metadata={"label": "Bidirectional encoder"})
    head_kernel: int = field(default=3, metadata={"label": "Classifier kernel size (px)", "min": 1, "max": 7})
    hidden_units: tuple[int, ...] = field(default=(64,), metadata={"label": "Baseline hidden units"})
    dropout: float = field(default=0.0, metadata={"label": "Dropout", "min": 0.0, "max": 0.9})
    train_tile: int = field(default=24, metadata={"label": "Training tile size (px)", "min": 1, "max": 512})
    predict_tile: int = field(default=96, metadata={"label": "Prediction tile size (px)", "min": 8, "max": 2048})
    tile_overlap: Optional[int] = field(default=None, metadata={"label": "Prediction tile overlap (px)",
                                                                 "min": 0, "max": 1024})
    augment: bool = field(default=True, metadata={"label": "Random flips and rotations"})

    def validate(self) -> None:
        if self.encoder not in ENCODERS:
            raise GeoDLError(f"Unknown encoder '{self.encoder}'; choose gru, lstm or stack.")
        for name in ("filters", "kernel_size", "layers", "head_kernel", "train_tile"):
            if int(getattr(self, name)) < 1:
                raise GeoDLError(f"The temporal model's {name.replace('_', ' ')} must be at least 1.")
        if self.predict_tile < 8:
            raise GeoDLError("The prediction tile must be at least 8 pixels.")
        if not 0 <= self.dropout < 1:
            raise GeoDLError(f"Dropout must be in [0, 1); got {self.dropout}.")
        if self.tile_overlap is not None and not 0 <= self.tile_overlap < self.predict_tile // 2:
            raise GeoDLError(f"The tile overlap must be in [0, {self.predict_tile // 2}) for {self.predict_tile}-px "
                             "tiles.")

    def settings(self, n_dates: int) -> dict:
        return encoder_settings(self.encoder, self.filters, self.kernel_size, self.layers, self.bidirectional,
                                self.head_kernel, self.hidden_units, self.dropout, n_dates)


def series_shape(chips: ChipSet) -> tuple[int, int]:
    """(dates, bands per date) of series samples."""
    series = chips.meta.get("series") or {}
    n_dates, n_bands = len(series.get("dates", [])), len(series.get("bands", []))
    if not n_dates or chips.x.shape[-1] != n_dates * (n_bands + 1):
        raise GeoDLError("These samples are not a time series (bands per date). Extract them from a series "
                         "(geodl:extractsamples with dates) or name their bands {band}_{YYYYMMDD}.")
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


def fit_temporal(chips: ChipSet, options: TemporalParams, *, epochs: int, batch_size: int, learning_rate: float,
                 seed: int = 42, class_weights: bool = True, validation_fraction: float = 0.15, patience: int = 8,
                 progress: Optional[Progress] = None) -> tuple[Any, dict[str, list[float]], int]:
    """(model, history, number of validation samples). The validation split (from ``chips``) drives early
    stopping and the best epoch's weights are kept; a cancel stops within one batch and raises Cancelled."""
    import keras

    from ..models.temporal import build_temporal_model
    from ..models.unet import chip_batches, make_loss
    from .trainer import _KerasProgress

    progress = ensure(progress)
    options.validate()
    n_dates, n_bands = series_shape(chips)
    if chips.patch_size > options.train_tile:
        chips = chips.crop(options.train_tile)
    classes = chips.classes
    n_classes = len(classes)
    y = class_indices(chips.mask, classes.ids)
    val_idx = np.zeros(0, np.int64)
    if validation_fraction and len(chips) >= 10:
        _, val_idx = split_random(chips.majority(), validation_fraction, seed + 1)
    fit_idx = np.setdiff1d(np.arange(len(chips)), val_idx)
    x_fit = chips.x[fit_idx]
    mean, std = band_statistics(x_fit, n_dates, n_bands)
    counts = np.bincount(y[fit_idx].ravel(), minlength=256)[:n_classes].astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0) if class_weights else None
    keras.utils.set_random_seed(seed)
    settings = options.settings(n_dates)

    def build() -> Any:
        return build_temporal_model(n_dates, n_bands, n_classes, mean, std**2, options.encoder, options.filters,
                                    options.kernel_size, options.layers, options.bidirectional, options.head_kernel,
                                    options.hidden_units, options.dropout)

    model = build()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=make_loss(weights, dice_weight=0.0))
    callback = _KerasProgress(progress, epochs)
    callbacks: list[Any] = [callback]
    validation = None
    if len(val_idx):
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                       restore_best_weights=True))
        validation = (chips.x[val_idx].astype(np.float32), y[val_idx].astype(np.int32))
    batches = chip_batches(x_fit, y[fit_idx], batch_size, options.augment, seed)
    progress.message(f"training a temporal {settings['encoder']} model ({n_dates} dates × {n_bands} bands) on "
                     f"{len(fit_idx)} samples of {chips.patch_size}×{chips.patch_size} px")
    hist = model.fit(batches, epochs=epochs, validation_data=validation, callbacks=callbacks, verbose=0)
    if callback.cancelled:
        raise Cancelled("Training cancelled; no model file was written.")
    clean = build()  # uncompiled copy: no loss function travels in the model file
    clean.set_weights(model.get_weights())
    return clean, {k: [float(v) for v in vals] for k, vals in hist.history.items()}, int(len(val_idx))


def predict_labelled(model: Any, chips: ChipSet, batch: int = 16) -> np.ndarray:
    """(n, k, k, classes) probabilities of series samples."""
    import keras

    x = chips.x.astype(np.float32)
    return np.concatenate([keras.ops.convert_to_numpy(model.predict_on_batch(x[i:i + batch]))
                           for i in range(0, len(x), batch)])


def score_temporal(model: Any, chips: ChipSet) -> dict[str, Any]:
    """Accuracy, kappa, per-class F1 over the labelled pixels of held-out samples (the centre of each point
    patch; every labelled pixel of a chip)."""
    probs = predict_labelled(model, chips)
    idx = class_indices(chips.mask, chips.classes.ids).ravel()
    pred = probs.argmax(axis=-1).ravel()
    keep = idx != IGNORE
    n = len(chips.classes)
    cm = np.bincount(idx[keep].astype(np.int64) * n + pred[keep], minlength=n * n).reshape(n, n)
    report = report_from_confusion(cm, chips.classes)
    report["unit"] = "labelled pixels of the held-out samples"
    return report


def load_temporal(samples: list[str]) -> ChipSet:
    """Series samples (point patches or chips) from their files."""
    from ..data.series_samples import load_series_samples

    chips = load_series_samples(samples)
    series_shape(chips)
    if len(set(np.unique(chips.mask).tolist()) - {IGNORE}) < 2:
        raise GeoDLError("The samples hold one class only; a classifier needs at least two.")
    return chips


def temporal_manifest_extras(chips: ChipSet, options: TemporalParams) -> tuple[list[str], dict, dict]:
    """(raster bands the model reads: {band}_{date} per date, the manifest's ``series`` entry, the training
    entry ``temporal``: the settings that rebuild the network and tile its prediction)."""
    from ..data.series import as_date, date_key, day_of_year

    n_dates, _ = series_shape(chips)
    series = chips.meta["series"]
    dates = [as_date(d) for d in series["dates"]]
    bands = [f"{b}_{date_key(d)}" for d in dates for b in series["bands"]]
    entry = {"dates": [d.isoformat() for d in dates], "bands": list(series["bands"]),
             "doy": [int(v) for v in day_of_year(dates)]}
    temporal = {**options.settings(n_dates), "train_tile": int(min(options.train_tile, chips.patch_size)),
                "predict_tile": int(options.predict_tile), "tile_overlap": options.tile_overlap}
    return bands, entry, temporal
