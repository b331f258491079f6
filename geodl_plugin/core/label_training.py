"""Labels → samples → trained model → confusion-matrix plot, as one call: what the dock's Train button runs.

It runs in the worker process (``run_in_worker(train_from_labels, …)``), so while OGR reads the labels, GDAL cuts the
samples, TensorFlow trains and matplotlib draws, QGIS's own process only waits on a pipe: none of that work
can hold the GIL that QGIS's main thread needs to stay responsive.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .evaluate.reports import AccuracyReport, RegressionReport
from .runtime.progress import Progress, ensure
from .train.trainer import TrainParams, TrainResult


@dataclass
class TrainFromLabelsParams:
    """JSON-friendly (it crosses the worker's pipe): paths, names and plain values only."""

    rasters: list[str]
    labels: str  # a point or polygon layer file
    class_field: str
    samples: str  # where the extracted samples go (TFRecord)
    train: TrainParams  # ``samples`` is set to the samples extracted here
    classes: Optional[list[dict[str, Any]]] = None  # a ClassTable as JSON; None: from the labels' values
    patch_size: int = 1
    confusion_png: Optional[str] = None
    layer: Optional[str] = None
    nodata: Optional[float] = None
    series: bool = False  # the rasters are the dates of one series (a temporal family)
    dates: Optional[list[str]] = None  # their dates; None: from the file names

    def validate(self) -> None:
        """No output may be (or resolve to, or be a sidecar of) the imagery or the labels."""
        from .io.paths_guard import check_outputs_against_inputs

        check_outputs_against_inputs([*self.rasters, self.labels], [self.samples, self.train.output, self.confusion_png])


def train_from_labels(params: TrainFromLabelsParams, progress: Optional[Progress] = None) -> TrainResult:
    # Imported here: the dock's process imports this module for the parameters alone.
    from .data.classes import ClassTable
    from .data.labels import read_labels
    from .data.samples import extract_samples
    from .families import train_model
    from .io.raster import raster_info

    progress = ensure(progress)
    params.validate()
    classes = ClassTable.from_json(params.classes) if params.classes else None
    labels = read_labels(
        params.labels, params.class_field, layer=params.layer, target_crs_wkt=raster_info(params.rasters[0]).crs_wkt, classes=classes
    )
    progress.check()
    if params.series:
        from .data.series import open_series
        from .data.series_samples import extract_series_samples

        series = open_series(params.rasters, dates=params.dates, nodata=params.nodata)
        extract_series_samples(series, labels, params.samples, patch_size=params.patch_size, progress=progress.sub(0, 10))
    else:
        extract_samples(
            params.rasters, labels, params.samples, patch_size=params.patch_size, nodata=params.nodata, progress=progress.sub(0, 10)
        )
    train = dataclasses.replace(params.train, samples=[params.samples])
    result = train_model(train, progress.sub(10, 97))
    if isinstance(result.metrics, AccuracyReport) and params.confusion_png:
        from .evaluate.metrics import plot_confusion_matrix

        plot_confusion_matrix(result.metrics, params.confusion_png)
    progress.update(100)
    return result


@dataclass
class TrainFromTargetsParams:
    """Numeric targets → regression samples → a regression model (+ its predicted-vs-observed scatter plot).
    JSON-friendly like :class:`TrainFromLabelsParams`."""

    rasters: list[str]
    labels: str  # a point or polygon layer file with a numeric field
    target_field: str
    samples: str
    train: TrainParams  # a regression family; ``samples`` is set here
    scatter_png: Optional[str] = None
    layer: Optional[str] = None
    nodata: Optional[float] = None


def train_from_targets(params: TrainFromTargetsParams, progress: Optional[Progress] = None) -> TrainResult:
    """What the dock's Train button runs for a regression family: the scatter plot is drawn from the held-out
    samples (kept beside the samples, then scored through the model file like geodl:evaluate)."""
    from .data.labels import read_targets
    from .data.target_samples import extract_target_samples
    from .evaluate.regression_metrics import plot_predicted_vs_observed
    from .families import evaluate_model, train_model
    from .io.raster import raster_info

    progress = ensure(progress)
    targets = read_targets(params.labels, params.target_field, layer=params.layer, target_crs_wkt=raster_info(params.rasters[0]).crs_wkt)
    progress.check()
    extract_target_samples(params.rasters, targets, params.samples, nodata=params.nodata, progress=progress.sub(0, 10))
    held_out = params.samples + ".test.tfrecord"
    train = dataclasses.replace(params.train, samples=[params.samples], test_samples_output=params.train.test_samples_output or held_out)
    result = train_model(train, progress.sub(10, 95))
    if result.test_samples_path and params.scatter_png:
        report = evaluate_model(result.model_path, [result.test_samples_path])
        if isinstance(report, RegressionReport):
            plot_predicted_vs_observed(np.array(report.observed), np.array(report.predicted), params.scatter_png, targets.name)
    if train.test_samples_output == held_out:
        from pathlib import Path

        for p in (held_out, held_out + ".json"):
            Path(p).unlink(missing_ok=True)
        result = dataclasses.replace(result, test_samples_path=None)
    progress.update(100)
    return result
