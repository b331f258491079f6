"""Pixels → a table, for analysts who continue in a notebook or a spreadsheet.

One row per valid pixel of a co-registered stack (all of it, inside labelled polygons, or at labelled points):
longitude/latitude (WGS 84) and map x/y of the pixel centre, row/column, one column per band, and the class
(id and name) or the numeric target. Read and written one block at a time, so memory does not grow with
the raster. CSV values are written with enough digits to read back exactly (9 significant for float32,
17 for float64).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..io.atomic import atomic_path, check_writable
from ..io.raster import RasterInfo, iter_windows, pixel_centre, valid_mask, world_to_pixel
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .labels import POINT, LabelSet, TargetSet
from .samples import read_stack_window, stack_info, stacked_band_names

log = logging.getLogger("geodl")

CSV, PARQUET, GPKG = "csv", "parquet", "gpkg"
FORMATS = {".csv": CSV, ".parquet": PARQUET, ".gpkg": GPKG}
Labels = Union[LabelSet, TargetSet, None]


@dataclass
class FlattenReport:
    path: str
    format: str
    rows: int
    columns: list[str]
    skipped_nodata: int
    warnings: list[str] = field(default_factory=list)


def table_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise GeoDLError(f"Cannot tell the table format of '{path}'; name it .csv, .parquet or .gpkg.")
    return FORMATS[suffix]


def _csv_format(dtype: np.dtype) -> str:
    if dtype.kind in "iub":
        return "%d"
    return "%.9g" if dtype.itemsize <= 4 else "%.17g"


class _CsvWriter:
    def __init__(self, path: Path, columns: list[str], dtypes: dict[str, np.dtype]) -> None:
        self._file = open(path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(columns)
        self._formats = {c: ("%s" if dtypes[c].kind in "OU" else _csv_format(dtypes[c])) for c in columns}
        self.columns = columns

    def write(self, block: dict[str, np.ndarray]) -> None:
        text = [np.char.mod(self._formats[c], block[c]) if self._formats[c] != "%s" else block[c].astype(str) for c in self.columns]
        self._csv.writerows(zip(*text))

    def close(self) -> None:
        self._file.close()


class _ParquetWriter:
    def __init__(self, path: Path, columns: list[str], dtypes: dict[str, np.dtype]) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise GeoDLError(
                "Writing Parquet needs the Python package pyarrow (a version for numpy 1.x, e.g. "
                "pip install 'pyarrow<22'); or write CSV or GeoPackage instead."
            ) from exc
        self._pa = pa
        self.columns = columns
        schema = pa.schema([(c, pa.string() if dtypes[c].kind in "OU" else pa.from_numpy_dtype(dtypes[c])) for c in columns])
        self._writer = pq.ParquetWriter(str(path), schema, compression="zstd")
        self._schema = schema

    def write(self, block: dict[str, np.ndarray]) -> None:
        arrays = [self._pa.array(block[c].astype(str) if block[c].dtype.kind in "OU" else block[c]) for c in self.columns]
        self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


class _GpkgWriter:
    """Points at the pixel centres, in the raster's CRS, one field per column."""

    def __init__(self, path: Path, columns: list[str], dtypes: dict[str, np.dtype], crs_wkt: str) -> None:
        from osgeo import ogr, osr

        ogr.UseExceptions()
        srs = osr.SpatialReference()
        srs.ImportFromWkt(crs_wkt)
        path.unlink(missing_ok=True)  # the GPKG driver creates the file itself
        self._ogr = ogr
        self._ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
        self._layer = self._ds.CreateLayer("pixels", srs, ogr.wkbPoint)
        self.columns = [c for c in columns if c not in ("x", "y")]  # x/y are the geometry
        for c in self.columns:
            kind = dtypes[c].kind
            if kind in "OU":
                ftype = ogr.OFTString
            elif kind in "iub":
                ftype = ogr.OFTInteger64 if dtypes[c].itemsize >= 4 and kind != "b" else ogr.OFTInteger
            else:
                ftype = ogr.OFTReal
            self._layer.CreateField(ogr.FieldDefn(c, ftype))
        self._defn = self._layer.GetLayerDefn()

    def write(self, block: dict[str, np.ndarray]) -> None:
        ogr = self._ogr
        lists = [block[c].tolist() for c in self.columns]
        xs, ys = block["x"].tolist(), block["y"].tolist()
        self._layer.StartTransaction()
        for i in range(len(xs)):
            feature = ogr.Feature(self._defn)
            for k, values in enumerate(lists):
                feature.SetField(k, values[i])
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(xs[i], ys[i])
            feature.SetGeometry(point)
            self._layer.CreateFeature(feature)
        self._layer.CommitTransaction()

    def close(self) -> None:
        self._ds = None


