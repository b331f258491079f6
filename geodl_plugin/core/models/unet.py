"""U-Net for semantic segmentation, in pure Keras 3 (``keras.layers``, ``keras.ops``; nothing from ``tf.*``),
so it runs on the TensorFlow, JAX or PyTorch backend.

The network normalises its input itself (a ``Normalization`` first layer holding the training chips'
per-band mean and variance): raw pixel values go in at training and at prediction alike, the single scaling
path whose absence made an earlier attempt predict blank maps. It is fully convolutional (spatial size
``None``), so it predicts tiles of any size divisible by 2^depth.

Losses and metrics are plain functions of ``(y_true, y_pred)`` that ignore the label :data:`IGNORE` (255),
so sparse labels (points, partial polygons) train it. They are only needed to train: the model file holds
the uncompiled network, which loads in safe mode with no custom objects.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

IGNORE = 255


def build_unet(
    n_bands: int,
    n_classes: int,
    mean: Sequence[float] | np.ndarray,
    variance: Sequence[float] | np.ndarray,
    depth: int = 3,
    base_filters: int = 16,
    dropout: float = 0.0,
) -> Any:
    """Normalization → ``depth`` × (2 × [conv3×3 → BatchNorm → ReLU] → max-pool) → bottleneck →
    ``depth`` × (up-sample ×2 → concatenate skip → 2 × [conv → BN → ReLU]) → conv1×1 softmax.
    Filters double at every level from ``base_filters``."""
    import keras
    from keras import layers

    if depth < 1 or base_filters < 1:
        raise ValueError("depth and base_filters must be at least 1")

    def block(x: Any, filters: int, name: str) -> Any:
        for i in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
            x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
        return x

    inputs = keras.Input((None, None, n_bands), name="image")
    x = layers.Normalization(mean=list(map(float, mean)), variance=list(map(float, variance)), name="normalize")(inputs)
    skips = []
    for level in range(depth):
        x = block(x, base_filters * 2**level, f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = block(x, base_filters * 2**depth, "bottleneck")
    if dropout > 0:
        x = layers.Dropout(float(dropout), name="dropout")(x)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(base_filters * 2**level, 2, strides=2, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = block(x, base_filters * 2**level, f"dec{level}")
    outputs = layers.Conv2D(n_classes, 1, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="geodl_unet")


def unet_flops(height: int, width: int, n_bands: int, n_classes: int, depth: int, base_filters: int) -> float:
    """Multiply-adds × 2 of one forward pass on an ``height``×``width`` tile (convolutions and transposed
    convolutions; normalisation, BN, pooling and softmax are a few per pixel and left out)."""
    flops = 0.0
    h, w, cin = height, width, n_bands

    def conv(h: int, w: int, cin: int, cout: int, k: int) -> float:
        return 2.0 * h * w * cin * cout * k * k

    for level in range(depth):
        f = base_filters * 2**level
        flops += conv(h, w, cin, f, 3) + conv(h, w, f, f, 3)
        cin = f
        h, w = h // 2, w // 2
    f = base_filters * 2**depth
    flops += conv(h, w, cin, f, 3) + conv(h, w, f, f, 3)
    cin = f
    for level in reversed(range(depth)):
        f = base_filters * 2**level
        flops += 2.0 * h * w * cin * f * 4  # 2×2 transposed conv, stride 2: each input pixel feeds 4 outputs
        h, w = h * 2, w * 2
        flops += conv(h, w, 2 * f, f, 3) + conv(h, w, f, f, 3)
        cin = f
    flops += conv(h, w, cin, n_classes, 1)
    return flops


# --- masked losses and metrics (plain functions: nothing to register when loading) ---------------------
def _valid_one_hot(y_true: Any, n_classes: int, dtype: str) -> tuple[Any, Any, Any]:
    from keras import ops

    y = ops.cast(y_true, "int32")
    if len(y.shape) == 4:  # (b, h, w, 1) → (b, h, w)
        y = ops.squeeze(y, -1)
    valid = ops.not_equal(y, IGNORE)
    y_safe = ops.where(valid, y, ops.zeros_like(y))
    valid = ops.cast(valid, dtype)
    return y_safe, valid, ops.one_hot(y_safe, n_classes, dtype=dtype) * ops.expand_dims(valid, -1)


def masked_crossentropy(y_true: Any, y_pred: Any, class_weights: Optional[Sequence[float] | np.ndarray] = None) -> Any:
    """Sparse categorical cross-entropy averaged over labelled pixels only (label 255 ignored); optional
    per-class weights (for imbalanced labels). With two classes this is the binary cross-entropy."""
    from keras import ops

    n_classes = int(y_pred.shape[-1])
    y_safe, valid, one_hot = _valid_one_hot(y_true, n_classes, y_pred.dtype)
    p = ops.clip(y_pred, 1e-7, 1.0)
    ce = -ops.sum(one_hot * ops.log(p), axis=-1)
    weight = valid
    if class_weights is not None:
        weight = weight * ops.take(ops.convert_to_tensor(np.asarray(class_weights, np.float32)), y_safe)
    return ops.sum(ce * weight) / ops.maximum(ops.sum(weight), 1e-6)


def masked_dice_loss(y_true: Any, y_pred: Any, smooth: float = 1.0) -> Any:
    """1 − soft Dice, computed over labelled pixels only, averaged over classes."""
    from keras import ops

    n_classes = int(y_pred.shape[-1])
    _, valid, one_hot = _valid_one_hot(y_true, n_classes, y_pred.dtype)
    v = ops.expand_dims(valid, -1)
    p = y_pred * v
    axes = tuple(range(len(y_pred.shape) - 1))
    inter = ops.sum(p * one_hot, axis=axes)
    denom = ops.sum(p, axis=axes) + ops.sum(one_hot, axis=axes)
    return 1.0 - ops.mean((2.0 * inter + smooth) / (denom + smooth))


def make_loss(class_weights: Optional[Sequence[float] | np.ndarray] = None, dice_weight: float = 1.0) -> Callable[[Any, Any], Any]:
    """Cross-entropy + ``dice_weight`` × Dice, both masked."""

    def masked_ce_dice(y_true: Any, y_pred: Any) -> Any:
        loss = masked_crossentropy(y_true, y_pred, class_weights)
        if dice_weight:
            loss = loss + dice_weight * masked_dice_loss(y_true, y_pred)
        return loss

    return masked_ce_dice


def _confusion_terms(y_true: Any, y_pred: Any) -> tuple[Any, Any, Any]:
    from keras import ops

    n_classes = int(y_pred.shape[-1])
    _, valid, one_hot = _valid_one_hot(y_true, n_classes, "float32")
    pred = ops.one_hot(ops.argmax(y_pred, axis=-1), n_classes, dtype="float32") * ops.expand_dims(valid, -1)
    axes = tuple(range(len(y_pred.shape) - 1))
    tp = ops.sum(pred * one_hot, axis=axes)
    return tp, ops.sum(pred, axis=axes), ops.sum(one_hot, axis=axes)


def masked_iou(y_true: Any, y_pred: Any) -> Any:
    """Mean intersection over union of labelled pixels, over the classes present in the batch."""
    from keras import ops

    tp, pred, ref = _confusion_terms(y_true, y_pred)
    union = pred + ref - tp
    present = ops.cast(ref > 0, "float32")
    return ops.sum(present * tp / ops.maximum(union, 1.0)) / ops.maximum(ops.sum(present), 1.0)


def masked_f1(y_true: Any, y_pred: Any) -> Any:
    """Mean F1 (= Dice of hard predictions) of labelled pixels, over the classes present in the batch."""
    from keras import ops

    tp, pred, ref = _confusion_terms(y_true, y_pred)
    present = ops.cast(ref > 0, "float32")
    return ops.sum(present * 2.0 * tp / ops.maximum(pred + ref, 1.0)) / ops.maximum(ops.sum(present), 1.0)


# --- augmentation ------------------------------------------------------------------------------------
def dihedral(x: np.ndarray, t: int) -> np.ndarray:
    """One of the 8 flips/90° rotations of (..., h, w, ...) arrays whose spatial axes are 1 and 2."""
    if t & 4:
        x = x[:, :, ::-1]
    return np.rot90(x, t & 3, axes=(1, 2))


def augment_batch(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random flip/rotation per sample, the same for the image (n, k, k, b) and its mask (n, k, k)."""
    choice = rng.integers(0, 8, len(x))
    xo, yo = np.empty_like(x), np.empty_like(y)
    for t in range(8):
        sel = np.flatnonzero(choice == t)
        if len(sel):
            xo[sel] = dihedral(x[sel], t)
            yo[sel] = dihedral(y[sel], t)
    return xo, yo


