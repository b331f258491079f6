"""Labelled points or polygons from a vector file, reprojected to the raster's CRS, with their class table.

Read with OGR (part of every QGIS install). The class field may hold names (text) or ids (integers).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Optional

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
        from osgeo import ogr

        if self.kind != POINT:
            raise GeoDLError("These labels are polygons; sample points inside them first (geodl:samplepoints).")
        xy = np.empty((len(self), 2), dtype=np.float64)
        for i, wkb in enumerate(self.geometries_wkb):
            g = ogr.CreateGeometryFromWkb(wkb)
            xy[i] = (g.GetX(), g.GetY())
        return xy

    def counts(self) -> dict[str, int]:
        return {c.name: int(np.sum(self.class_ids == c.id)) for c in self.classes}


def _srs(wkt: str):
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def read_labels(
    path: str | os.PathLike,
    class_field: str,
    layer: Optional[str] = None,
    target_crs_wkt: Optional[str] = None,
    classes: Optional[ClassTable] = None,
) -> LabelSet:
    """Read labels; reproject to ``target_crs_wkt`` when given. ``classes`` fixes the class table (a name or
    id absent from it is an error); otherwise it is built from the values found."""
    from osgeo import ogr, osr

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
    if class_field not in fields:
        raise GeoDLError(
            f"The labels '{path}' have no field '{class_field}'. Pick the class field among: {', '.join(fields)}."
        )
    ftype = defn.GetFieldDefn(defn.GetFieldIndex(class_field)).GetType()
    numeric = ftype in (ogr.OFTInteger, ogr.OFTInteger64, ogr.OFTReal)

    transform = None
    src_srs = lyr.GetSpatialRef()
    crs_wkt = src_srs.ExportToWkt() if src_srs is not None else (target_crs_wkt or "")
    if target_crs_wkt and src_srs is not None:
        src = src_srs.Clone()
        src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        dst = _srs(target_crs_wkt)
        if not src.IsSame(dst):
            transform = osr.CoordinateTransformation(src, dst)
            log.info("Labels reprojected from %s to the raster's CRS.", src.GetName())
        crs_wkt = target_crs_wkt

    values: list = []
    geoms: list[bytes] = []
    kinds: set[str] = set()
    skipped = no_geometry = no_class = 0
    for feature in lyr:
        geom = feature.GetGeometryRef()
        value = feature.GetField(class_field)
        if geom is None or geom.IsEmpty():
            no_geometry += 1
        if value is None or (isinstance(value, str) and not value.strip()):
            no_class += 1
        if geom is None or geom.IsEmpty() or value is None or (isinstance(value, str) and not value.strip()):
            skipped += 1
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
        if skipped and no_geometry == skipped:
            raise GeoDLError(f"None of the {skipped} feature(s) in the labels '{path}' has a geometry (all are NULL or "
                             "empty). Draw or import the label geometries, then try again.")
        if skipped:
            raise GeoDLError(f"No feature in the labels '{path}' has both a geometry and a class: {no_geometry} of "
                             f"{skipped} have no geometry, {no_class} have an empty '{class_field}'. Fill in the class "
                             "field or choose the right one.")
        raise GeoDLError(f"The labels '{path}' hold no feature. Add labelled points or polygons first.")

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
    warnings = [f"{skipped} feature(s) were skipped: {no_geometry} without a geometry, {no_class} without a "
                f"class."] if skipped else []
    return LabelSet(classes, ids, geoms, crs_wkt, kinds.pop(), warnings)


def write_points(path: str | os.PathLike, labels: LabelSet, class_field: str = "class_name") -> None:
    """Write point labels to a GeoPackage (atomically), with class name and id fields."""
    from osgeo import ogr

    from ..io.atomic import atomic_path

    ogr.UseExceptions()
    with atomic_path(path) as tmp:
        tmp.unlink()  # the GPKG driver wants to create the file itself
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
