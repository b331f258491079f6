"""Cut training samples at labelled points and read them back.

Written in the layout of an Earth Engine table export (see ``tfrecord``): one Example per sample, one float
feature per band (k×k patches flattened row-major), the class id as the float property ``class``, and the
sample's map coordinates as ``x``/``y`` (used by spatially blocked splits). A JSON sidecar
(``<file>.json``) keeps what the Examples cannot: class names and colours, band order, patch size, CRS,
pixel size and source dtype. Samples exported from Earth Engine have no sidecar and still load.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from ..io.raster import RasterInfo, raster_info, read_stack_into, same_grid, stack_block, valid_mask, world_to_pixel
from ..io.tfrecord import read_examples
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .classes import ClassTable
from .labels import LabelSet

log = logging.getLogger("geodl")

LABEL = "class"
COORDS = ("x", "y")
MIN_SAMPLES_PER_CLASS = 10
_BLOCK = 512


@dataclass
class SampleSet:
    """Samples in memory: ``x`` is (n, bands) for pixels or (n, k, k, bands) for patches."""

    x: np.ndarray
    y: np.ndarray  # class ids
    xy: Optional[np.ndarray]  # (n, 2) map coordinates, if known
    bands: list[str]
    classes: ClassTable
    patch_size: int = 1
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray) -> SampleSet:
        return SampleSet(
            self.x[index], self.y[index], None if self.xy is None else self.xy[index], self.bands, self.classes, self.patch_size, self.meta
        )


@dataclass
class ExtractReport:
    path: str
    count: int
    per_class: dict[str, int]
    skipped_outside: int
    skipped_nodata: int
    warnings: list[str]


def sidecar_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + ".json")


def stack_info(rasters: Sequence[str | os.PathLike], band_names: Optional[Sequence[str]] = None) -> list[RasterInfo]:
    """Open co-registered rasters; check they share grid and CRS; return their infos."""
    if not rasters:
        raise GeoDLError("No raster given. Choose the imagery to sample.")
    infos = [raster_info(r) for r in rasters]
    first = infos[0]
    for info in infos[1:]:
        if not same_grid(info, first):
            raise GeoDLError(
                f"'{info.path}' is not on the grid of '{first.path}' ({info.width}×{info.height} vs "
                f"{first.width}×{first.height}). Resample the rasters onto one grid (e.g. gdal:warpreproject)."
            )
    if band_names is not None:
        total = sum(i.count for i in infos)
        if len(band_names) != total:
            raise GeoDLError(f"{len(band_names)} band names given for {total} bands; give one name per band.")
    return infos


def stacked_band_names(infos: Sequence[RasterInfo], band_names: Optional[Sequence[str]] = None) -> list[str]:
    if band_names:
        return [str(b) for b in band_names]
    names: list[str] = []
    for info in infos:
        for b in info.band_names:
            names.append(b if len(infos) == 1 else f"{Path(info.path).stem}_{b}")
    if len(set(names)) != len(names):
        raise GeoDLError(f"Band names repeat ({names}); give explicit band names.")
    return names


def source_meta(info: RasterInfo, nodata: Optional[float], rasters: Sequence[str | os.PathLike]) -> dict:
    """The sidecar's facts about the imagery samples were cut from (CRS, pixel size, dtype, nodata, files):
    training copies them into the model file, whose checks then hold a raster to predict on against them."""
    return {
        "crs_wkt": info.crs_wkt,
        "crs_units": info.crs_units,
        "pixel_size": list(info.res),
        "source_dtype": info.dtype,
        "nodata": nodata,
        "rasters": [str(r) for r in rasters],
    }


def read_stack_window(infos: Sequence[RasterInfo], col: int, row: int, width: int, height: int, fill: float = 0) -> np.ndarray:
    """(bands, h, w) from every raster of the stack; pixels beyond the raster edge are ``fill``. Read through
    GDAL's own API, each raster's part straight into its place in the block: prediction reads its blocks in a
    thread of its own, where rasterio's first ``open`` costs ~10 ms (its per-thread set-up), and every block
    opens the rasters again (~0.1 ms through GDAL, ~1-2 ms through rasterio)."""
    first = infos[0]
    c0, r0 = max(col, 0), max(row, 0)
    c1, r1 = min(col + width, first.width), min(row + height, first.height)
    inside = (c0, r0, c1, r1) == (col, row, col + width, row + height)
    block = stack_block(infos, height, width, None if inside else fill)  # a patch at the edge: ``fill`` outside
    if c1 > c0 and r1 > r0:
        read_stack_into(infos, c0, r0, block[:, r0 - row : r1 - row, c0 - col : c1 - col])
    return block


def extract_samples(  # noqa: PLR0915 - one streaming pass with its estimates and clean-up; to split next
    rasters: Sequence[str | os.PathLike],
    labels: LabelSet,
    output: str | os.PathLike,
    patch_size: int = 1,
    nodata: Optional[float] = None,
    band_names: Optional[Sequence[str]] = None,
    progress: Optional[Progress] = None,
) -> ExtractReport:
    """Pixel vectors (``patch_size`` 1) or k×k patches at the label points, from a co-registered stack.

    Points outside the raster are skipped and counted (an error if none remain); samples touching nodata
    are left out; a class with fewer than 10 samples gets a warning naming it; one class alone is an error.
    """
    from ..io.atomic import atomic_path, atomic_write_text, check_writable
    from ..io.paths_guard import check_outputs_against_inputs
    from ..io.tfrecord import TFRecordWriter

    progress = ensure(progress)
    check_outputs_against_inputs([*map(str, rasters)], [str(output)])
    check_writable(output)
    if patch_size < 1 or patch_size % 2 == 0:
        raise GeoDLError(f"Patch size must be odd and at least 1 (got {patch_size}); try {max(1, patch_size | 1)}.")
    infos = stack_info(rasters, band_names)
    if patch_size > min(infos[0].width, infos[0].height):
        raise GeoDLError(
            f"The patch size {patch_size} is larger than the raster ({infos[0].width}×{infos[0].height} "
            "pixels); every patch would hang over its edge. Choose a smaller patch size."
        )
    names = stacked_band_names(infos, band_names)
    info = infos[0]
    nodata_value = nodata if nodata is not None else info.nodata
    xy = labels.points_xy()
    rows, cols = world_to_pixel(info.transform, xy[:, 0], xy[:, 1])
    inside = (rows >= 0) & (rows < info.height) & (cols >= 0) & (cols < info.width)
    skipped_outside = int((~inside).sum())
    if not inside.any():
        raise GeoDLError(
            f"None of the {len(xy)} label points falls inside the raster '{info.path}'. Check that labels and "
            "raster cover the same area (the labels were reprojected to the raster's CRS)."
        )
    half = patch_size // 2
    index = np.flatnonzero(inside)
    check_sample_resources(output, len(index), patch_size, len(names), info)
    block_id = (rows[index] // _BLOCK) * ((info.width // _BLOCK) + 1) + cols[index] // _BLOCK
    sort = np.argsort(block_id, kind="stable")
    order, sorted_blocks = index[sort], block_id[sort]
    blocks = np.unique(block_id)
    fill = nodata_value if nodata_value is not None else 0

    keep_ids: list[int] = []
    skipped_nodata = 0
    done = 0
    # Streamed into a temporary file beside the output: memory holds one block of points, and a cancel, a
    # signal or an error anywhere below (the class checks included) leaves neither file behind.
    with atomic_path(output) as tmp, TFRecordWriter(tmp) as writer:
        for b_i, b in enumerate(blocks):
            progress.check()
            members = order[sorted_blocks == b]
            r0, c0 = int(rows[members].min()) - half, int(cols[members].min()) - half
            r1, c1 = int(rows[members].max()) + half + 1, int(cols[members].max()) + half + 1
            window = read_stack_window(infos, c0, r0, c1 - c0, r1 - r0, fill=fill)
            ok = valid_mask(window, nodata_value)
            for i in members:
                rr, cc = int(rows[i]) - r0, int(cols[i]) - c0
                patch = window[:, rr - half : rr + half + 1, cc - half : cc + half + 1]
                if not ok[rr - half : rr + half + 1, cc - half : cc + half + 1].all():
                    skipped_nodata += 1
                    continue
                record: dict = {name: patch[k].astype(np.float32).ravel() for k, name in enumerate(names)}
                record[LABEL] = float(labels.class_ids[i])
                record[COORDS[0]], record[COORDS[1]] = float(xy[i, 0]), float(xy[i, 1])
                writer.write(record)
                keep_ids.append(int(labels.class_ids[i]))
            done += len(members)
            progress.update(90.0 * (b_i + 1) / len(blocks), f"{done} of {len(index)} points read")
        writer.close()
        count = writer.count

        ids = np.array(keep_ids, dtype=np.int64)
        per_class = {c.name: int(np.sum(ids == c.id)) for c in labels.classes}
        warnings = list(labels.warnings)
        if skipped_outside:
            warnings.append(f"{skipped_outside} label point(s) outside the raster were skipped.")
        if skipped_nodata:
            warnings.append(f"{skipped_nodata} sample(s) on nodata pixels were left out.")
        labelled = len(set(labels.class_ids[index].tolist()))  # classes among the points on the raster
        check_two_classes(
            per_class,
            len(xy),
            skipped_nodata if labelled >= 2 else 0,
            skipped_outside if len(set(labels.class_ids.tolist())) >= 2 and labelled < 2 else 0,
            nodata_value,
        )
        for name, n in per_class.items():
            if n < MIN_SAMPLES_PER_CLASS:
                warnings.append(f"Class '{name}' has only {n} samples; label more (at least {MIN_SAMPLES_PER_CLASS}).")
        for w in warnings:
            log.warning(w)

        meta = {
            "bands": names,
            "label": LABEL,
            "patch_size": patch_size,
            "classes": labels.classes.to_json(),
            **source_meta(info, nodata_value, rasters),
            "count": count,
        }
        progress.check()
        atomic_write_text(sidecar_path(output), json.dumps(meta, indent=2))
    progress.update(100.0, f"{count} samples written to {output}")
    return ExtractReport(str(output), count, per_class, skipped_outside, skipped_nodata, warnings)


def check_two_classes(
    per_class: dict[str, int], n_points: int, skipped_nodata: int, skipped_outside: int, nodata_value: Optional[float]
) -> None:
    """A classifier needs two classes; when points were dropped, say how many and why (the real cause of an
    all-nodata input is the nodata, not too few labelled classes)."""
    present = [name for name, n in per_class.items() if n > 0]
    if len(present) >= 2:
        return
    dropped = []
    if skipped_nodata:
        dropped.append(
            f"{skipped_nodata} of {n_points} point(s) were dropped because they fall on nodata pixels (nodata value {nodata_value:g})"
            if nodata_value is not None
            else f"{skipped_nodata} of {n_points} point(s) were dropped on nodata (non-finite) pixels"
        )
    if skipped_outside:
        dropped.append(f"{skipped_outside} point(s) lie outside the raster")
    if dropped:
        raise GeoDLError(
            f"Only {len(present)} class(es) kept samples ({', '.join(present) or 'none'}): "
            f"{'; '.join(dropped)}. Check the nodata value (the NODATA parameter) and that the labels "
            "lie on valid imagery."
        )
    raise GeoDLError(f"Only one class has samples ({', '.join(present) or 'none'}); a classifier needs at least two. Label more classes.")


def check_sample_resources(output: str | os.PathLike, n_points: int, patch_size: int, n_bands: int, info: RasterInfo) -> None:
    """Before reading a pixel: refuse samples that cannot fit. Each sample holds patch² × bands float32
    values; the file needs about half of that at least (gzip gains little on sensor noise), and training later
    holds them all in memory at least twice (the samples and their float copy)."""
    from ..io.atomic import check_free_space
    from ..runtime.resources import check_memory

    per_sample = patch_size * patch_size * n_bands * 4 + 64
    total = n_points * per_sample
    fix = (
        f"Use a smaller patch size (now {patch_size}) or fewer points (now {n_points}); {n_points} patches of "
        f"{patch_size}×{patch_size}×{n_bands} bands are {total / 2**20:,.0f} MB of float32."
    )
    check_memory(2 * total, f"Training on {n_points} samples of {patch_size}×{patch_size} pixels × {n_bands} bands", fix)
    check_free_space(output, total // 2, f"{n_points} samples of {patch_size}×{patch_size}×{n_bands}")


def read_sidecar(path: str | os.PathLike) -> dict:
    p = sidecar_path(path)
    if not p.exists():
        return {}
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GeoDLError(
            f"The sidecar '{p}' is not valid JSON ({exc}). Restore it from the extraction, or delete "
            "it to read the samples as an Earth Engine export (class names and grid then unknown)."
        ) from exc
    if not isinstance(meta, dict):
        raise GeoDLError(f"The sidecar '{p}' does not hold a JSON object. Restore it or delete it.")
    try:
        if "classes" in meta:
            ClassTable.from_json(meta["classes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise GeoDLError(f"The class table in the sidecar '{p}' is malformed ({exc}). Restore it or delete it.") from exc
    return meta


def note_unknown_facts(samples: SampleSet, class_names: Optional[Sequence[str]] = None, pixel_size: Optional[float] = None) -> None:
    """Fill what samples without a sidecar (an Earth Engine table export) cannot say, from the user: class
    names (in class-id order) and the source imagery's pixel size. What nobody gave stays unknown (absent),
    so no later check refuses imagery on a guess. Given facts never override a sidecar's."""
    if class_names:
        names = [str(n).strip() for n in class_names if str(n).strip()]
        if "classes" in samples.meta:
            log.warning("The samples' sidecar names the classes already; the class names given were ignored.")
        else:
            ids = samples.classes.ids
            if len(names) != len(ids):
                raise GeoDLError(
                    f"{len(names)} class names were given for the {len(ids)} classes in the samples "
                    f"(ids {ids}); give one name per class id, in id order."
                )
            from .classes import ClassInfo, default_colour

            samples.classes = ClassTable([ClassInfo(i, n, default_colour(n, k)) for k, (i, n) in enumerate(zip(ids, names))])
            samples.meta = {**samples.meta, "classes": samples.classes.to_json()}
    if pixel_size is not None:
        if samples.meta.get("pixel_size"):
            log.warning("The samples' sidecar gives the pixel size already; the pixel size given was ignored.")
        else:
            samples.meta = {**samples.meta, "pixel_size": [float(pixel_size), float(pixel_size)]}


