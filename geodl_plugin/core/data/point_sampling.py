"""Stratified random points inside labelled polygons."""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .labels import POINT, POLYGON, LabelSet

log = logging.getLogger("geodl")


def _accept_min_distance(candidates: np.ndarray, kept: list[tuple[float, float]], grid: dict, d: float) -> None:
    """Greedy Poisson-disc thinning with a hash grid of cell size d."""
    for x, y in candidates:
        if d > 0:
            gx, gy = int(np.floor(x / d)), int(np.floor(y / d))
            close = False
            for i in range(gx - 1, gx + 2):
                for j in range(gy - 1, gy + 2):
                    for px, py in grid.get((i, j), ()):
                        if (px - x) ** 2 + (py - y) ** 2 < d * d:
                            close = True
                            break
                    if close:
                        break
                if close:
                    break
            if close:
                continue
            grid.setdefault((gx, gy), []).append((x, y))
        kept.append((float(x), float(y)))


def sample_points_in_polygons(
    labels: LabelSet,
    per_class: int,
    min_distance: float = 0.0,
    seed: int = 0,
    progress: Optional[Progress] = None,
) -> LabelSet:
    """``per_class`` uniformly random points inside each class's polygons, at least ``min_distance`` apart
    (map units). A class whose polygons cannot hold that many gets fewer, with a warning naming it."""
    from osgeo import ogr

    progress = ensure(progress)
    if labels.kind != POLYGON:
        raise GeoDLError("Sampling points needs polygon labels; these are points already.")
    if per_class < 1:
        raise GeoDLError("The number of points per class must be at least 1.")
    rng = np.random.default_rng(seed)
    out_wkb: list[bytes] = []
    out_ids: list[int] = []
    warnings = list(labels.warnings)
    for n, cls in enumerate(labels.classes):
        progress.check()
        polys = [ogr.CreateGeometryFromWkb(w) for w, c in zip(labels.geometries_wkb, labels.class_ids) if c == cls.id]
        if not polys:
            warnings.append(f"Class '{cls.name}' has no polygon; it gets no points.")
            continue
        union = ogr.Geometry(ogr.wkbMultiPolygon)
        for p in polys:
            if ogr.GT_Flatten(p.GetGeometryType()) == ogr.wkbMultiPolygon:
                for i in range(p.GetGeometryCount()):
                    union.AddGeometry(p.GetGeometryRef(i))
            else:
                union.AddGeometry(p)
        union = union.UnionCascaded() if union.GetGeometryCount() > 1 else union
        minx, maxx, miny, maxy = union.GetEnvelope()
        kept: list[tuple[float, float]] = []
        grid: dict = {}
        attempts = 0
        while len(kept) < per_class and attempts < 50:
            progress.check()  # each attempt tests per_class × 4 candidates: a cancel takes effect within one
            attempts += 1
            xs = rng.uniform(minx, maxx, per_class * 4)
            ys = rng.uniform(miny, maxy, per_class * 4)
            inside = []
            for x, y in zip(xs, ys):
                pt = ogr.Geometry(ogr.wkbPoint)
                pt.AddPoint_2D(float(x), float(y))
                if union.Contains(pt):
                    inside.append((x, y))
            _accept_min_distance(np.array(inside).reshape(-1, 2), kept, grid, min_distance)
        kept = kept[:per_class]
        if len(kept) < per_class:
            warnings.append(
                f"Class '{cls.name}' got {len(kept)} of {per_class} points: its polygons are too small for that "
                f"many points {min_distance:g} apart. Draw larger polygons or lower the minimum distance."
            )
        for x, y in kept:
            pt = ogr.Geometry(ogr.wkbPoint)
            pt.AddPoint_2D(x, y)
            out_wkb.append(bytes(pt.ExportToWkb()))
            out_ids.append(cls.id)
        progress.update(100.0 * (n + 1) / len(labels.classes), f"{cls.name}: {len(kept)} points")
    for w in warnings:
        log.warning(w)
    return LabelSet(labels.classes, np.array(out_ids, dtype=np.int64), out_wkb, labels.crs_wkt, POINT, warnings)
