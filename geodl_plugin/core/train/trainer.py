"""Train a model from sample TFRecords and write the model file.

One trainer for every model type. The held-out test split is never seen in training; the validation split
(taken from the training side) drives early stopping, and the best epoch's weights are the ones saved.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..data.samples import SampleSet, load_samples, note_unknown_facts
from ..data.splits import split_blocked, split_random
from ..evaluate.metrics import classification_report
from ..io.tfrecord import write_examples
from ..models.model_file import make_manifest, save_model_file
from ..models.networks import MODEL_TYPES, PIXEL_DNN, RANDOM_FOREST, UNET, build_pixel_dnn, fit_random_forest
from ..runtime.errors import Cancelled, GeoDLError
from ..runtime.progress import Progress, ensure

log = logging.getLogger("geodl")

SPLITS = ("random", "blocked")


@dataclass
class TrainParams:
    samples: list[str]
    output: str
    model_type: str = PIXEL_DNN
    bands: Optional[list[str]] = None
    hidden_units: tuple[int, ...] = (64,)
    dropout: float = 0.2
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 1e-3
    test_fraction: float = 0.2
    validation_fraction: float = 0.15
    split: str = "blocked"
    block_size_pixels: int = 8
    class_weights: bool = True
    patience: int = 8
    n_trees: int = 200
    seed: int = 42
    test_samples_output: Optional[str] = None
    # For samples without a sidecar (Earth Engine table exports): the class names in id order (id 1 first
    # unless the ids start at 0) and the source imagery's pixel size; unknown stays unknown otherwise.
    class_names: Optional[list[str]] = None
    source_pixel_size: Optional[float] = None

    def validate(self) -> None:
        from ..io.paths_guard import check_outputs_against_inputs

        if not self.samples:
            raise GeoDLError("No sample file given. Extract samples first (geodl:extractsamples).")
        for s in self.samples:
            if not Path(s).exists():
                raise GeoDLError(f"The sample file '{s}' does not exist.")
        check_outputs_against_inputs(self.samples, [self.output, self.test_samples_output])
        if not self.learning_rate > 0:
            raise GeoDLError(f"The learning rate must be above 0 (got {self.learning_rate:g}); try 0.001.")
        if not self.hidden_units or any(int(u) < 1 for u in self.hidden_units):
            raise GeoDLError(f"Hidden units {list(self.hidden_units)} must be whole numbers of at least 1, "
                             "e.g. 64,32.")
        if self.source_pixel_size is not None and not self.source_pixel_size > 0:
            raise GeoDLError(f"The source pixel size must be above 0 (got {self.source_pixel_size:g}).")
        if self.model_type not in MODEL_TYPES:
            raise GeoDLError(f"Unknown model type '{self.model_type}'; choose one of {', '.join(MODEL_TYPES)}.")
        if self.split not in SPLITS:
            raise GeoDLError(f"Unknown split '{self.split}'; choose random or blocked.")
        if self.epochs < 1 or self.batch_size < 1:
            raise GeoDLError("Epochs and batch size must be at least 1.")
        if not 0 <= self.dropout < 1:
            raise GeoDLError(f"Dropout must be in [0, 1); got {self.dropout}.")
        from ..io.atomic import check_writable

        check_writable(self.output)
        if self.test_samples_output:
            check_writable(self.test_samples_output)


@dataclass
class TrainResult:
    model_path: str
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    n_train: int
    n_validation: int
    n_test: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    test_samples_path: Optional[str] = None


def _split(samples: SampleSet, params: TrainParams) -> tuple[np.ndarray, np.ndarray]:
    if params.split == "blocked" and samples.xy is not None:
        pixel = float(samples.meta.get("pixel_size", [1.0])[0] or 1.0)
        return split_blocked(samples.y, samples.xy, params.block_size_pixels * pixel, params.test_fraction, params.seed)
    if params.split == "blocked":
        log.warning("These samples carry no coordinates; using a random split instead of a blocked one.")
    return split_random(samples.y, params.test_fraction, params.seed)


class _KerasProgress:
    """Keras callback: progress per epoch, live metrics, cancel within one batch."""

    def __new__(cls, progress: Progress, epochs: int) -> Any:
        import keras

        class Callback(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.cancelled = False

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                if progress.cancelled():
                    self.cancelled = True
                    self.model.stop_training = True

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                values = {k: float(v) for k, v in (logs or {}).items()}
                values["epoch"] = epoch + 1
                progress.metrics(values)
                progress.update(100.0 * (epoch + 1) / epochs,
                                f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()
                                                                          if k != "epoch"))

        return Callback()


def _dataset(x: np.ndarray, y: np.ndarray, batch: int, shuffle: bool, seed: int, weights: Optional[np.ndarray]):
    """tf.data pipeline (cache → shuffle → batch → prefetch) on the TensorFlow backend; plain arrays else."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    tensors = (x, y) if weights is None else (x, y, weights)
    ds = tf.data.Dataset.from_tensor_slices(tensors).cache()
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)


