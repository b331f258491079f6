"""The regression families' part of training (random-forest regressor, pixel DNN regressor), for the one
skeleton in ``trainer.py``.

Samples carry a number instead of a class (``data/target_samples.py``). The split keeps one stratum, so a
blocked split moves whole spatial blocks; the held-out side is scored with RMSE, MAE, R² and bias. For the
DNN a validation part of the training side drives early stopping (the best epoch's weights are kept).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.target_samples import MIN_SAMPLES, TargetSampleSet, load_target_samples, write_target_samples
from ..evaluate.regression_metrics import regression_report
from ..evaluate.reports import RegressionReport
from ..models.family import DNNRegressionParams, ForestRegressionParams
from ..models.regression import build_dnn_regressor, fit_forest_regressor, predict_values
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress
from .trainer import FamilyTrainer, Fitted, TrainParams, fit_keras, validation_split


def score_regression(model: Any, test: TargetSampleSet) -> RegressionReport:
    values, _ = predict_values(model, test.x)
    return regression_report(test.y, values, target=test.target)


class RegressionTrainer(FamilyTrainer):
    task = "regression"

    def load(self, params: TrainParams, progress: Progress) -> TargetSampleSet:
        return load_target_samples(params.samples, bands=params.bands)

    def split_labels(self, data: TargetSampleSet) -> np.ndarray:
        return np.zeros(len(data), np.int64)  # one stratum: a blocked split keeps whole blocks together

    def check_samples(self, data: TargetSampleSet, labels: np.ndarray, warnings: list[str]) -> None:
        if len(data) < MIN_SAMPLES:
            raise GeoDLError(f"Only {len(data)} regression samples; label at least {MIN_SAMPLES} places.")
        if np.unique(data.y).size < 2:
            raise GeoDLError(f"Every sample has the same '{data.target}'; label places with different values.")

    @staticmethod
    def statistics(train: TargetSampleSet) -> tuple[np.ndarray, np.ndarray]:
        x = train.x.astype(np.float64)
        std = x.std(axis=0)
        return x.mean(axis=0), np.where(std > 0, std, 1.0)

    @staticmethod
    def details(train: TargetSampleSet) -> dict[str, Any]:
        return {"target": train.target, "target_range": [float(train.y.min()), float(train.y.max())]}

    def score(self, model: Any, test: TargetSampleSet) -> RegressionReport:
        return score_regression(model, test)

    def write_test(self, path: str, test: TargetSampleSet) -> str:
        return write_target_samples(path, test)


class ForestRegressionTrainer(RegressionTrainer):
    def fit(self, train: TargetSampleSet, params: TrainParams, progress: Progress, warnings: list[str]) -> Fitted:
        options: ForestRegressionParams = params.options
        mean, std = self.statistics(train)
        progress.update(10, f"fitting a random-forest regressor of {options.n_trees} trees on {len(train)} samples")
        forest = fit_forest_regressor(
            train.x,
            train.y,
            n_trees=options.n_trees,
            max_depth=options.max_depth,
            min_samples_leaf=options.min_samples_leaf,
            seed=params.seed,
        )
        return Fitted(forest, mean, std, n_fit=len(train), details=self.details(train))


class DNNRegressionTrainer(RegressionTrainer):
    def fit(self, train: TargetSampleSet, params: TrainParams, progress: Progress, warnings: list[str]) -> Fitted:
        """Mean squared error in target units; RMSE and MAE logged per epoch."""
        import keras

        options: DNNRegressionParams = params.options
        keras.utils.set_random_seed(params.seed)
        fit_idx, val_idx = validation_split(self.split_labels(train), params, minimum=MIN_SAMPLES)
        x, y = train.x.astype(np.float32), train.y.astype(np.float32)
        mean, std = self.statistics(train.subset(fit_idx))
        model = build_dnn_regressor(
            x.shape[1], mean, std**2, float(y[fit_idx].mean()), float(y[fit_idx].std()) or 1.0, options.hidden_units, options.dropout
        )
        model.compile(
            optimizer=keras.optimizers.Adam(params.learning_rate),
            loss="mse",
            metrics=[keras.metrics.RootMeanSquaredError(name="rmse"), keras.metrics.MeanAbsoluteError(name="mae")],
        )
        validation = (x[val_idx], y[val_idx]) if len(val_idx) else None
        history = fit_keras(model, (x[fit_idx], y[fit_idx]), validation, params, progress)
        return Fitted(model, mean, std, history, n_fit=len(fit_idx), n_validation=len(val_idx), details=self.details(train))