def _writer(fmt: str, path: Path, columns: list[str], dtypes: dict[str, np.dtype], crs_wkt: str) -> Any:
    if fmt == CSV:
        return _CsvWriter(path, columns, dtypes)
    if fmt == PARQUET:
        return _ParquetWriter(path, columns, dtypes)
    return _GpkgWriter(path, columns, dtypes, crs_wkt)


class PixelSelector:
    """Which pixels of a window go into the table, and their label (class id or target value) if any."""

    def __init__(self, labels: Labels, info: RasterInfo, all_touched: bool) -> None:
        self.labels = labels
        self.info = info
        self.all_touched = all_touched
        self.points: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None
        self.shapes: list[tuple[dict, int]] = []
        self.envelopes = np.zeros((0, 4))
        self.outside = 0
        if labels is None:
            return
        if labels.kind == POINT:
            xy = labels.points_xy()
            rows, cols = world_to_pixel(info.transform, xy[:, 0], xy[:, 1])
            inside = (rows >= 0) & (rows < info.height) & (cols >= 0) & (cols < info.width)
            self.outside = int((~inside).sum())
            self.points = (rows[inside], cols[inside], np.flatnonzero(inside))
        else:
            from osgeo import ogr

            envelopes = []
            for i, wkb in enumerate(labels.geometries_wkb):
                geom = ogr.CreateGeometryFromWkb(wkb)
                self.shapes.append((json.loads(geom.ExportToJson()), i + 1))
                envelopes.append(geom.GetEnvelope())  # (minx, maxx, miny, maxy)
            self.envelopes = np.array(envelopes, dtype=np.float64)

    def select(self, col: int, row: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols) within the window, and the label feature index of each (-1: no label)."""
        if self.labels is None:
            rr, cc = np.mgrid[0:height, 0:width]
            return rr.ravel(), cc.ravel(), np.full(width * height, -1, np.int64)
        if self.points is not None:
            rows, cols, index = self.points
            hit = (rows >= row) & (rows < row + height) & (cols >= col) & (cols < col + width)
            return rows[hit] - row, cols[hit] - col, index[hit]
        import rasterio
        from rasterio.features import rasterize
        from rasterio.windows import Window
        from rasterio.windows import bounds as window_bounds
        from rasterio.windows import transform as window_transform

        affine = rasterio.Affine(*self.info.transform)
        left, bottom, right, top = window_bounds(Window(col, row, width, height), affine)
        e = self.envelopes
        near = np.flatnonzero((e[:, 0] <= right) & (e[:, 1] >= left) & (e[:, 2] <= top) & (e[:, 3] >= bottom))
        if not len(near):
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        burnt = rasterize(
            [self.shapes[i] for i in near],
            out_shape=(height, width),
            fill=0,
            dtype="int32",
            transform=window_transform(Window(col, row, width, height), affine),
            all_touched=self.all_touched,
        )
        rr, cc = np.nonzero(burnt)
        return rr, cc, burnt[rr, cc].astype(np.int64) - 1


def _label_columns(labels: Labels, band_names: list[str]) -> dict[str, np.dtype]:
    if isinstance(labels, LabelSet):
        return {"class_id": np.dtype(np.int32), "class_name": np.dtype(object)}
    if isinstance(labels, TargetSet):
        name = labels.name if labels.name not in band_names else f"target_{labels.name}"
        return {name: np.dtype(np.float64)}
    return {}


def flatten_rasters(
    rasters: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    labels: Labels = None,
    nodata: Optional[float] = None,
    band_names: Optional[Sequence[str]] = None,
    all_touched: bool = False,
    block: int = 512,
    progress: Optional[Progress] = None,
) -> FlattenReport:
    """Write the table of ``rasters``' pixels (optionally only inside ``labels``' polygons or at its points,
    with their class or target) to ``output`` (.csv, .parquet or .gpkg). Pixels where a band is nodata are
    left out and counted."""
    progress = ensure(progress)
    fmt = table_format(output)
    target = check_writable(output)
    infos = stack_info(rasters, band_names)
    names = stacked_band_names(infos, band_names)
    info = infos[0]
    nodata_value = nodata if nodata is not None else info.nodata
    if labels is not None and labels.crs_wkt and not _same_crs(labels.crs_wkt, info.crs_wkt):
        raise GeoDLError("The labels are not in the raster's CRS; read them with the raster's CRS as target.")
    band_dtypes = [np.dtype(i.dtype) for i in infos for _ in range(i.count)]
    stack_dtype = np.result_type(*band_dtypes)
    dtypes: dict[str, np.dtype] = {
        "lon": np.dtype(np.float64),
        "lat": np.dtype(np.float64),
        "x": np.dtype(np.float64),
        "y": np.dtype(np.float64),
        "row": np.dtype(np.int32),
        "col": np.dtype(np.int32),
    }
    dtypes.update({n: dt for n, dt in zip(names, band_dtypes)})
    extra = _label_columns(labels, names)
    dtypes.update(extra)
    columns = list(dtypes)
    selector = PixelSelector(labels, info, all_touched)
    windows = list(iter_windows(info.width, info.height, block))
    rows_written = 0
    skipped = 0
    with atomic_path(target) as tmp:
        writer = _writer(fmt, tmp, columns, dtypes, info.crs_wkt)
        try:
            for n, (col, row, width, height) in enumerate(windows):
                progress.check()
                rr, cc, index = selector.select(col, row, width, height)
                if len(rr):
                    data = read_stack_window(infos, col, row, width, height).astype(stack_dtype, copy=False)
                    ok = valid_mask(data, nodata_value)[rr, cc]
                    skipped += int((~ok).sum())
                    rr, cc, index = rr[ok], cc[ok], index[ok]
                if len(rr):
                    table = _block_table(data, rr, cc, index, col, row, info, names, band_dtypes, labels, extra)
                    writer.write(table)
                    rows_written += len(rr)
                progress.update(100.0 * (n + 1) / len(windows), f"{rows_written} pixels written")
        finally:
            writer.close()
        if rows_written == 0:
            raise GeoDLError(
                "No pixel to write: every selected pixel is nodata, or the labels miss the raster. "
                "Check the nodata value and that labels and raster overlap."
            )
    warnings = []
    if selector.outside:
        warnings.append(f"{selector.outside} label point(s) outside the raster were skipped.")
    if skipped:
        warnings.append(f"{skipped} pixel(s) with a nodata band were left out.")
    for w in warnings:
        log.warning(w)
    progress.update(100, f"{rows_written} rows written to {target}")
    return FlattenReport(str(target), fmt, rows_written, columns, skipped, warnings)


def _same_crs(a: str, b: str) -> bool:
    from osgeo import osr

    sa, sb = osr.SpatialReference(), osr.SpatialReference()
    sa.ImportFromWkt(a)
    sb.ImportFromWkt(b)
    return bool(sa.IsSame(sb))


def _block_table(
    data: np.ndarray,
    rr: np.ndarray,
    cc: np.ndarray,
    index: np.ndarray,
    col: int,
    row: int,
    info: RasterInfo,
    names: list[str],
    band_dtypes: list[np.dtype],
    labels: Labels,
    extra: dict[str, np.dtype],
) -> dict[str, np.ndarray]:
    from rasterio.crs import CRS
    from rasterio.warp import transform as reproject_points

    rows, cols = rr + row, cc + col
    x, y = pixel_centre(info.transform, rows.astype(np.float64), cols.astype(np.float64))
    lon, lat = reproject_points(CRS.from_wkt(info.crs_wkt), CRS.from_epsg(4326), x, y)
    table: dict[str, np.ndarray] = {
        "lon": np.asarray(lon),
        "lat": np.asarray(lat),
        "x": x,
        "y": y,
        "row": rows.astype(np.int32),
        "col": cols.astype(np.int32),
    }
    values = data[:, rr, cc]
    for k, (name, dtype) in enumerate(zip(names, band_dtypes)):
        table[name] = values[k].astype(dtype)
    if isinstance(labels, LabelSet):
        ids = labels.class_ids[index]
        lookup = {c.id: c.name for c in labels.classes}
        table["class_id"] = ids.astype(np.int32)
        table["class_name"] = np.array([lookup[int(i)] for i in ids], dtype=object)
    elif isinstance(labels, TargetSet):
        table[next(iter(extra))] = labels.values[index]
    return table