def train_model(params: TrainParams, progress: Optional[Progress] = None) -> TrainResult:
    progress = ensure(progress)
    params.validate()
    started = time.perf_counter()
    if params.model_type == UNET:
        # U-Net samples are chips with a k×k label array (or point patches); its trainer reads them itself.
        from .unet_training import train_segmentation

        return train_segmentation(params, None, progress)
    progress.update(0, "reading samples")
    samples = load_samples(params.samples, bands=params.bands)
    note_unknown_facts(samples, params.class_names, params.source_pixel_size)
    classes = samples.classes
    present = sorted(set(samples.y.tolist()))
    if len(present) < 2:
        raise GeoDLError(f"The samples hold one class only ({present}); a classifier needs at least two.")
    warnings = []
    for c in classes:
        n = int(np.sum(samples.y == c.id))
        if n < 10:
            warnings.append(f"Class '{c.name}' has only {n} samples; its accuracy will be unreliable. Label more.")
    if samples.patch_size != 1:
        raise GeoDLError(f"These samples are {samples.patch_size}×{samples.patch_size} patches; the "
                         f"{params.model_type} model classifies single pixels. Extract with patch size 1.")

    train_idx, test_idx = _split(samples, params)
    train, test = samples.subset(train_idx), samples.subset(test_idx)
    y_index = np.array([classes.index_of(int(v)) for v in train.y], dtype=np.int64)
    n_classes = len(classes)
    counts = np.bincount(y_index, minlength=n_classes).astype(np.float64)
    missing_train = [classes.classes[i].name for i in range(n_classes) if counts[i] == 0]
    if missing_train:
        warnings.append(f"Class(es) {missing_train} have no training sample after the split.")
    mean = train.x.astype(np.float64).mean(axis=0)
    std = train.x.astype(np.float64).std(axis=0)
    std = np.where(std > 0, std, 1.0)
    history: dict[str, list[float]] = {}
    progress.check()

    if params.model_type == RANDOM_FOREST:
        progress.update(10, f"fitting a random forest of {params.n_trees} trees on {len(train)} samples")
        model: Any = fit_random_forest(train.x, y_index, n_classes, n_trees=params.n_trees, seed=params.seed,
                                       class_weight="balanced" if params.class_weights else None)
        n_val = 0
    else:
        model, history, n_val = _fit_dnn(train.x, y_index, n_classes, mean, std, counts, params, progress.sub(5, 90))

    progress.check()
    from ..models.model_file import ModelBundle

    bundle = ModelBundle({}, model)
    metrics: dict[str, Any] = {}
    if len(test):
        probs = bundle.predict_proba(test.x)
        predicted = np.array(classes.ids)[probs.argmax(axis=1)]
        metrics = classification_report(test.y, predicted, classes)
        metrics["split"] = params.split
        progress.message(f"held-out accuracy {metrics['overall_accuracy']:.3f}, kappa {metrics['kappa']:.3f} "
                         f"on {len(test)} samples")
    else:
        warnings.append("No held-out samples (test fraction 0); the model file carries no accuracy.")
    meta = samples.meta
    training = {k: v for k, v in asdict(params).items() if k not in ("output",)}
    training.update({"history": history, "n_train": len(train) - n_val, "n_validation": n_val, "n_test": len(test),
                     "class_counts": {c.name: int(np.sum(samples.y == c.id)) for c in classes}})
    manifest = manifest_from_samples(params, meta, params.model_type, samples.bands, classes, mean, std, 1, metrics,
                                     training)
    test_path = save_trained(params, model, manifest, test if len(test) else None, _write_samples, warnings,
                             progress)
    return TrainResult(params.output, metrics, history, len(train) - n_val, n_val, len(test),
                       time.perf_counter() - started, warnings, test_path)


