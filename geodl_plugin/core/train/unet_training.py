"""The U-Net family's part of training, from chips (image + label array) or from point patches (only the
centre pixel labelled). The skeleton (``trainer.run_training``) does the rest: the held-out split (whole
spatial blocks), cancel, the report and the model file, whose manifest says ``unet`` and the patch size. The
network's settings are the family's ``UNetParams``."""

from __future__ import annotations

import logging
from typing import Any, Optional

import numpy as np

from ..data.chips import IGNORE, ChipSet, centre_mask, is_chip_file, load_chips, unet_patch_size, write_chips
from ..data.samples import SampleSet
from ..evaluate.metrics import report_from_confusion
from ..evaluate.reports import AccuracyReport
from ..models.family import UNetParams, unet_depth
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress
from .trainer import FamilyTrainer, Fitted, TrainParams, class_weight_vector, fit_keras, validation_split

log = logging.getLogger("geodl")

DEFAULT_DEPTH = 3


_NEEDS_PATCHES = (
    "A U-Net needs image patches, not single pixels. Extract samples with a patch size of at least 9 "
    "(e.g. 17 or 33), or chip the raster with a mask (geodl:chip)."
)


def chips_from_samples(samples: SampleSet) -> ChipSet:
    """Point patches (class = centre pixel) as chips with a sparse mask: only the centre labelled."""
    if samples.patch_size < 2 or samples.x.ndim != 4:
        raise GeoDLError(_NEEDS_PATCHES)
    k = samples.patch_size
    return ChipSet(
        samples.x.astype(np.float32, copy=False), centre_mask(samples.y, k), samples.xy, samples.bands, samples.classes, samples.meta
    )


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


def segmentation_report(mask_ids: np.ndarray, probs: np.ndarray, classes: Any) -> AccuracyReport:
    """Accuracy, kappa, per-class F1/IoU over the labelled pixels of ``mask_ids`` (class ids, 255 ignored)."""
    idx = class_index_masks(mask_ids, classes.ids).ravel()
    pred = probs.argmax(axis=-1).ravel()
    keep = idx != IGNORE
    n = len(classes)
    cm = np.bincount(idx[keep].astype(np.int64) * n + pred[keep], minlength=n * n).reshape(n, n)
    return report_from_confusion(cm, classes, unit="labelled pixels of the held-out chips")


def _load(params: TrainParams) -> ChipSet:
    if any(is_chip_file(p) for p in params.samples):
        chips = load_chips(params.samples, bands=params.bands)
        if chips.x.ndim != 4 or min(chips.x.shape[1:3]) < 2:
            raise GeoDLError(_NEEDS_PATCHES)
        return chips
    from ..data.samples import load_samples

    return chips_from_samples(load_samples(params.samples, bands=params.bands))


