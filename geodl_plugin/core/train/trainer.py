"""The one training skeleton: every model family trains through :func:`run_training`.

The skeleton owns what is the same for all of them: parameter checks, the held-out split (spatial blocks by
default, never seen in training), warnings about thin classes, cancel, the held-out report, the manifest and
the atomic save. A family supplies a :class:`FamilyTrainer`: how to load its samples, how to fit its network
or forest on the training side (the validation split taken from it drives early stopping, and the best
epoch's weights are the ones saved) and how to score the held-out side. The table that pairs each family
with its trainer is ``core/families.py``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..data.splits import split_blocked, split_random
from ..evaluate.reports import AccuracyReport, RegressionReport
from ..io.atomic import check_writable
from ..models.family import ModelFamily, options_for
from ..models.model_file import make_manifest, save_model_file
from ..runtime.errors import Cancelled, GeoDLError
from ..runtime.progress import Progress, ensure

log = logging.getLogger("geodl")

SPLITS = ("random", "blocked")


@dataclass
class TrainParams:
    """What every family shares, plus ``options``: the family's own dataclass (``models/family.py``); None
    means its defaults, and a dict (as it arrives from the worker's pipe) is turned back into it."""

    samples: list[str]
    output: str
    family: ModelFamily = ModelFamily.PIXEL_DNN
    options: Any = None
    bands: Optional[list[str]] = None
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 1e-3
    test_fraction: float = 0.2
    validation_fraction: float = 0.15
    split: str = "blocked"
    block_size_pixels: int = 8
    class_weights: bool = True
    patience: int = 8
    seed: int = 42
    test_samples_output: Optional[str] = None
    # For samples without a sidecar (Earth Engine table exports): the class names in id order and the source
    # imagery's pixel size. Unknown stays unknown otherwise (data/samples.py: note_unknown_facts).
    class_names: Optional[list[str]] = None
    source_pixel_size: Optional[float] = None

    def __post_init__(self) -> None:
        self.family = ModelFamily.parse(self.family)
        self.options = options_for(self.family, self.options)

    def validate(self) -> None:
        if not self.samples:
            raise GeoDLError("No sample file given. Extract samples first (geodl:extractsamples).")
        for s in self.samples:
            if not Path(s).exists():
                raise GeoDLError(f"The sample file '{s}' does not exist.")
        from ..io.paths_guard import check_outputs_against_inputs

        check_outputs_against_inputs(self.samples, [self.output, self.test_samples_output])
        if self.source_pixel_size is not None and not self.source_pixel_size > 0:
            raise GeoDLError(f"The source pixel size must be above 0 (got {self.source_pixel_size:g}).")
        if self.split not in SPLITS:
            raise GeoDLError(f"Unknown split '{self.split}'; choose random or blocked.")
        if self.epochs < 1 or self.batch_size < 1:
            raise GeoDLError("Epochs and batch size must be at least 1.")
        if not self.learning_rate > 0:
            raise GeoDLError(f"The learning rate must be above 0 (e.g. 0.001); got {self.learning_rate}.")
        if not 0 <= self.test_fraction < 1 or not 0 <= self.validation_fraction < 1:
            raise GeoDLError("The held-out and validation fractions must be in [0, 1).")
        self.options.validate()
        check_writable(self.output)
        if self.test_samples_output:
            check_writable(self.test_samples_output)


@dataclass
class TrainResult:
    model_path: str
    metrics: Optional[AccuracyReport | RegressionReport]  # the held-out report; None without held-out samples
    history: dict[str, list[float]]
    n_train: int
    n_validation: int
    n_test: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    test_samples_path: Optional[str] = None


@dataclass
class Fitted:
    """What a family's ``fit`` hands back to the skeleton."""

    model: Any
    mean: np.ndarray  # normalisation learned from the training side (also inside the network)
    std: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    n_fit: int = 0
    n_validation: int = 0
    patch_size: int = 1
    details: dict[str, Any] = field(default_factory=dict)  # family facts for the manifest (e.g. U-Net depth)


class FamilyTrainer:
    """A family's part of training. ``data`` is whatever ``load`` returns: it has ``classes``, ``bands``,
    ``meta``, ``xy`` (or None), ``patch_size``, ``subset(index)`` and ``__len__``."""

    task = "classification"

    def load(self, params: TrainParams, progress: Progress) -> Any:
        raise NotImplementedError

    def check_samples(self, data: Any, labels: np.ndarray, warnings: list[str]) -> None:
        """Refuse samples the family cannot learn from; warn about thin ones."""
        present = sorted(set(np.asarray(labels).tolist()))
        if len(present) < 2:
            raise GeoDLError(f"The samples hold one class only ({present}); a classifier needs at least two.")
        for c in data.classes:
            n = int(np.sum(labels == c.id))
            if 0 < n < 10:
                warnings.append(f"Class '{c.name}' has only {n} samples; its accuracy will be unreliable. Label more.")

    def split_labels(self, data: Any) -> np.ndarray:
        """One class id per sample, for stratified (and blocked) splits."""
        return np.asarray(data.y)

    def block_pixels(self, data: Any, params: TrainParams) -> int:
        return params.block_size_pixels

    def after_split(self, data: Any, train_idx: np.ndarray, test_idx: np.ndarray, warnings: list[str]) -> np.ndarray:
        """The training indices, once the family has removed what would leak into the held-out side."""
        return train_idx

    def fit(self, train: Any, params: TrainParams, progress: Progress, warnings: list[str]) -> Fitted:
        raise NotImplementedError

    def score(self, model: Any, test: Any) -> AccuracyReport | RegressionReport:
        raise NotImplementedError

    def write_test(self, path: str, test: Any) -> str:
        raise NotImplementedError


def run_training(params: TrainParams, trainer: FamilyTrainer, progress: Optional[Progress] = None) -> TrainResult:
    progress = ensure(progress)
    params.validate()
    started = time.perf_counter()
    progress.update(0, "reading samples")
    data = trainer.load(params, progress)
    classes = data.classes
    labels = trainer.split_labels(data)
    warnings: list[str] = []
    trainer.check_samples(data, labels, warnings)
    train_idx, test_idx = split_samples(labels, data, params, trainer.block_pixels(data, params))
    train_idx = trainer.after_split(data, train_idx, test_idx, warnings)
    if not len(train_idx):
        raise GeoDLError("No sample is left to train on after the held-out split; label more or lower the held-out fraction.")
    progress.check()
    fitted = trainer.fit(data.subset(train_idx), params, progress.sub(5, 90), warnings)
    progress.check()
    test = data.subset(test_idx)
    metrics: Optional[AccuracyReport | RegressionReport] = None
    if len(test):
        metrics = trainer.score(fitted.model, test)
        metrics.split = params.split
        progress.message(f"held-out {metrics.summary()}")
    else:
        warnings.append("No held-out samples (held-out fraction 0 or too few blocks); the model file carries no accuracy.")
    training = training_record(params)
    training.update(
        {
            "history": fitted.history,
            "n_train": fitted.n_fit,
            "n_validation": fitted.n_validation,
            "n_test": len(test),
            "class_counts": {c.name: int(np.sum(labels == c.id)) for c in classes},
            **fitted.details,
        }
    )
    manifest = manifest_from_samples(
        params,
        data.meta,
        trainer.task,
        data.bands,
        classes,
        fitted.mean,
        fitted.std,
        fitted.patch_size,
        metrics.to_dict() if metrics else {},
        training,
        fitted.model,
    )
    progress.check()  # the last cancel point: after it, the file is written whole
    save_model_file(params.output, fitted.model, manifest)
    test_path = trainer.write_test(params.test_samples_output, test) if params.test_samples_output and len(test) else None
    for w in warnings:
        log.warning(w)
    progress.update(100, f"model written to {params.output}")
    return TrainResult(
        params.output,
        metrics,
        fitted.history,
        fitted.n_fit,
        fitted.n_validation,
        len(test),
        time.perf_counter() - started,
        warnings,
        test_path,
    )


def split_samples(labels: np.ndarray, data: Any, params: TrainParams, block_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    if params.split == "blocked" and data.xy is not None:
        pixel = float(data.meta.get("pixel_size", [1.0])[0] or 1.0)
        return split_blocked(labels, data.xy, block_pixels * pixel, params.test_fraction, params.seed)
    if params.split == "blocked":
        log.warning("These samples carry no coordinates; using a random split instead of a blocked one.")
    return split_random(labels, params.test_fraction, params.seed)


def validation_split(labels: np.ndarray, params: TrainParams, minimum: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) indices into the training side; no validation below ``minimum`` samples."""
    if not params.validation_fraction or len(labels) < minimum:
        return np.arange(len(labels)), np.zeros(0, np.int64)
    _, val_idx = split_random(labels, params.validation_fraction, params.seed + 1)
    return np.setdiff1d(np.arange(len(labels)), val_idx), val_idx


def class_weight_vector(counts: np.ndarray) -> np.ndarray:
    """Balanced weights (n / (classes · n_c)); a class without samples weighs 0."""
    n = len(counts)
    return np.where(counts > 0, counts.sum() / (n * np.maximum(counts, 1)), 0.0)


def training_record(params: TrainParams) -> dict[str, Any]:
    """The parameters as the manifest keeps them (JSON types; the family and its options by name)."""
    record = {k: v for k, v in asdict(params).items() if k != "output"}
    record["family"] = params.family.value
    return json.loads(json.dumps(record, default=str))


def manifest_from_samples(
    params: TrainParams,
    meta: dict,
    task: str,
    bands: Sequence[str],
    classes: Any,
    mean: Any,
    std: Any,
    patch_size: int,
    metrics: dict,
    training: dict,
    model: Any = None,
) -> dict[str, Any]:
    """The model file's manifest, with the grid facts (dtype, nodata, pixel size, CRS) the samples carry."""
    return make_manifest(
        name=Path(params.output).stem,
        architecture=params.family.value,
        task=task,
        bands=bands,
        classes=classes,
        mean=mean,
        std=std,
        source_dtype=meta.get("source_dtype"),
        nodata=meta.get("nodata"),
        # Unknown stays unknown (None): samples without a sidecar say nothing of the imagery, and a guess
        # recorded here would later refuse the very imagery the samples came from.
        pixel_size=meta.get("pixel_size"),
        crs_wkt=str(meta.get("crs_wkt") or ""),
        crs_units=str(meta.get("crs_units", "")),
        patch_size=patch_size,
        metrics=metrics,
        training=training,
        data_source=", ".join(meta.get("rasters", [])) or ", ".join(params.samples),
        model=model,
    )


class KerasProgress:
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
                progress.update(
                    100.0 * (epoch + 1) / epochs,
                    f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "epoch"),
                )

        return Callback()


def fit_keras(model: Any, train: Any, validation: Any, params: TrainParams, progress: Progress) -> dict[str, list]:
    """``model.fit`` with the shared callbacks (progress, cancel, early stopping on the validation loss with the
    best weights restored). ``train`` is whatever Keras fits on: a dataset, a generator or an (x, y[, w]) tuple.
    Raises Cancelled (nothing written) if the user cancelled."""
    import keras

    callback = KerasProgress(progress, params.epochs)
    callbacks: list[Any] = [callback]
    if validation is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=params.patience, restore_best_weights=True))
    if isinstance(train, tuple):
        x, y, *w = train
        hist = model.fit(
            x,
            y,
            sample_weight=w[0] if w else None,
            batch_size=params.batch_size,
            epochs=params.epochs,
            validation_data=validation,
            callbacks=callbacks,
            verbose=0,
            shuffle=True,
        )
    else:
        hist = model.fit(train, epochs=params.epochs, validation_data=validation, callbacks=callbacks, verbose=0)
    if callback.cancelled:
        raise Cancelled("Training cancelled; no model file was written.")
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}