def manifest_from_samples(params: TrainParams, meta: dict, architecture: str, bands: Sequence[str], classes: Any,
                          mean: Any, std: Any, patch_size: int, metrics: dict, training: dict) -> dict[str, Any]:
    """The model file's manifest, with the grid facts (dtype, nodata, pixel size, CRS) the samples carry."""
    return make_manifest(
        name=Path(params.output).stem, architecture=architecture, bands=bands, classes=classes, mean=mean, std=std,
        # Unknown stays unknown (None): samples without a sidecar say nothing of the imagery, and a guess
        # recorded here would later refuse the very imagery the samples came from.
        source_dtype=meta.get("source_dtype"), nodata=meta.get("nodata"),
        pixel_size=meta.get("pixel_size"), crs_wkt=str(meta.get("crs_wkt") or ""),
        crs_units=str(meta.get("crs_units") or ""), patch_size=patch_size, metrics=metrics, training=training,
        data_source=", ".join(meta.get("rasters", [])) or ", ".join(params.samples),
    )


def save_trained(params: TrainParams, model: Any, manifest: dict[str, Any], test: Any,
                 write_test: Any, warnings: list[str], progress: Progress) -> Optional[str]:
    """Save the model file (the last cancel point), then the held-out samples if asked for; log warnings.
    Returns the held-out samples' path, or None."""
    progress.check()
    save_model_file(params.output, model, manifest)
    test_path = None
    if params.test_samples_output and test is not None:
        test_path = write_test(params.test_samples_output, test)
    for w in warnings:
        log.warning(w)
    progress.update(100, f"model written to {params.output}")
    return test_path


def _write_samples(path: str, samples: SampleSet) -> str:
    import json

    from ..data.samples import COORDS, LABEL, sidecar_path

    def records():
        for i in range(len(samples)):
            rec: dict = {b: np.atleast_1d(samples.x[i][..., k]).ravel() for k, b in enumerate(samples.bands)}
            rec[LABEL] = float(samples.y[i])
            if samples.xy is not None:
                rec[COORDS[0]], rec[COORDS[1]] = float(samples.xy[i, 0]), float(samples.xy[i, 1])
            yield rec

    write_examples(path, records())
    meta = dict(samples.meta)
    meta["count"] = len(samples)
    meta["classes"] = samples.classes.to_json()
    meta["bands"] = samples.bands
    sidecar_path(path).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return path


def _fit_dnn(x: np.ndarray, y: np.ndarray, n_classes: int, mean: np.ndarray, std: np.ndarray, counts: np.ndarray,
             params: TrainParams, progress: Progress) -> tuple[Any, dict[str, list[float]], int]:
    import keras

    keras.utils.set_random_seed(params.seed)
    _, val_idx = split_random(y, params.validation_fraction, params.seed + 1) if params.validation_fraction else (None, np.zeros(0, int))
    fit_idx = np.setdiff1d(np.arange(len(y)), val_idx)
    model = build_pixel_dnn(x.shape[1], n_classes, mean, std**2, params.hidden_units, params.dropout)
    model.compile(optimizer=keras.optimizers.Adam(params.learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    weights = None
    if params.class_weights:
        per_class = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
        weights = per_class[y].astype(np.float32)
    callback = _KerasProgress(progress, params.epochs)
    callbacks = [callback]
    validation: Any = None
    if len(val_idx):
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=params.patience,
                                                       restore_best_weights=True))
        validation = (x[val_idx].astype(np.float32), y[val_idx])
    train_ds = _dataset(x[fit_idx].astype(np.float32), y[fit_idx], params.batch_size, True, params.seed,
                        None if weights is None else weights[fit_idx])
    if train_ds is not None:
        hist = model.fit(train_ds, epochs=params.epochs, validation_data=validation, callbacks=callbacks, verbose=0,
                         shuffle=False)  # the tf.data pipeline shuffles
    else:
        hist = model.fit(x[fit_idx].astype(np.float32), y[fit_idx], batch_size=params.batch_size,
                         epochs=params.epochs, validation_data=validation, callbacks=callbacks, verbose=0,
                         sample_weight=None if weights is None else weights[fit_idx], shuffle=True)
    if callback.cancelled:
        raise Cancelled("Training cancelled; no model file was written.")
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return model, history, len(val_idx)


def describe_samples(paths: Sequence[str]) -> dict[str, Any]:
    """Counts per class and bands, for the dock and logs."""
    s = load_samples(paths)
    return {"n": len(s), "bands": s.bands, "patch_size": s.patch_size,
            "per_class": {c.name: int(np.sum(s.y == c.id)) for c in s.classes}}
