"""The per-pixel families' part of training: the dense network and the random forest. Both classify one
pixel's band values, so they share loading, the class index and held-out scoring."""

from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np

from ..data.samples import COORDS, LABEL, SampleSet, load_samples, note_unknown_facts, sidecar_path
from ..evaluate.metrics import classification_report
from ..evaluate.reports import AccuracyReport
from ..io.atomic import atomic_write_text
from ..io.tfrecord import write_examples
from ..models.family import DNNParams, ForestParams
from ..models.model_file import ModelBundle
from ..models.networks import build_pixel_dnn, fit_random_forest
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress
from .trainer import FamilyTrainer, Fitted, TrainParams, class_weight_vector, fit_keras, validation_split


class PixelTrainer(FamilyTrainer):
    def load(self, params: TrainParams, progress: Progress) -> SampleSet:
        samples = load_samples(params.samples, bands=params.bands)
        note_unknown_facts(samples, params.class_names, params.source_pixel_size)
        if samples.patch_size != 1:
            raise GeoDLError(
                f"These samples are {samples.patch_size}×{samples.patch_size} patches; the "
                f"{params.family.value} model classifies single pixels. Extract with patch size 1."
            )
        return samples

    @staticmethod
    def class_index(train: SampleSet) -> np.ndarray:
        return np.array([train.classes.index_of(int(v)) for v in train.y], dtype=np.int64)

    @staticmethod
    def statistics(train: SampleSet) -> tuple[np.ndarray, np.ndarray]:
        x = train.x.astype(np.float64)
        std = x.std(axis=0)
        return x.mean(axis=0), np.where(std > 0, std, 1.0)

    @staticmethod
    def warn_missing(train: SampleSet, counts: np.ndarray, warnings: list[str]) -> None:
        missing = [train.classes.classes[i].name for i in range(len(counts)) if counts[i] == 0]
        if missing:
            warnings.append(f"Class(es) {missing} have no training sample after the split.")

    def score(self, model: Any, test: SampleSet) -> AccuracyReport:
        probs = ModelBundle({}, model).predict_proba(test.x)
        predicted = np.array(test.classes.ids)[probs.argmax(axis=1)]
        return classification_report(test.y, predicted, test.classes)

    def write_test(self, path: str, test: SampleSet) -> str:
        return write_samples(path, test)


class DNNTrainer(PixelTrainer):
    def fit(self, train: SampleSet, params: TrainParams, progress: Progress, warnings: list[str]) -> Fitted:
        import keras

        options: DNNParams = params.options
        y = self.class_index(train)
        n_classes = len(train.classes)
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        self.warn_missing(train, counts, warnings)
        mean, std = self.statistics(train)
        keras.utils.set_random_seed(params.seed)
        fit_idx, val_idx = validation_split(y, params)
        model = build_pixel_dnn(train.x.shape[1], n_classes, mean, std**2, options.hidden_units, options.dropout)
        model.compile(optimizer=keras.optimizers.Adam(params.learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        weights = class_weight_vector(counts)[y].astype(np.float32) if params.class_weights else None
        x = train.x.astype(np.float32)
        validation = (x[val_idx], y[val_idx]) if len(val_idx) else None
        data = _dataset(x[fit_idx], y[fit_idx], params.batch_size, params.seed, None if weights is None else weights[fit_idx])
        if data is None:  # not the TensorFlow backend: Keras batches and shuffles the arrays itself
            data = (x[fit_idx], y[fit_idx]) if weights is None else (x[fit_idx], y[fit_idx], weights[fit_idx])
        history = fit_keras(model, data, validation, params, progress)
        return Fitted(model, mean, std, history, n_fit=len(fit_idx), n_validation=len(val_idx))


class ForestTrainer(PixelTrainer):
    def fit(self, train: SampleSet, params: TrainParams, progress: Progress, warnings: list[str]) -> Fitted:
        options: ForestParams = params.options
        y = self.class_index(train)
        n_classes = len(train.classes)
        self.warn_missing(train, np.bincount(y, minlength=n_classes), warnings)
        mean, std = self.statistics(train)
        progress.update(10, f"fitting a random forest of {options.n_trees} trees on {len(train)} samples")
        forest = fit_random_forest(
            train.x,
            y,
            n_classes,
            n_trees=options.n_trees,
            max_depth=options.max_depth,
            seed=params.seed,
            class_weight="balanced" if params.class_weights else None,
        )
        return Fitted(forest, mean, std, n_fit=len(train))


def _dataset(x: np.ndarray, y: np.ndarray, batch: int, seed: int, weights: Optional[np.ndarray]) -> Any:
    """tf.data (cache → shuffle → batch → prefetch) on the TensorFlow backend; None elsewhere."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    tensors = (x, y) if weights is None else (x, y, weights)
    ds = tf.data.Dataset.from_tensor_slices(tensors).cache()
    ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)


def write_samples(path: str, samples: SampleSet) -> str:
    """Samples back to a TFRecord with its sidecar (the held-out split, for geodl:evaluate)."""

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
    atomic_write_text(sidecar_path(path), json.dumps(meta, indent=2))
    return path
