"""Train a U-Net from chips (image + label array) or from point patches (only the centre pixel labelled).

Called by :func:`~geodl_plugin.core.train.trainer.train_model` for model type ``unet``: the same parameters, the
same held-out test split (whole spatial blocks), the same cancel semantics (stop within one batch, raise
:class:`Cancelled`, write nothing) and the same model file, whose manifest says ``unet`` and the patch size.

U-Net settings beyond :class:`TrainParams` are read from it when present: ``unet_depth`` (default: 3, or
less if the patch size needs it), ``unet_filters`` (16), ``dice_weight`` (1.0) and ``augment`` (True).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any, Optional

import numpy as np

from ..data.chips import IGNORE, ChipSet, centre_mask, is_chip_file, load_chips, unet_patch_size, write_chips
from ..data.samples import SampleSet
from ..data.splits import split_blocked, split_random
from ..evaluate.metrics import report_from_confusion
from ..models.networks import UNET
from ..runtime.errors import Cancelled, GeoDLError
from ..runtime.progress import Progress, ensure
from .trainer import TrainParams, TrainResult, _KerasProgress, manifest_from_samples, save_trained

log = logging.getLogger("geodl")

DEFAULT_DEPTH = 3


_NEEDS_PATCHES = ("A U-Net needs image patches, not single pixels. Extract samples with a patch size of at least 9 "
                  "(e.g. 17 or 33), or chip the raster with a mask (geodl:chip).")


def chips_from_samples(samples: SampleSet) -> ChipSet:
    """Point patches (class = centre pixel) as chips with a sparse mask: only the centre labelled."""
    if samples.patch_size < 2 or samples.x.ndim != 4:
        raise GeoDLError(_NEEDS_PATCHES)
    k = samples.patch_size
    return ChipSet(samples.x.astype(np.float32, copy=False), centre_mask(samples.y, k), samples.xy, samples.bands,
                   samples.classes, samples.meta)


def choose_depth(k: int, depth: Optional[int]) -> tuple[int, int]:
    """(depth, training size). An explicit depth must fit the patch size (else the error names a valid
    size); without one, the deepest of 3, 2, 1 that fits."""
    if depth is not None:
        return int(depth), unet_patch_size(k, int(depth))
    for d in range(DEFAULT_DEPTH, 0, -1):
        try:
            return d, unet_patch_size(k, d)
        except GeoDLError:
            continue
    return 1, unet_patch_size(k, 1)  # raises, naming the nearest valid size


def class_index_masks(mask: np.ndarray, class_ids: list[int]) -> np.ndarray:
    """Class ids → output indices 0..C-1; unlabelled stays 255."""
    lut = np.full(256, IGNORE, np.uint8)
    lut[np.asarray(class_ids, np.int64)] = np.arange(len(class_ids), dtype=np.uint8)
    return lut[mask]


def segmentation_report(mask_ids: np.ndarray, probs: np.ndarray, classes: Any) -> dict[str, Any]:
    """Accuracy, kappa, per-class F1/IoU over the labelled pixels of ``mask_ids`` (class ids, 255 ignored)."""
    idx = class_index_masks(mask_ids, classes.ids).ravel()
    pred = probs.argmax(axis=-1).ravel()
    keep = idx != IGNORE
    n = len(classes)
    cm = np.bincount(idx[keep].astype(np.int64) * n + pred[keep], minlength=n * n).reshape(n, n)
    return report_from_confusion(cm, classes)


def _load(params: TrainParams, samples: Optional[SampleSet]) -> ChipSet:
    if samples is None or any(is_chip_file(p) for p in params.samples):
        chips = load_chips(params.samples, bands=params.bands)
        if chips.x.ndim != 4 or min(chips.x.shape[1:3]) < 2:
            raise GeoDLError(_NEEDS_PATCHES)
        return chips
    return chips_from_samples(samples)


def train_segmentation(params: TrainParams, samples: Optional[SampleSet] = None,
                       progress: Optional[Progress] = None) -> TrainResult:
    import keras

    from ..models.unet import build_unet, chip_batches, make_loss, masked_f1, masked_iou

    progress = ensure(progress)
    started = time.perf_counter()
    chips = _load(params, samples)
    classes = chips.classes
    warnings: list[str] = []
    depth, size = choose_depth(chips.patch_size, getattr(params, "unet_depth", None))
    base_filters = int(getattr(params, "unet_filters", 16) or 16)
    dice_weight = float(getattr(params, "dice_weight", 1.0))
    augment = bool(getattr(params, "augment", True))
    if size != chips.patch_size:
        progress.message(f"patches of {chips.patch_size}×{chips.patch_size} cropped to {size}×{size} for a U-Net "
                         f"of depth {depth}")
        chips = chips.crop(size)
    n_classes = len(classes)
    y_all = class_index_masks(chips.mask, classes.ids)
    majority = chips.majority()
    present = sorted(set(majority.tolist()))
    if len(set(np.unique(chips.mask).tolist()) - {IGNORE}) < 2:
        raise GeoDLError(f"The chips hold one class only ({present}); segmentation needs at least two labelled.")

    # Held-out test chips: whole spatial blocks (at least a chip wide, so overlapping chips stay together).
    pixel = float(chips.meta.get("pixel_size", [1.0])[0] or 1.0)
    if params.split == "blocked" and chips.xy is not None:
        block = max(params.block_size_pixels, chips.patch_size) * pixel
        train_idx, test_idx = split_blocked(majority, chips.xy, block, params.test_fraction, params.seed)
    else:
        train_idx, test_idx = split_random(majority, params.test_fraction, params.seed)
    if len(test_idx) and chips.xy is not None and chips.meta.get("kind") == "chips":
        # overlapping chips (stride < size) on both sides of a block edge share labelled pixels: drop those
        reach = chips.patch_size * pixel - 1e-6
        d = np.abs(chips.xy[train_idx][:, None, :] - chips.xy[test_idx][None, :, :]).max(axis=-1)
        overlapping = (d < reach).any(axis=1)
        if overlapping.any():
            warnings.append(f"{int(overlapping.sum())} training chip(s) overlapping held-out chips were left out.")
            train_idx = train_idx[~overlapping]
    val_idx = np.zeros(0, np.int64)
    if params.validation_fraction and len(train_idx) >= 10:
        _, v = split_random(majority[train_idx], params.validation_fraction, params.seed + 1)
        val_idx = train_idx[v]
    fit_idx = np.setdiff1d(train_idx, val_idx)
    if not len(fit_idx):
        raise GeoDLError("No chip is left to train on after the test split; label more or lower the test fraction.")

    x_fit = chips.x[fit_idx].astype(np.float32, copy=False)
    pixels = x_fit.reshape(-1, x_fit.shape[-1]).astype(np.float64)
    mean, std = pixels.mean(axis=0), pixels.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    counts = np.bincount(y_all[fit_idx].ravel(), minlength=256)[:n_classes].astype(np.float64)
    missing = [classes.classes[i].name for i in range(n_classes) if counts[i] == 0]
    if missing:
        warnings.append(f"Class(es) {missing} have no labelled training pixel after the split.")
    weights = None
    if params.class_weights:
        weights = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    progress.check()

    keras.utils.set_random_seed(params.seed)
    model = build_unet(x_fit.shape[-1], n_classes, mean, std**2, depth, base_filters, params.dropout)
    model.compile(optimizer=keras.optimizers.Adam(params.learning_rate), loss=make_loss(weights, dice_weight),
                  metrics=[masked_iou, masked_f1])
    callback = _KerasProgress(progress.sub(5, 90), params.epochs)
    callbacks: list[Any] = [callback]
    validation = None
    if len(val_idx):
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=params.patience,
                                                       restore_best_weights=True))
        validation = (chips.x[val_idx].astype(np.float32), y_all[val_idx].astype(np.int32))
    batches = chip_batches(x_fit, y_all[fit_idx], params.batch_size, augment, params.seed, multiple=2**depth)
    progress.update(5, f"training a U-Net (depth {depth}, {base_filters} filters) on {len(fit_idx)} chips of "
                       f"{size}×{size}, {int(counts.sum())} labelled pixels")
    hist = model.fit(batches, epochs=params.epochs, validation_data=validation, callbacks=callbacks, verbose=0)
    if callback.cancelled:
        raise Cancelled("Training cancelled; no model file was written.")
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}

    # The saved network is a fresh, uncompiled copy: no loss or metric functions travel in the file.
    clean = build_unet(x_fit.shape[-1], n_classes, mean, std**2, depth, base_filters, params.dropout)
    clean.set_weights(model.get_weights())
    progress.check()
    metrics: dict[str, Any] = {}
    test = chips.subset(test_idx)
    if len(test):
        probs = keras.ops.convert_to_numpy(clean.predict(test.x.astype(np.float32), batch_size=16, verbose=0))
        metrics = segmentation_report(test.mask, probs, classes)
        metrics["split"] = params.split
        metrics["unit"] = "labelled pixels of the held-out chips"
        progress.message(f"held-out pixel accuracy {metrics['overall_accuracy']:.3f}, mean IoU "
                         f"{metrics['mean_iou']:.3f} on {metrics['n_samples']} labelled pixels of {len(test)} chips")
    else:
        warnings.append("No held-out chips (test fraction 0 or too few blocks); the model file carries no accuracy.")
    meta = chips.meta
    training = {k: v for k, v in asdict(params).items() if k != "output"}
    training.update({"history": history, "n_train": int(len(fit_idx)), "n_validation": int(len(val_idx)),
                     "n_test": int(len(test)), "unet": {"depth": depth, "base_filters": base_filters,
                                                        "dice_weight": dice_weight, "augment": augment},
                     "class_pixels": {c.name: int(counts[i]) for i, c in enumerate(classes)}})
    manifest = manifest_from_samples(params, meta, UNET, chips.bands, classes, mean, std, size, metrics, training)
    test_path = save_trained(params, clean, manifest, test if len(test) else None, write_chips, warnings, progress)
    return TrainResult(params.output, metrics, history, int(len(fit_idx)), int(len(val_idx)), int(len(test)),
                       time.perf_counter() - started, warnings, test_path)