def open_sample_files(
    paths: str | os.PathLike | Iterable[str | os.PathLike], bands: Optional[Sequence[str]], what: str = "sample"
) -> tuple[list[Path], dict, list[str]]:
    """(the files, the first file's sidecar, the band order: ``bands``, else the sidecar's) for a reader of
    sample or chip TFRecords."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = [Path(p) for p in paths]
    if not files:
        raise GeoDLError(f"No {what} file given.")
    meta = read_sidecar(files[0])
    return files, meta, list(bands) if bands else list(meta.get("bands", []))


def example_bands(example: dict, n: int, bands: Sequence[str], label: str, what: str = "Sample") -> list[str]:
    """The band order of a sample reader: ``bands`` (given or from the sidecar), else the sorted features of
    this first Example other than the label and coordinates; an error names the bands Example ``n`` lacks."""
    bands = list(bands) or sorted(key for key in example if key not in (label, *COORDS))
    missing = [b for b in bands if b not in example]
    if missing:
        raise GeoDLError(f"{what} {n} lacks the band(s) {missing}; it has {sorted(example)}.")
    return bands


def example_xy(example: dict) -> Optional[tuple[float, float]]:
    """The map coordinates (x, y) an Example carries, or None: Earth Engine exports may have none."""
    if not all(c in example for c in COORDS):
        return None
    return float(np.asarray(example[COORDS[0]]).ravel()[0]), float(np.asarray(example[COORDS[1]]).ravel()[0])


def load_samples(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    bands: Optional[Sequence[str]] = None,
    label: str = LABEL,
    classes: Optional[ClassTable] = None,
) -> SampleSet:
    """Read sample TFRecords (local or Earth Engine exports) into arrays. Band order comes from ``bands``,
    else the sidecar, else the sorted float features other than the label and coordinates."""
    paths, meta, band_list = open_sample_files(paths, bands)
    columns: dict[str, list[np.ndarray]] = {}
    labels: list[float] = []
    coords: list[tuple[float, float]] = []
    for n, example in enumerate(read_examples(paths)):
        if label not in example:
            raise GeoDLError(
                f"Sample {n} in {[str(p) for p in paths]} has no '{label}' property; found {sorted(example)}. Name the label property."
            )
        band_list = example_bands(example, n, band_list, label)
        for b in band_list:
            columns.setdefault(b, []).append(np.asarray(example[b], dtype=np.float32))
        labels.append(float(np.asarray(example[label]).ravel()[0]))
        if (centre := example_xy(example)) is not None:
            coords.append(centre)
    if not labels:
        raise GeoDLError(f"The sample file(s) {[str(p) for p in paths]} hold no sample.")
    length = len(columns[band_list[0]][0])
    k = int(round(np.sqrt(length)))
    if k * k != length:
        raise GeoDLError(f"Band '{band_list[0]}' has {length} values per sample, not a square patch.")
    stacked = np.stack([np.stack(columns[b]) for b in band_list], axis=-1)  # (n, k*k, bands)
    x = stacked[:, 0, :] if k == 1 else stacked.reshape(len(labels), k, k, len(band_list))
    y = np.array(labels, dtype=np.int64)
    if classes is None:
        classes = ClassTable.from_json(meta["classes"]) if "classes" in meta else ClassTable.from_ids(y)
    unknown = sorted(set(y.tolist()) - set(classes.ids))
    if unknown:
        raise GeoDLError(f"Class ids {unknown} in the samples are not in the class table ({classes.ids}).")
    xy = np.array(coords) if len(coords) == len(labels) else None
    keep = _valid_samples(x, meta.get("nodata"))
    if not keep.all():
        # Earth Engine exports carry masked pixels as the sidecar's nodata value (local extraction skips
        # them before writing): a sample touching one is not a measurement and is not trained on.
        log.warning("%d sample(s) touching nodata (%s) were left out.", int((~keep).sum()), meta.get("nodata"))
        x, y, xy = x[keep], y[keep], None if xy is None else xy[keep]
        if not len(y):
            raise GeoDLError(f"Every sample in {[str(p) for p in paths]} touches nodata; sample where there is data.")
    return SampleSet(x, y, xy, band_list, classes, k, meta)


def _valid_samples(x: np.ndarray, nodata: Optional[float]) -> np.ndarray:
    """(n,) bool: samples with no nodata or non-finite value in any band or patch pixel."""
    flat = x.reshape(len(x), -1)
    ok = np.isfinite(flat).all(axis=1)
    if nodata is not None and np.isfinite(nodata):
        ok &= (flat != np.float32(nodata)).all(axis=1)
    return ok
