"""The accuracy reports are typed on every side of the worker's pipe and read back from a manifest's JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geodl_plugin.core.data.classes import ClassTable
from geodl_plugin.core.evaluate.metrics import area_adjusted_estimates, classification_report
from geodl_plugin.core.evaluate.regression_metrics import regression_report
from geodl_plugin.core.evaluate.reports import AccuracyReport, ClassScores, RegressionReport, report_from_dict
from geodl_plugin.core.runtime.typed_json import from_jsonable, to_jsonable
from geodl_plugin.core.train.trainer import TrainResult


def _reports() -> tuple[AccuracyReport, RegressionReport]:
    classes = ClassTable.from_names(["crop", "water"])
    accuracy = classification_report(np.array([1, 1, 2, 2]), np.array([1, 2, 2, 2]), classes)
    accuracy.area_adjusted = area_adjusted_estimates(np.array([[1, 0], [1, 2]]), [30, 70], 900.0, classes)
    accuracy.on_samples = classification_report(np.array([1, 2]), np.array([1, 2]), classes)
    return accuracy, regression_report(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 3.0]), target="roof_pct")


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_a_train_result_crosses_the_pipe_with_its_report_typed(kind):
    accuracy, regression = _reports()
    report = accuracy if kind == "classification" else regression
    result = TrainResult("m.geodl", report, {"loss": [1.0]}, 10, 2, 4, 1.5)
    back = from_jsonable(TrainResult, json.loads(json.dumps(to_jsonable(result))))
    assert back == result and type(back.metrics) is type(report)
    if isinstance(back.metrics, AccuracyReport):
        assert isinstance(back.metrics.per_class["crop"], ClassScores) and back.metrics.per_class["crop"].recall == 0.5
        assert back.metrics.area_adjusted.per_class["water"].mapped_area == 70 * 900.0
        assert back.metrics.on_samples.overall_accuracy == 1.0


def test_a_manifests_metrics_read_back_by_task_ignoring_unknown_keys():
    accuracy, regression = _reports()
    newer = {**accuracy.to_dict(), "a_field_of_a_newer_geodl": 1}
    assert report_from_dict(newer) == accuracy
    assert report_from_dict(regression.to_dict()) == regression
    assert report_from_dict({}) is None
    assert "held-out" not in accuracy.summary() and accuracy.summary().startswith("overall accuracy 0.750")
