"""Regression samples: pixel vectors with a number each (roof fraction, tree cover %, biomass), from points
with a numeric field or from every pixel of polygons carrying one (rasterised onto the raster's grid).

Written in the same Earth Engine table-export layout as class samples (one float feature per band, x/y),
with the target as the float property ``target``; the sidecar says ``"task": "regression"`` and names the
field. Class samples and regression samples never load through each other's reader by mistake.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import numpy as np

from ..io.raster import pixel_centre, valid_mask
from ..io.tfrecord import read_examples, write_examples
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .classes import ClassTable
from .flatten import PixelSelector
from .labels import TargetSet
from .samples import (
    COORDS,
    example_bands,
    example_xy,
    open_sample_files,
    read_stack_window,
    sidecar_path,
    source_meta,
    stack_info,
    stacked_band_names,
)

log = logging.getLogger("geodl")

TARGET = "target"
REGRESSION = "regression"
MIN_SAMPLES = 10


@dataclass
class TargetSampleSet:
    """Regression samples in memory: ``x`` (n, bands) raw pixel values, ``y`` (n,) float64 targets."""

    x: np.ndarray
    y: np.ndarray
    xy: Optional[np.ndarray]
    bands: list[str]
    target: str
    meta: dict = field(default_factory=dict)
    patch_size: int = 1

    def __len__(self) -> int:
        return len(self.y)

    @property
    def classes(self) -> ClassTable:
        """No classes: what the training skeleton's class bookkeeping sees for a regression."""
        return ClassTable([])

    def subset(self, index: np.ndarray) -> TargetSampleSet:
        return TargetSampleSet(
            self.x[index], self.y[index], None if self.xy is None else self.xy[index], self.bands, self.target, self.meta
        )


@dataclass
class TargetExtractReport:
    path: str
    count: int
    target: str
    minimum: float
    maximum: float
    skipped_outside: int
    skipped_nodata: int
    warnings: list[str]


def is_regression_samples(path: str | os.PathLike) -> bool:
    meta_path = sidecar_path(path)
    if not meta_path.exists():
        return False
    return json.loads(meta_path.read_text(encoding="utf-8")).get("task") == REGRESSION


def extract_target_samples(
    rasters: Sequence[str | os.PathLike],
    targets: TargetSet,
    output: str | os.PathLike,
    nodata: Optional[float] = None,
    band_names: Optional[Sequence[str]] = None,
    all_touched: bool = False,
    block: int = 512,
    progress: Optional[Progress] = None,
) -> TargetExtractReport:
    """The pixel vector under each point (or every pixel of each polygon) with its target value. Samples on
    nodata are left out; fewer than 10 samples, or one value only, is an error."""
    from ..io.atomic import check_writable
    from ..io.raster import iter_windows

    progress = ensure(progress)
    check_writable(output)
    infos = stack_info(rasters, band_names)
    names = stacked_band_names(infos, band_names)
    info = infos[0]
    nodata_value = nodata if nodata is not None else info.nodata
    selector = PixelSelector(targets, info, all_touched)
    if targets.kind == "point" and selector.points is not None and not len(selector.points[0]):
        raise GeoDLError(
            f"None of the {len(targets)} points falls inside the raster '{info.path}'. Check that labels and raster cover the same area."
        )
    records: list[dict] = []
    values: list[float] = []
    skipped_nodata = 0
    windows = list(iter_windows(info.width, info.height, block))
    for n, (col, row, width, height) in enumerate(windows):
        progress.check()
        rr, cc, index = selector.select(col, row, width, height)
        if len(rr):
            data = read_stack_window(infos, col, row, width, height)
            ok = valid_mask(data, nodata_value)[rr, cc]
            skipped_nodata += int((~ok).sum())
            rr, cc, index = rr[ok], cc[ok], index[ok]
            x, y = pixel_centre(info.transform, (rr + row).astype(np.float64), (cc + col).astype(np.float64))
            pixels = data[:, rr, cc].astype(np.float32)
            for i in range(len(rr)):
                value = float(targets.values[index[i]])
                record: dict = {name: pixels[k, i : i + 1] for k, name in enumerate(names)}
                record[TARGET] = value
                record[COORDS[0]], record[COORDS[1]] = float(x[i]), float(y[i])
                records.append(record)
                values.append(value)
        progress.update(90.0 * (n + 1) / len(windows), f"{len(records)} samples read")
    warnings = list(targets.warnings)
    if selector.outside:
        warnings.append(f"{selector.outside} point(s) outside the raster were skipped.")
    if skipped_nodata:
        warnings.append(f"{skipped_nodata} sample(s) on nodata pixels were left out.")
    if len(records) < MIN_SAMPLES:
        raise GeoDLError(
            f"Only {len(records)} sample(s) with a '{targets.name}' value fall on valid pixels; a "
            f"regression needs at least {MIN_SAMPLES}. Add points or polygons."
        )
    if len(set(values)) < 2:
        raise GeoDLError(f"Every sample has the same '{targets.name}' ({values[0]}); nothing to learn. Label places with different values.")
    for w in warnings:
        log.warning(w)
    count = write_examples(output, records)
    meta = {
        "task": REGRESSION,
        "target": targets.name,
        "bands": names,
        "label": TARGET,
        "patch_size": 1,
        **source_meta(info, nodata_value, rasters),
        "count": count,
        "target_range": [min(values), max(values)],
    }
    sidecar_path(output).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    progress.update(100.0, f"{count} regression samples written to {output}")
    return TargetExtractReport(str(output), count, targets.name, min(values), max(values), selector.outside, skipped_nodata, warnings)


