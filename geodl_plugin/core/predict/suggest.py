"""Where the next labels help most: candidate points where the model is least sure, spread out.

Uncertainty sampling (as in AL4EO or R's ``sits``), on the map a prediction already wrote: the entropy or the
margin raster (``PredictParams.entropy_output`` / ``margin_output``) and the class raster. Rules:

- **least sure first**: highest normalised entropy, or lowest margin (best − second-best probability);
- **spread out**: no two suggestions closer than ``min_distance`` (map units; by default half the spacing of
  ``count`` points on a square grid over the valid area), and none that close to an existing label;
- **a share per predicted class**: ``class_share`` of the points are divided equally among the predicted
  classes (each takes its own most uncertain pixels), so a class the model rarely predicts still gets asked
  about; the rest go to the most uncertain pixels anywhere;
- **inside the region, never on nodata**: pixels outside ``region_wkt`` or nodata in either raster are never
  candidates.

Ties are broken by a seeded jitter far below any real difference, so the result is reproducible and not
biased toward the raster's first rows. The result is ranked by uncertainty (rank 1 = least sure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ..data.classes import NODATA_CLASS
from ..io.atomic import atomic_path, check_writable
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure

ENTROPY, MARGIN = "entropy", "margin"
MEASURES = (ENTROPY, MARGIN)
MAX_READ_PIXELS = 16_000_000  # larger rasters are read from a coarser overview/decimated read
SUGGESTION_FIELDS = ("rank", "uncertainty", "predicted_id", "predicted", "status")
TODO = "to label"


@dataclass
class SuggestParams:
    classes_raster: str  # the class map (uint8, nodata 255)
    uncertainty_raster: str  # the entropy or margin raster of the same prediction
    measure: str = ENTROPY  # which one ``uncertainty_raster`` holds
    count: int = 20
    min_distance: float = 0.0  # map units; 0 = automatic (half the grid spacing of ``count`` points)
    class_share: float = 0.5  # share of the points divided equally among predicted classes
    region_wkt: Optional[str] = None  # polygon in the rasters' CRS; None = the whole raster
    existing_xy: list[tuple[float, float]] = field(default_factory=list)  # labels already made (rasters' CRS)
    output: Optional[str] = None  # GeoPackage of the suggestions (layer "to_label")
    seed: int = 0

    def validate(self) -> None:
        if self.measure not in MEASURES:
            raise GeoDLError(f"Unknown uncertainty measure '{self.measure}'; use one of {', '.join(MEASURES)}.")
        if not 1 <= int(self.count) <= 10_000:
            raise GeoDLError("Ask for between 1 and 10,000 suggested points.")
        if self.min_distance < 0:
            raise GeoDLError("The minimum distance cannot be negative.")
        if not 0.0 <= self.class_share <= 1.0:
            raise GeoDLError("The per-class share must lie between 0 and 1.")
        if not self.classes_raster or not self.uncertainty_raster:
            raise GeoDLError(
                "Give the class raster and the entropy or margin raster of one prediction (geodl:predict with the uncertainty outputs)."
            )
        if self.output:
            check_writable(self.output)


@dataclass
class Suggestion:
    x: float
    y: float
    row: int
    col: int
    uncertainty: float  # entropy (0..1) or 1 − margin: higher = less sure
    predicted_id: int
    rank: int


@dataclass
class SuggestResult:
    suggestions: list[Suggestion]
    min_distance: float
    candidates: int  # valid pixels considered
    output: Optional[str] = None
    warnings: list[str] = field(default_factory=list)


def uncertainty_score(values: np.ndarray, measure: str) -> np.ndarray:
    """Higher = less sure, for either measure (entropy as is; margin as 1 − margin)."""
    return values if measure == ENTROPY else 1.0 - values


def select_points(
    score: np.ndarray,
    predicted: np.ndarray,
    valid: np.ndarray,
    count: int,
    min_distance_px: float,
    class_share: float = 0.5,
    existing_rc: Optional[np.ndarray] = None,
    seed: int = 0,
) -> np.ndarray:
    """Row/column pairs (k, 2), k ≤ ``count``, of the chosen pixels in rank order (least sure first).

    ``score`` (h, w): higher = less sure; ``predicted`` (h, w) class ids; ``valid`` (h, w) candidates. Greedy:
    each class's quota first (its most uncertain pixels), then the rest by global score, every pick at least
    ``min_distance_px`` from all picks and from ``existing_rc``."""
    rng = np.random.default_rng(seed)
    flat = np.flatnonzero(valid.ravel())
    if not len(flat) or count < 1:
        return np.zeros((0, 2), np.int64)
    width = score.shape[1]
    jitter = rng.uniform(0, 1e-6, len(flat))
    s = score.ravel()[flat].astype(np.float64) + jitter
    classes = predicted.ravel()[flat]
    taken: list[int] = []  # indices into flat
    taken_rc = np.zeros((0, 2), np.float64)
    blocked = np.asarray(existing_rc, np.float64).reshape(-1, 2) if existing_rc is not None else np.zeros((0, 2))
    d2 = float(min_distance_px) ** 2

    def take(order: np.ndarray, n: int) -> None:
        nonlocal taken_rc
        got = 0
        for i in order:
            if got >= n:
                return
            rc = np.array([flat[i] // width, flat[i] % width], np.float64)
            if d2 > 0:
                others = np.concatenate([taken_rc, blocked]) if len(blocked) else taken_rc
                if len(others) and (((others - rc) ** 2).sum(axis=1) < d2).any():
                    continue
            elif i in taken:
                continue
            taken.append(int(i))
            taken_rc = np.vstack([taken_rc, rc])
            got += 1

    present = np.unique(classes)
    quota = int(count * class_share) // max(len(present), 1)
    # Only the most uncertain few thousand pixels of each list are looked at: enough to find ``count`` spread
    # points, and the greedy pass stays fast on large rasters.
    cap = max(200 * count, 20_000)
    if quota:
        for c in present:
            members = np.flatnonzero(classes == c)
            top = members[np.argsort(-s[members])[:cap]]
            take(top, quota)
    remaining = count - len(taken)
    if remaining > 0:
        order = np.argsort(-s)[: cap + len(taken)]
        chosen = set(taken)
        take(np.array([i for i in order if i not in chosen], np.int64), remaining)
    picked = np.array(taken, np.int64)
    picked = picked[np.argsort(-s[picked], kind="stable")]
    return np.stack([flat[picked] // width, flat[picked] % width], axis=1)


def _read(path: str, out_shape: Optional[tuple[int, int]] = None) -> tuple[np.ndarray, Any, Any, Optional[float]]:
    import rasterio
    from rasterio.enums import Resampling

    try:
        with rasterio.open(path) as ds:
            if out_shape is None and ds.width * ds.height > MAX_READ_PIXELS:
                f = math.sqrt(ds.width * ds.height / MAX_READ_PIXELS)
                out_shape = (max(1, int(ds.height / f)), max(1, int(ds.width / f)))
            data = ds.read(1, out_shape=out_shape, resampling=Resampling.nearest) if out_shape else ds.read(1)
            transform = ds.transform * ds.transform.scale(ds.width / data.shape[1], ds.height / data.shape[0])
            return data, transform, ds.crs, ds.nodata
    except rasterio.errors.RasterioIOError as exc:
        raise GeoDLError(f"Cannot open '{path}' as a raster ({exc}).") from exc


def _region_mask(region_wkt: str, shape: tuple[int, int], transform: Any) -> np.ndarray:
    import json

    from osgeo import ogr
    from rasterio.features import geometry_mask

    geom = ogr.CreateGeometryFromWkt(region_wkt)
    if geom is None:
        raise GeoDLError("The region is not a valid polygon.")
    return ~geometry_mask([json.loads(geom.ExportToJson())], shape, transform, all_touched=False)


def suggest_points(
    params: SuggestParams, progress: Optional[Progress] = None, class_names: Optional[dict[int, str]] = None
) -> SuggestResult:
    """Read the two rasters, choose the points, and (with ``output``) write them as a GeoPackage layer."""
    progress = ensure(progress)
    params.validate()
    uncertainty, transform, crs, u_nodata = _read(params.uncertainty_raster)
    shape = (int(uncertainty.shape[0]), int(uncertainty.shape[1]))
    classes, c_transform, _, _ = _read(params.classes_raster, shape)
    if not np.allclose(tuple(transform)[:6], tuple(c_transform)[:6], rtol=0, atol=1e-6 * abs(transform.a) + 1e-9):
        raise GeoDLError("The class raster and the uncertainty raster are not on the same grid; give the two outputs of one prediction.")
    progress.update(20, "choosing points")
    valid = (classes != NODATA_CLASS) & np.isfinite(uncertainty) & (uncertainty >= 0)
    if u_nodata is not None:
        valid &= uncertainty != u_nodata
    if params.region_wkt:
        valid &= _region_mask(params.region_wkt, shape, transform)
    n_valid = int(valid.sum())
    warnings: list[str] = []
    if n_valid == 0:
        raise GeoDLError("No classified pixel lies inside the region: classify the region first, or draw the region over the map.")
    pixel = abs(transform.a)
    min_distance = params.min_distance or 0.5 * pixel * math.sqrt(n_valid / params.count)
    existing = None
    if params.existing_xy:
        inv = ~transform
        existing = np.array([inv * (x, y) for x, y in params.existing_xy], np.float64)[:, ::-1]  # (row, col)
    progress.check()
    score = uncertainty_score(uncertainty.astype(np.float64), params.measure)
    rc = select_points(score, classes, valid, int(params.count), min_distance / pixel, params.class_share, existing, params.seed)
    if len(rc) < params.count:
        warnings.append(
            f"Only {len(rc)} of {params.count} points fit at least {min_distance:g} map units apart; lower the minimum distance for more."
        )
    suggestions = []
    for rank, (r, c) in enumerate(rc, start=1):
        x, y = transform * (c + 0.5, r + 0.5)
        suggestions.append(Suggestion(float(x), float(y), int(r), int(c), float(score[r, c]), int(classes[r, c]), rank))
    result = SuggestResult(suggestions, float(min_distance), n_valid, None, warnings)
    if params.output:
        progress.check()
        result.output = write_suggestions(params.output, suggestions, crs.to_wkt() if crs else "", class_names or {})
    progress.update(100, f"{len(suggestions)} points suggested")
    return result


def write_suggestions(path: str, suggestions: Sequence[Suggestion], crs_wkt: str, class_names: dict[int, str]) -> str:
    """A GeoPackage point layer ``to_label`` with rank, uncertainty, predicted class and a status field."""
    from osgeo import ogr, osr

    ogr.UseExceptions()
    with atomic_path(path) as tmp:
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
        srs = osr.SpatialReference()
        if crs_wkt:
            srs.ImportFromWkt(crs_wkt)
            srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        layer = ds.CreateLayer("to_label", srs if crs_wkt else None, ogr.wkbPoint)
        for name, kind in (
            ("rank", ogr.OFTInteger),
            ("uncertainty", ogr.OFTReal),
            ("predicted_id", ogr.OFTInteger),
            ("predicted", ogr.OFTString),
            ("status", ogr.OFTString),
        ):
            layer.CreateField(ogr.FieldDefn(name, kind))
        layer.StartTransaction()
        for s in suggestions:
            f = ogr.Feature(layer.GetLayerDefn())
            g = ogr.Geometry(ogr.wkbPoint)
            g.AddPoint_2D(s.x, s.y)
            f.SetGeometry(g)
            f.SetField("rank", s.rank)
            f.SetField("uncertainty", s.uncertainty)
            f.SetField("predicted_id", s.predicted_id)
            f.SetField("predicted", class_names.get(s.predicted_id, str(s.predicted_id)))
            f.SetField("status", TODO)
            layer.CreateFeature(f)
        layer.CommitTransaction()
        ds = None  # noqa: F841 - closes the file before the rename
    return str(path)
