"""The model-family table: what each family is and does, and the entry points every face calls.

One row per family (in the spirit of Deepness' model definitions and torchgeo's task classes): its label,
the packages it needs, its options dataclass, its task, the kind of input it reads, its trainer (the part of
training the one skeleton in ``train/trainer.py`` leaves to it), its raster predictor and its sample scorer.
Nothing else in geodl tells families apart: the dock, Processing, evaluation and the worker ask this table.
Adding a family is a new row here, a member of ``ModelFamily`` and its options in ``models/family.py``.

This module sits at the top of ``core/`` (it wires train, predict and evaluate together), so nothing below it
imports it; lower stages receive what they need as arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Callable, Optional

import numpy as np

from .data.samples import SampleSet, load_samples
from .evaluate.accuracy import remap_to_model, report_on_samples
from .evaluate.reports import AccuracyReport, RegressionReport
from .models.family import FAMILY_OPTIONS, ModelFamily, TilingParams
from .models.model_file import ModelBundle, load_model_file, manifest_architecture, read_manifest
from .predict.raster_prediction import PredictContext, PredictParams, PredictResult, predict_pixels, predict_samples, prepare_prediction
from .predict.regression_prediction import predict_regression, predict_sample_values
from .predict.temporal_prediction import predict_series_samples, predict_temporal
from .predict.tiled_prediction import predict_patch_centres, predict_tiled
from .runtime.errors import GeoDLError
from .runtime.progress import Progress, ensure
from .train.pixel_training import DNNTrainer, ForestTrainer
from .train.regression_training import DNNRegressionTrainer, ForestRegressionTrainer
from .train.temporal_training import TemporalTrainer
from .train.trainer import FamilyTrainer, TrainParams, TrainResult, run_training
from .train.unet_training import UNetTrainer


@dataclass(frozen=True)
class FamilySpec:
    family: ModelFamily
    label: str  # as the dock and Processing show it
    requires: tuple[str, ...]  # dependency groups (runtime/dependencies.py)
    params_type: type  # the options dataclass (models/family.py)
    task: str  # STAC MLM task: classification | semantic-segmentation | regression
    input_kind: str  # what one sample is: "pixels" (band vector) | "patches" (k×k×bands)
    trainer: Callable[[], FamilyTrainer]
    predict: Callable[[PredictContext], PredictResult]
    score_samples: Callable[[ModelBundle, np.ndarray], np.ndarray]  # class ids (values) for samples, as the map has them
    tiling: Optional[type] = None  # the options of its raster walk, if it has any beyond block size

    @property
    def option_fields(self) -> tuple[Any, ...]:
        return fields(self.params_type)


FAMILIES: dict[ModelFamily, FamilySpec] = {
    spec.family: spec
    for spec in (
        FamilySpec(
            ModelFamily.PIXEL_DNN,
            "Pixel DNN (Keras)",
            ("deep_learning",),
            FAMILY_OPTIONS[ModelFamily.PIXEL_DNN],
            "classification",
            "pixels",
            DNNTrainer,
            predict_pixels,
            predict_samples,
        ),
        FamilySpec(
            ModelFamily.RANDOM_FOREST,
            "Random forest (scikit-learn)",
            ("classic_ml",),
            FAMILY_OPTIONS[ModelFamily.RANDOM_FOREST],
            "classification",
            "pixels",
            ForestTrainer,
            predict_pixels,
            predict_samples,
        ),
        FamilySpec(
            ModelFamily.UNET,
            "U-Net (Keras, patches)",
            ("deep_learning",),
            FAMILY_OPTIONS[ModelFamily.UNET],
            "semantic-segmentation",
            "patches",
            UNetTrainer,
            predict_tiled,
            predict_patch_centres,
            tiling=TilingParams,
        ),
        FamilySpec(
            ModelFamily.FOREST_REGRESSION,
            "Random-forest regression (a number; with spread)",
            ("classic_ml",),
            FAMILY_OPTIONS[ModelFamily.FOREST_REGRESSION],
            "regression",
            "pixels",
            ForestRegressionTrainer,
            predict_regression,
            predict_sample_values,
        ),
        FamilySpec(
            ModelFamily.DNN_REGRESSION,
            "Pixel DNN regression (a number; Keras)",
            ("deep_learning",),
            FAMILY_OPTIONS[ModelFamily.DNN_REGRESSION],
            "regression",
            "pixels",
            DNNRegressionTrainer,
            predict_regression,
            predict_sample_values,
        ),
        FamilySpec(
            ModelFamily.TEMPORAL,
            "Time series (bidirectional ConvGRU/ConvLSTM)",
            ("deep_learning",),
            FAMILY_OPTIONS[ModelFamily.TEMPORAL],
            "semantic-segmentation",
            "series",
            TemporalTrainer,
            predict_temporal,
            predict_series_samples,
            tiling=TilingParams,
        ),
    )
}
assert set(FAMILIES) == set(ModelFamily) == set(FAMILY_OPTIONS), "every family needs a row and its options"


def family_spec(family: ModelFamily | str) -> FamilySpec:
    return FAMILIES[ModelFamily.parse(family)]


def family_of_model(model: ModelBundle | str | os.PathLike) -> FamilySpec:
    """The row of a loaded model, or of a model file (only its manifest is read)."""
    manifest = model.manifest if isinstance(model, ModelBundle) else read_manifest(model)
    architecture = manifest_architecture(manifest)
    try:
        return FAMILIES[ModelFamily(architecture)]
    except (KeyError, ValueError):
        raise GeoDLError(f"The model's family '{architecture}' is unknown to this geodl; update the plugin or retrain the model.") from None


def train_model(params: TrainParams, progress: Optional[Progress] = None) -> TrainResult:
    """Train any family through the one skeleton and write the model file."""
    return run_training(params, family_spec(params.family).trainer(), progress)


def predict_raster(params: PredictParams, progress: Optional[Progress] = None, bundle: Optional[ModelBundle] = None) -> PredictResult:
    """Classify a raster (or stack) with a model file: the shared checks, then the family's predictor."""
    ctx = prepare_prediction(params, progress, bundle)
    return family_of_model(ctx.bundle).predict(ctx)