def phases_covered(y: np.ndarray, multiple: int) -> int:
    """How many of the ``multiple``² positions modulo the pooling grid hold a labelled pixel in masks
    (n, k, k). A U-Net's output at position (r, c) is computed by weights that depend on (r mod 2^depth,
    c mod 2^depth) (the pooling and up-sampling grid), so a phase with no label is never trained."""
    if multiple <= 1:
        return 1
    _, rows, cols = np.nonzero(y != IGNORE)
    return len(np.unique((rows % multiple) * multiple + cols % multiple))


def translation_size(k: int, multiple: int) -> int:
    """The window :func:`translate_batch` cuts from k×k chips: k - 2^depth when that leaves a U-Net at least
    one pooling cell of 2^depth (cropping then costs no invented pixels), else k itself (chips mirrored)."""
    return k - multiple if k - multiple >= multiple else k


def translate_batch(
    x: np.ndarray, y: np.ndarray, multiple: int, rng: np.random.Generator, size: Optional[int] = None
) -> tuple[np.ndarray, np.ndarray]:
    """Random translations that put each chip's labelled pixels at every phase of the pooling grid.

    Point patches carry one labelled pixel, always at the centre (flips keep it there), so without this the
    U-Net only ever learns the output positions with the centre's phase modulo 2^depth and its map shows a
    dot pattern of that period. Here every chip (n, k, k, bands) and its mask (n, k, k) are cut to ``size``
    (a multiple of ``multiple``; default :func:`translation_size`) at an offset drawn uniformly from
    ``multiple`` consecutive offsets per axis, centred on the middle: the labelled pixel moves by less than
    ``multiple`` and lands at each phase equally often. Chips too small to crop are mirror-padded first
    (masks padded with 255, so no mirrored pixel counts as labelled)."""
    n, k = x.shape[0], x.shape[1]
    size = translation_size(k, multiple) if size is None else int(size)
    # offsets first .. first + multiple - 1 put the centre pixel (k // 2) at size // 2 - multiple // 2 ..
    # size // 2 - multiple // 2 + multiple - 1 of the window; pad just enough for every window to fit
    shift = k // 2 - size // 2 - multiple // 2 + 1
    pad = max(0, -shift, shift + multiple - 1 + size - k)
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="symmetric")
        y = np.pad(y, ((0, 0), (pad, pad), (pad, pad)), constant_values=IGNORE)
    first = pad + shift
    offsets = first + rng.integers(0, multiple, (n, 2))
    xo = np.empty((n, size, size) + x.shape[3:], x.dtype)
    yo = np.empty((n, size, size), y.dtype)
    for i, (r, c) in enumerate(offsets):
        xo[i] = x[i, r : r + size, c : c + size]
        yo[i] = y[i, r : r + size, c : c + size]
    return xo, yo


def chip_batches(x: np.ndarray, y: np.ndarray, batch_size: int, augment: bool, seed: int, shuffle: bool = True, multiple: int = 1) -> Any:
    """A ``keras.utils.PyDataset`` of (image, mask) batches, reshuffled and re-augmented every epoch (NumPy,
    so the pipeline is the same on every backend).

    ``multiple`` is the U-Net's 2^depth: when the labelled pixels of the masks do not cover every phase of
    that grid (point patches: the centre only), every batch is randomly translated
    (:func:`translate_batch`), whether or not ``augment`` asks for flips."""
    import keras

    translate = phases_covered(y, multiple) < multiple * multiple

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x)) if shuffle else np.arange(len(x))
            self.translated = translate

        def __len__(self) -> int:
            return max(1, int(np.ceil(len(x) / batch_size)))

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            idx = np.sort(self.order[i * batch_size : (i + 1) * batch_size])
            xb, yb = x[idx], y[idx]
            if translate:
                xb, yb = translate_batch(xb, yb, multiple, self.rng)
            if augment:
                xb, yb = augment_batch(xb, yb, self.rng)
            return np.ascontiguousarray(xb, np.float32), np.ascontiguousarray(yb, np.int32)

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = self.rng.permutation(len(x))

    return Batches()
