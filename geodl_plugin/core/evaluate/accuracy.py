"""Accuracy of a model on samples, and of a map against reference points (with area-adjusted estimates)."""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

import numpy as np

from ..data.classes import CLASSES_TAG, ClassTable
from ..data.labels import LabelSet
from ..data.samples import SampleSet
from ..io.raster import iter_windows, raster_info, world_to_pixel
from ..models.model_file import ModelBundle
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .metrics import area_adjusted_estimates, classification_report, confusion_matrix
from .reports import AccuracyReport


def report_on_samples(
    bundle: ModelBundle, data: SampleSet, score: Callable[[ModelBundle, np.ndarray], np.ndarray], progress: Optional[Progress] = None
) -> AccuracyReport:
    """Score ``data`` with ``score`` (the family's sample predictor: the raster path's, so the figures describe
    the maps it makes) against their labels."""
    progress = ensure(progress)
    progress.update(30, f"predicting {len(data)} samples")
    predicted = score(bundle, data.x)
    report = classification_report(data.y, predicted, bundle.classes)
    report.model = str(bundle.path or "")
    progress.update(100, report.summary())
    return report


def remap_to_model(y: np.ndarray, sample_classes: ClassTable, model_classes: ClassTable, named: bool) -> tuple[np.ndarray, str]:
    """The samples' class ids rewritten as the model's ids for the same class NAME (samples cut from labels
    with another class set number their classes differently). Refuses when a class of the samples has no
    class of that name in the model. Samples without class names (an Earth Engine export without a sidecar)
    can only be taken by id; the note returned says so."""
    if not named:
        unknown = sorted(set(y.tolist()) - set(model_classes.ids))
        if unknown:
            raise GeoDLError(
                f"The samples carry no class names and their class ids {unknown} are not among the model's "
                f"({', '.join(f'{c.id} {c.name}' for c in model_classes)}). Give samples with a sidecar (.json) "
                "naming the classes, or samples labelled with the model's ids."
            )
        return y, (
            "The samples carry no class names; their ids were taken to mean the model's classes "
            f"({', '.join(f'{c.id} = {c.name}' for c in model_classes)})."
        )
    model_by_name = {c.name.strip().lower(): c.id for c in model_classes}
    present = sorted(set(y.tolist()))
    names = {c.id: c.name for c in sample_classes}
    missing = [names[i] for i in present if names[i].strip().lower() not in model_by_name]
    if missing:
        raise GeoDLError(
            f"The samples' class(es) {', '.join(repr(m) for m in missing)} are not classes of the model "
            f"({', '.join(model_classes.names)}): accuracy cannot be scored for classes the model never learned. "
            "Evaluate on samples labelled with the model's class names."
        )
    lookup = {i: model_by_name[names[i].strip().lower()] for i in present}
    return np.array([lookup[int(v)] for v in y], dtype=np.int64), ""


def map_class_table(path: str | os.PathLike) -> Optional[ClassTable]:
    """The class table a geodl class raster carries (written by prediction), or None."""
    import json

    import rasterio

    try:
        with rasterio.open(str(path)) as ds:
            text = ds.tags().get(CLASSES_TAG)
        return ClassTable.from_json(json.loads(text)) if text else None
    except (rasterio.errors.RasterioIOError, ValueError, KeyError, TypeError):
        return None


def evaluate_map(
    classified: str | os.PathLike, reference: LabelSet, progress: Optional[Progress] = None, classes: Any = None
) -> AccuracyReport:
    """Compare a class raster with reference points; add Olofsson et al. (2014) area-adjusted estimates
    (the map's classes are the strata)."""
    import rasterio

    progress = ensure(progress)
    info = raster_info(classified)
    classes = classes or reference.classes
    xy = reference.points_xy()
    rows, cols = world_to_pixel(info.transform, xy[:, 0], xy[:, 1])
    inside = (rows >= 0) & (rows < info.height) & (cols >= 0) & (cols < info.width)
    if not inside.any():
        raise GeoDLError("No reference point falls on the classified map. Check that they cover the same area.")
    counts = np.zeros(256, dtype=np.int64)
    with rasterio.open(str(classified)) as ds:
        mapped = np.array([v[0] for v in ds.sample(list(zip(xy[inside, 0], xy[inside, 1])))])
        windows = list(iter_windows(info.width, info.height, 1024))
        for n, (c, r, w, h) in enumerate(windows):
            progress.check()
            block = ds.read(1, window=rasterio.windows.Window(c, r, w, h))
            counts += np.bincount(block.ravel(), minlength=256)[:256]
            progress.update(80.0 * (n + 1) / len(windows))
    truth = reference.class_ids[inside]
    report = classification_report(truth, mapped, classes)
    map_vs_ref = confusion_matrix(mapped, truth, classes.ids)
    report.area_adjusted = area_adjusted_estimates(map_vs_ref, [int(counts[c]) for c in classes.ids], info.res[0] * info.res[1], classes)
    report.skipped_outside = int((~inside).sum())
    report.unit = "reference points"
    return report