def load_target_samples(
    paths: str | os.PathLike | Iterable[str | os.PathLike], bands: Optional[Sequence[str]] = None, label: Optional[str] = None
) -> TargetSampleSet:
    """Read regression samples (ours, or an Earth Engine table export with a numeric property ``label``)."""
    files, meta, band_list = open_sample_files(paths, bands)
    if meta and meta.get("task") != REGRESSION:
        raise GeoDLError(
            f"The samples {[str(f) for f in files]} hold classes, not numeric targets. Extract "
            "regression samples from a numeric field (geodl:extractsamples with a target field)."
        )
    label = label or str(meta.get("label", TARGET))
    columns: dict[str, list[float]] = {}
    targets: list[float] = []
    coords: list[tuple[float, float]] = []
    for n, example in enumerate(read_examples(files)):
        if label not in example:
            raise GeoDLError(f"Sample {n} has no '{label}' property; found {sorted(example)}.")
        band_list = example_bands(example, n, band_list, label)
        for b in band_list:
            value = np.asarray(example[b], dtype=np.float32).ravel()
            if len(value) != 1:
                raise GeoDLError(f"Band '{b}' has {len(value)} values per sample; regression samples are single pixels (patch size 1).")
            columns.setdefault(b, []).append(float(value[0]))
        targets.append(float(np.asarray(example[label]).ravel()[0]))
        if (centre := example_xy(example)) is not None:
            coords.append(centre)
    if not targets:
        raise GeoDLError(f"The sample file(s) {[str(f) for f in files]} hold no sample.")
    x = np.stack([np.array(columns[b], np.float32) for b in band_list], axis=1)
    xy = np.array(coords) if len(coords) == len(targets) else None
    return TargetSampleSet(x, np.array(targets, np.float64), xy, band_list, str(meta.get("target", label)), meta)


def write_target_samples(path: str | os.PathLike, samples: TargetSampleSet) -> str:
    """Regression samples back to a TFRecord with their sidecar (the held-out split, for geodl:evaluate)."""

    def records():
        for i in range(len(samples)):
            rec: dict = {b: samples.x[i, k : k + 1] for k, b in enumerate(samples.bands)}
            rec[TARGET] = float(samples.y[i])
            if samples.xy is not None:
                rec[COORDS[0]], rec[COORDS[1]] = float(samples.xy[i, 0]), float(samples.xy[i, 1])
            yield rec

    count = write_examples(path, records())
    meta = {**samples.meta, "task": REGRESSION, "target": samples.target, "bands": samples.bands, "label": TARGET, "count": count}
    sidecar_path(path).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return str(path)
