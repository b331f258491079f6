"""The accuracy reports every face shows: typed, so the dock, Processing, the worker's pipe and the model file's
manifest read the same fields, and JSON only at the edges (``to_dict`` / ``report_from_dict``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from ..runtime.typed_json import from_jsonable, to_jsonable


@dataclass
class ClassScores:
    precision: float
    recall: float
    f1: float
    iou: float
    support: int  # reference samples (or labelled pixels) of the class


@dataclass
class AreaEstimate:
    """Olofsson et al. (2014) for one class: its mapped area, the sample-based estimate with its 95% interval,
    and the user's and producer's accuracies (areas in the map's squared units)."""

    mapped_area: float
    estimated_area: float
    estimated_area_ci95: float
    users_accuracy: float
    producers_accuracy: float


@dataclass
class AreaAdjusted:
    overall_accuracy: float
    total_area: float
    per_class: dict[str, AreaEstimate]
    reference: str = "Olofsson et al. (2014), Remote Sensing of Environment 148: 42-57"


@dataclass
class _Report:
    """What every report carries besides its scores: where the figures come from."""

    model: str = ""  # the model file scored (evaluation), empty for a training's held-out report
    split: str = ""  # how the held-out samples were drawn (training reports)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(to_jsonable(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """The report from its JSON, ignoring keys this version does not know (a manifest written by a newer
        geodl still opens)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return from_jsonable(cls, {k: v for k, v in data.items() if k in known})


@dataclass
class AccuracyReport(_Report):
    """A classification scored against reference labels: confusion matrix (rows reference, columns
    predicted, in ``class_ids`` order), overall accuracy, kappa and per-class scores."""

    classes: list[str] = field(default_factory=list)
    class_ids: list[int] = field(default_factory=list)
    confusion_matrix: list[list[int]] = field(default_factory=list)
    overall_accuracy: float = 0.0
    kappa: float = 0.0
    macro_f1: float = 0.0
    mean_iou: float = 0.0
    per_class: dict[str, ClassScores] = field(default_factory=dict)
    n_samples: int = 0
    unit: str = "samples"  # what was counted: samples, or labelled pixels of held-out chips
    confusion_matrix_axes: str = "rows: reference, columns: predicted"
    mean_confidence: dict[str, Optional[float]] = field(default_factory=dict)  # per predicted class (series models)
    area_adjusted: Optional[AreaAdjusted] = None  # a map scored against reference points
    skipped_outside: int = 0  # reference points off the map
    on_samples: Optional[AccuracyReport] = None  # the model's own score on samples, beside its map's
    task: str = "classification"

    def summary(self) -> str:
        return f"overall accuracy {self.overall_accuracy:.3f}, kappa {self.kappa:.3f} on {self.n_samples} {self.unit}"


@dataclass
class RegressionReport(_Report):
    """A regression scored against observed values, in the target's units."""

    rmse: float = 0.0
    mae: float = 0.0
    r2: float = 0.0
    bias: float = 0.0  # mean of predicted − observed
    n: int = 0
    observed_mean: float = 0.0
    observed_std: float = 0.0
    target: str = ""
    observed: list[float] = field(default_factory=list)  # per sample, for the scatter plot (evaluation only)
    predicted: list[float] = field(default_factory=list)
    task: str = "regression"

    def summary(self) -> str:
        return f"R² {self.r2:.3f}, RMSE {self.rmse:.4g}, MAE {self.mae:.4g}, bias {self.bias:+.3g} on {self.n} samples"


Report = Union[AccuracyReport, RegressionReport]


def report_from_dict(data: Optional[dict[str, Any]]) -> Optional[Report]:
    """A report read back from JSON (a manifest's ``metrics``), by its ``task``; None for an empty one."""
    if not data:
        return None
    kind = RegressionReport if data.get("task") == "regression" or "rmse" in data else AccuracyReport
    return kind.from_dict(data)  # type: ignore[no-any-return]