class UNetTrainer(FamilyTrainer):
    task = "semantic-segmentation"

    def load(self, params: TrainParams, progress: Progress) -> ChipSet:
        chips = _load(params)
        options: UNetParams = params.options
        depth, size = choose_depth(chips.patch_size, unet_depth(options))
        self.depth = depth
        if size != chips.patch_size:
            progress.message(f"patches of {chips.patch_size}×{chips.patch_size} cropped to {size}×{size} for a U-Net of depth {depth}")
            chips = chips.crop(size)
        if len(set(np.unique(chips.mask).tolist()) - {IGNORE}) < 2:
            raise GeoDLError("The chips hold one labelled class only; segmentation needs at least two.")
        return chips

    def split_labels(self, data: ChipSet) -> np.ndarray:
        return data.majority()

    def block_pixels(self, data: ChipSet, params: TrainParams) -> int:
        # blocks at least a chip wide, so overlapping chips stay on one side
        return max(params.block_size_pixels, data.patch_size)

    def after_split(self, data: ChipSet, train_idx: np.ndarray, test_idx: np.ndarray, warnings: list[str]) -> np.ndarray:
        if not len(test_idx) or data.xy is None or data.meta.get("kind") != "chips":
            return train_idx
        # overlapping chips (stride < size) on both sides of a block edge share labelled pixels: drop those
        pixel = float(data.meta.get("pixel_size", [1.0])[0] or 1.0)
        reach = data.patch_size * pixel - 1e-6
        d = np.abs(data.xy[train_idx][:, None, :] - data.xy[test_idx][None, :, :]).max(axis=-1)
        overlapping = (d < reach).any(axis=1)
        if overlapping.any():
            warnings.append(f"{int(overlapping.sum())} training chip(s) overlapping held-out chips were left out.")
        return train_idx[~overlapping]

    def fit(self, train: ChipSet, params: TrainParams, progress: Progress, warnings: list[str]) -> Fitted:
        import keras

        from ..models.unet import build_unet, chip_batches, make_loss, masked_f1, masked_iou

        options: UNetParams = params.options
        classes = train.classes
        n_classes = len(classes)
        y_all = class_index_masks(train.mask, classes.ids)
        fit_idx, val_idx = validation_split(train.majority(), params, minimum=10)
        if not len(fit_idx):
            raise GeoDLError("No chip is left to train on after the test split; label more or lower the test fraction.")
        x_fit = train.x[fit_idx].astype(np.float32, copy=False)
        pixels = x_fit.reshape(-1, x_fit.shape[-1]).astype(np.float64)
        mean, std = pixels.mean(axis=0), pixels.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        counts = np.bincount(y_all[fit_idx].ravel(), minlength=256)[:n_classes].astype(np.float64)
        missing = [classes.classes[i].name for i in range(n_classes) if counts[i] == 0]
        if missing:
            warnings.append(f"Class(es) {missing} have no labelled training pixel after the split.")
        weights = class_weight_vector(counts) if params.class_weights else None
        progress.check()

        keras.utils.set_random_seed(params.seed)
        depth, size = self.depth, train.patch_size
        model = build_unet(x_fit.shape[-1], n_classes, mean, std**2, depth, options.base_filters, options.dropout)
        model.compile(
            optimizer=keras.optimizers.Adam(params.learning_rate),
            loss=make_loss(weights, options.dice_weight),
            metrics=[masked_iou, masked_f1],
        )
        validation = (train.x[val_idx].astype(np.float32), y_all[val_idx].astype(np.int32)) if len(val_idx) else None
        batches = chip_batches(x_fit, y_all[fit_idx], params.batch_size, options.augment, params.seed, multiple=2**depth)
        progress.update(
            0,
            f"training a U-Net (depth {depth}, {options.base_filters} filters) on {len(fit_idx)} "
            f"chips of {size}×{size}, {int(counts.sum())} labelled pixels",
        )
        history = fit_keras(model, batches, validation, params, progress)
        # The saved network is a fresh, uncompiled copy: no loss or metric functions travel in the file.
        clean = build_unet(x_fit.shape[-1], n_classes, mean, std**2, depth, options.base_filters, options.dropout)
        clean.set_weights(model.get_weights())
        details = {
            "network": {
                "depth": depth,
                "base_filters": options.base_filters,
                "dice_weight": options.dice_weight,
                "augment": options.augment,
            },
            "class_pixels": {c.name: int(counts[i]) for i, c in enumerate(classes)},
        }
        return Fitted(clean, mean, std, history, n_fit=len(fit_idx), n_validation=len(val_idx), patch_size=size, details=details)

    def score(self, model: Any, test: ChipSet) -> AccuracyReport:
        import keras

        probs = keras.ops.convert_to_numpy(model.predict(test.x.astype(np.float32), batch_size=16, verbose=0))
        return segmentation_report(test.mask, probs, test.classes)

    def write_test(self, path: str, test: ChipSet) -> str:
        return write_chips(path, test)
