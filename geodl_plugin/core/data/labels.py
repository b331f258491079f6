"""Labelled points or polygons from a vector file, reprojected to the raster's CRS, with their class table.

Read with OGR (part of every QGIS install). The class field may hold names (text) or ids (integers).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..runtime.errors import GeoDLError
from .classes import ClassTable

log = logging.getLogger("geodl")

POINT, POLYGON = "point", "polygon"


@dataclass
class LabelSet:
    """Geometries (WKB, in ``crs_wkt``) with one class id each."""

    classes: ClassTable
    class_ids: np.ndarray
    geometries_wkb: list[bytes]
    crs_wkt: str
    kind: str  # POINT or POLYGON
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.geometries_wkb)

    def points_xy(self) -> np.ndarray:
        return _points_xy(self.geometries_wkb, self.kind)

    def counts(self) -> dict[str, int]:
        return {c.name: int(np.sum(self.class_ids == c.id)) for c in self.classes}


@dataclass
class TargetSet:
    """Geometries (WKB, in ``crs_wkt``) with one number each: a regression target such as roof fraction,
    tree cover % or biomass, read from a numeric field."""

    name: str  # the field the values came from
    values: np.ndarray  # float64
    geometries_wkb: list[bytes]
    crs_wkt: str
    kind: str  # POINT or POLYGON
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.geometries_wkb)

    def points_xy(self) -> np.ndarray:
        return _points_xy(self.geometries_wkb, self.kind)


def _points_xy(geometries_wkb: list[bytes], kind: str) -> np.ndarray:
    from osgeo import ogr

    if kind != POINT:
        raise GeoDLError("These labels are polygons; sample points inside them first (geodl:samplepoints).")
    xy = np.empty((len(geometries_wkb), 2), dtype=np.float64)
    for i, wkb in enumerate(geometries_wkb):
        g = ogr.CreateGeometryFromWkb(wkb)
        xy[i] = (g.GetX(), g.GetY())
    return xy


def _srs(wkt: str):
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


@dataclass
class _Features:
    values: list
    geometries_wkb: list[bytes]
    crs_wkt: str
    kind: str
    numeric: bool
    skipped: int


def _transform_to(src_srs: Any, target_crs_wkt: Optional[str]) -> tuple[Any, str]:
    """(the transformation from the layer's CRS to the target's, or None; the CRS the geometries end in)."""
    from osgeo import osr

    crs_wkt = src_srs.ExportToWkt() if src_srs is not None else (target_crs_wkt or "")
    if not target_crs_wkt or src_srs is None:
        return None, crs_wkt
    src = src_srs.Clone()
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst = _srs(target_crs_wkt)
    if src.IsSame(dst):
        return None, target_crs_wkt
    log.info("Labels reprojected from %s to the raster's CRS.", src.GetName())
    return osr.CoordinateTransformation(src, dst), target_crs_wkt


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _nothing_usable(path: str | os.PathLike, field: str, skipped: int, no_geometry: int, no_class: int) -> GeoDLError:
    """Why no feature could be used, by its real cause (NULL geometries are not an empty field)."""
    if skipped and no_geometry == skipped:
        return GeoDLError(
            f"None of the {skipped} feature(s) in the labels '{path}' has a geometry (all are NULL or "
            "empty). Draw or import the label geometries, then try again."
        )
    if skipped:
        return GeoDLError(
            f"No feature in the labels '{path}' has both a geometry and a class: {no_geometry} of "
            f"{skipped} have no geometry, {no_class} have an empty '{field}'. Fill in the field or "
            "choose the right one."
        )
    return GeoDLError(f"The labels '{path}' hold no feature. Add labelled points or polygons first.")


def _read_features(path: str | os.PathLike, value_field: str, layer: Optional[str], target_crs_wkt: Optional[str]) -> _Features:
    """Each point or polygon with its ``value_field`` value (features without either are skipped and counted),
    reprojected to ``target_crs_wkt``; multipoints are split into points."""
    from osgeo import ogr

    ogr.UseExceptions()
    try:
        ds = ogr.Open(str(path))
    except RuntimeError as exc:
        raise GeoDLError(f"Cannot open the labels '{path}' ({exc}).") from exc
    if ds is None:
        raise GeoDLError(f"Cannot open the labels '{path}' as a vector file.")
    lyr = ds.GetLayerByName(layer) if layer else ds.GetLayer(0)
    if lyr is None:
        raise GeoDLError(f"The labels file '{path}' has no layer '{layer}'.")
    defn = lyr.GetLayerDefn()
    fields = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    if value_field not in fields:
        raise GeoDLError(f"The labels '{path}' have no field '{value_field}'. Pick the field among: {', '.join(fields)}.")
    ftype = defn.GetFieldDefn(defn.GetFieldIndex(value_field)).GetType()
    numeric = ftype in (ogr.OFTInteger, ogr.OFTInteger64, ogr.OFTReal)

    transform, crs_wkt = _transform_to(lyr.GetSpatialRef(), target_crs_wkt)

    values: list = []
    geoms: list[bytes] = []
    kinds: set[str] = set()
    skipped = no_geometry = no_class = 0
    for feature in lyr:
        geom = feature.GetGeometryRef()
        value = feature.GetField(value_field)
        lacks_geometry, lacks_value = geom is None or geom.IsEmpty(), _is_blank(value)
        if lacks_geometry or lacks_value:
            no_geometry, no_class, skipped = no_geometry + lacks_geometry, no_class + lacks_value, skipped + 1
            continue
        geom = geom.Clone()
        if transform is not None:
            geom.Transform(transform)
        flat = ogr.GT_Flatten(geom.GetGeometryType())
        if flat in (ogr.wkbPoint, ogr.wkbMultiPoint):
            kinds.add(POINT)
            if flat == ogr.wkbMultiPoint:
                for i in range(geom.GetGeometryCount()):
                    geoms.append(bytes(geom.GetGeometryRef(i).ExportToWkb()))
                    values.append(value)
                continue
        elif flat in (ogr.wkbPolygon, ogr.wkbMultiPolygon):
            kinds.add(POLYGON)
        else:
            raise GeoDLError(f"The labels '{path}' hold {ogr.GeometryTypeToName(flat)} geometries; use points or polygons.")
        geoms.append(bytes(geom.ExportToWkb()))
        values.append(value)
    if len(kinds) > 1:
        raise GeoDLError(f"The labels '{path}' mix points and polygons; keep one kind per layer.")
    if not geoms:
        raise _nothing_usable(path, value_field, skipped, no_geometry, no_class)

    return _Features(values, geoms, crs_wkt, kinds.pop(), numeric, skipped)


def read_labels(
    path: str | os.PathLike,
    class_field: str,
    layer: Optional[str] = None,
    target_crs_wkt: Optional[str] = None,
    classes: Optional[ClassTable] = None,
) -> LabelSet:
    """Read labels; reproject to ``target_crs_wkt`` when given. ``classes`` fixes the class table (a name or
    id absent from it is an error); otherwise it is built from the values found."""
    features = _read_features(path, class_field, layer, target_crs_wkt)
    values, geoms, crs_wkt, numeric = features.values, features.geometries_wkb, features.crs_wkt, features.numeric
    if classes is None:
        classes = ClassTable.from_ids(values) if numeric else ClassTable.from_names(str(v) for v in values)
    if numeric:
        ids = np.array([int(v) for v in values], dtype=np.int64)
        unknown = sorted(set(ids.tolist()) - set(classes.ids))
        if unknown:
            raise GeoDLError(f"Class ids {unknown} in '{path}' are not in the class table ({classes.ids}).")
    else:
        lookup = {c.name: c.id for c in classes}
        unknown_names = sorted({str(v) for v in values} - set(lookup))
        if unknown_names:
            raise GeoDLError(f"Classes {unknown_names} in '{path}' are not in the class table ({classes.names}).")
        ids = np.array([lookup[str(v)] for v in values], dtype=np.int64)
    skipped = features.skipped
    warnings = [f"{skipped} feature(s) without geometry or class were skipped."] if skipped else []
    return LabelSet(classes, ids, geoms, crs_wkt, features.kind, warnings)


def read_targets(
    path: str | os.PathLike,
    value_field: str,
    layer: Optional[str] = None,
    target_crs_wkt: Optional[str] = None,
) -> TargetSet:
    """Read numeric targets (a number per point or polygon) for regression; reproject to ``target_crs_wkt``."""
    features = _read_features(path, value_field, layer, target_crs_wkt)
    if not features.numeric:
        raise GeoDLError(
            f"The field '{value_field}' of '{path}' holds text; a regression target must be a "
            "numeric field (integer or real). Pick a numeric field, or train a classifier."
        )
    values = np.array([float(v) for v in features.values], dtype=np.float64)
    if not np.isfinite(values).all():
        raise GeoDLError(f"The field '{value_field}' of '{path}' holds non-finite values; fix or remove them.")
    skipped = features.skipped
    warnings = [f"{skipped} feature(s) without geometry or value were skipped."] if skipped else []
    return TargetSet(value_field, values, features.geometries_wkb, features.crs_wkt, features.kind, warnings)


def write_points(path: str | os.PathLike, labels: LabelSet, class_field: str = "class_name") -> None:
    """Write point labels to a GeoPackage (atomically), with class name and id fields."""
    from osgeo import ogr

    from ..io.atomic import atomic_path

    ogr.UseExceptions()
    with atomic_path(path) as tmp:
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
        lyr = ds.CreateLayer("labels", _srs(labels.crs_wkt), ogr.wkbPoint)
        lyr.CreateField(ogr.FieldDefn(class_field, ogr.OFTString))
        lyr.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
        names = {c.id: c.name for c in labels.classes}
        lyr.StartTransaction()
        for wkb, cid in zip(labels.geometries_wkb, labels.class_ids):
            feature = ogr.Feature(lyr.GetLayerDefn())
            feature.SetGeometry(ogr.CreateGeometryFromWkb(wkb))
            feature.SetField(class_field, names[int(cid)])
            feature.SetField("class_id", int(cid))
            lyr.CreateFeature(feature)
        lyr.CommitTransaction()
        ds = None  # noqa: F841 - closes the file
