"""Fit and score the regression families (random-forest regressor, pixel DNN regressor) on regression samples.

The held-out split never reaches training; for the DNN a validation part of the training side drives early
stopping (best epoch's weights kept). A random split is stratified by target quintile, so the test side spans
the target's range; a blocked split keeps whole spatial blocks together.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..data.splits import split_blocked, split_random
from ..data.target_samples import TargetSampleSet
from ..evaluate.regression_metrics import regression_report
from ..models.regression import (
    ForestRegressor,
    build_dnn_regressor,
    fit_forest_regressor,
    predict_keras_regressor,
)
from ..runtime.errors import Cancelled
from ..runtime.progress import Progress, ensure


def target_strata(y: np.ndarray, n: int = 5) -> np.ndarray:
    """Quantile bins of the target: the strata of a stratified random split."""
    edges = np.quantile(y, np.linspace(0, 1, n + 1)[1:-1])
    return np.digitize(y, edges)


def split_targets(samples: TargetSampleSet, test_fraction: float, blocked: bool, block_size: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    if blocked and samples.xy is not None:
        return split_blocked(np.zeros(len(samples), np.int64), samples.xy, block_size, test_fraction, seed)
    return split_random(target_strata(samples.y), test_fraction, seed)


def predict_values(model: Any, x: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(values, spread or None) float32 for raw pixel rows: the forest gives the trees' standard deviation."""
    if isinstance(model, ForestRegressor):
        return model.predict(x)
    return predict_keras_regressor(model, x), None


def score_regression(model: Any, test: TargetSampleSet) -> dict[str, Any]:
    values, _ = predict_values(model, test.x)
    return regression_report(test.y, values)


def fit_forest(train: TargetSampleSet, n_trees: int, max_depth: int, min_samples_leaf: int, seed: int,
               progress: Optional[Progress] = None) -> ForestRegressor:
    progress = ensure(progress)
    progress.update(0, f"fitting a random-forest regressor of {n_trees} trees on {len(train)} samples")
    forest = fit_forest_regressor(train.x, train.y, n_trees=n_trees, max_depth=max_depth,
                                  min_samples_leaf=min_samples_leaf, seed=seed)
    progress.update(100)
    return forest


def fit_dnn(train: TargetSampleSet, hidden_units: Sequence[int], dropout: float, epochs: int, batch_size: int,
            learning_rate: float, validation_fraction: float, patience: int, seed: int,
            progress: Optional[Progress] = None) -> tuple[Any, dict[str, list[float]], int]:
    """(model, history, validation count). Mean squared error in target units; RMSE and MAE logged."""
    import keras

    from .trainer import _KerasProgress

    progress = ensure(progress)
    keras.utils.set_random_seed(seed)
    val_idx = np.zeros(0, np.int64)
    if validation_fraction:
        _, val_idx = split_random(target_strata(train.y), validation_fraction, seed + 1)
    fit_idx = np.setdiff1d(np.arange(len(train)), val_idx)
    x, y = train.x.astype(np.float32), train.y.astype(np.float32)
    mean = x[fit_idx].astype(np.float64).mean(axis=0)
    std = x[fit_idx].astype(np.float64).std(axis=0)
    std = np.where(std > 0, std, 1.0)
    target_std = float(y[fit_idx].std()) or 1.0
    model = build_dnn_regressor(x.shape[1], mean, std ** 2, float(y[fit_idx].mean()), target_std, hidden_units,
                                dropout)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse",
                  metrics=[keras.metrics.RootMeanSquaredError(name="rmse"), keras.metrics.MeanAbsoluteError(name="mae")])
    callback = _KerasProgress(progress, epochs)
    callbacks: list[Any] = [callback]
    validation: Any = None
    if len(val_idx):
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                       restore_best_weights=True))
        validation = (x[val_idx], y[val_idx])
    hist = model.fit(x[fit_idx], y[fit_idx], batch_size=batch_size, epochs=epochs, validation_data=validation,
                     callbacks=callbacks, verbose=0, shuffle=True)
    if callback.cancelled:
        raise Cancelled("Training cancelled; no model file was written.")
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return model, history, len(val_idx)