def evaluate_model(model: str, samples: list[str], progress: Optional[Progress] = None) -> AccuracyReport | RegressionReport:
    """Predict sample files with the model (the raster path's predictor) and score them against their labels."""
    progress = ensure(progress)
    bundle = load_model_file(model)
    spec = family_of_model(bundle)
    if spec.task == "regression":
        return _evaluate_regression(bundle, spec, samples, str(model))
    note = None
    if spec.input_kind == "series":
        data = series_sample_set(list(samples), bundle)
    else:
        data = load_samples(list(samples), bands=bundle.bands)
        # Classes are matched by NAME: samples cut from labels with another class set number them differently.
        data.y, note = remap_to_model(data.y, data.classes, bundle.classes, bool(data.meta.get("classes")))
    if spec.input_kind == "pixels" and data.patch_size != bundle.patch_size:
        raise GeoDLError(
            f"The samples are {data.patch_size}×{data.patch_size} but the model expects "
            f"{bundle.patch_size}×{bundle.patch_size}; extract them as the training samples were."
        )
    report = report_on_samples(bundle, data, spec.score_samples, progress)
    report.model = str(model)
    if note:
        report.warnings.append(note)
    return report


def series_sample_set(paths: list[str], bundle: ModelBundle) -> SampleSet:
    """Series samples as a SampleSet of network channels (missing observations stay NaN: a cloudy date is data
    for a series model) labelled by their centre pixel."""
    from .data.series_samples import load_series_samples

    chips = load_series_samples(paths, classes=bundle.classes)
    k = chips.patch_size
    centre = chips.mask[:, k // 2, k // 2].astype(np.int64)
    keep = centre != 255
    if not keep.any():
        raise GeoDLError("No sample has a labelled centre pixel to score.")
    return SampleSet(chips.x[keep], centre[keep], None if chips.xy is None else chips.xy[keep], chips.bands, chips.classes, k, chips.meta)


def _evaluate_regression(bundle: ModelBundle, spec: FamilySpec, samples: list[str], model: str) -> RegressionReport:
    from .data.target_samples import load_target_samples
    from .evaluate.regression_metrics import regression_report

    data = load_target_samples(list(samples), bands=bundle.bands)
    predicted = spec.score_samples(bundle, data.x)
    report = regression_report(data.y, predicted, target=data.target)
    report.model = model
    report.observed = np.asarray(data.y, dtype=float).tolist()
    report.predicted = np.asarray(predicted, dtype=float).tolist()
    return report


def sample_patch_size(family: ModelFamily | str, requested: int) -> int:
    """The patch size to extract samples at: 1 for pixel families, the requested odd size for patch (and
    series) ones."""
    return requested | 1 if family_spec(family).input_kind in ("patches", "series") else 1
