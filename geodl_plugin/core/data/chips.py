"""Masks and chips for segmentation: labels rasterised onto the image grid, image+mask patches cut from it.

A **mask** is a uint8 raster on exactly the image's grid: the class id where a polygon (or a point: one
pixel, a sparse label) lies, :data:`IGNORE` (255, the class rasters' nodata) everywhere else, so unlabelled
pixels are ignored by the masked loss rather than taken as background.

**Chips** are k×k image patches with their k×k mask, stored as a TFRecord in the layout of an Earth Engine
export made with ``neighborhoodToArray``: one float feature per band holding the k×k patch row-major, the
label array ``class`` (k×k, 255 = unlabelled), and ``x``/``y``, the map coordinates of the chip centre. Earth
Engine patches (typically 257×257, from a kernel of radius 128) therefore go through the same reader; a U-Net
wants a size divisible by 2^depth, so an odd size one above a valid size is cropped (257 → 256), keeping the
centre pixel. Point samples cut by ``extract_samples(patch_size=k)`` also load here: their ``class`` is the
centre pixel alone, which becomes a sparse mask with only the centre labelled.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from ..io.atomic import atomic_write_text
from ..io.raster import RasterInfo, raster_info, read_stack_into, same_grid, stack_block, valid_mask
from ..io.tfrecord import TFRecordWriter, read_examples
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .classes import NODATA_CLASS, ClassTable
from .labels import POINT, LabelSet
from .samples import (
    COORDS,
    LABEL,
    example_bands,
    example_xy,
    open_sample_files,
    read_sidecar,
    sidecar_path,
    source_meta,
    stack_info,
    stacked_band_names,
)

log = logging.getLogger("geodl")

IGNORE = NODATA_CLASS  # unlabelled pixel in a mask (and in a chip's label array)
CHIPS_KIND = "chips"


# --- sizes -------------------------------------------------------------------------------------------
def unet_patch_size(k: int, depth: int) -> int:
    """The size a U-Net of ``depth`` poolings trains on, for patches of size ``k``.

    ``k`` itself when divisible by 2^depth; ``k - 1`` for odd patches one above a valid size (Earth Engine's
    ``neighborhoodToArray`` gives 2r+1: 257 → 256, the centre pixel stays inside); else an error naming the
    nearest valid size."""
    m = 2 ** int(depth)
    if k % m == 0 and k >= m:
        return k
    if k % 2 == 1 and (k - 1) % m == 0 and k - 1 >= m:
        return k - 1
    nearest = max(m, int(round(k / m)) * m)
    raise GeoDLError(
        f"Patch size {k} does not suit a U-Net of depth {depth}: the size must be divisible by 2^{depth} = {m}. "
        f"Use {nearest} (or {nearest + 1} for odd, Earth Engine-style patches, which are cropped to {nearest}), "
        "or a smaller depth."
    )


def crop_patches(x: np.ndarray, size: int) -> np.ndarray:
    """Crop (n, k, k, ...) to (n, size, size, ...), top-left offset (k - size) // 2: 257 → rows 0..255."""
    k = x.shape[1]
    if k == size:
        return x
    o = (k - size) // 2
    return x[:, o : o + size, o : o + size]


# --- reading with reflected edges ----------------------------------------------------------------------
def read_reflect(infos: Sequence[RasterInfo], col: int, row: int, width: int, height: int) -> np.ndarray:
    """(bands, h, w) of the stack; beyond the raster edge the image is mirrored (as at prediction), so a
    chip or tile hanging over the edge sees plausible context rather than zeros. Read through GDAL's own API:
    tiled prediction reads its strips in a thread of its own, where rasterio's first ``open`` costs ~10 ms
    (its per-thread set-up) before the first tile can run."""
    info = infos[0]
    c0, r0 = max(col, 0), max(row, 0)
    c1, r1 = min(col + width, info.width), min(row + height, info.height)
    if c1 <= c0 or r1 <= r0:
        raise GeoDLError(f"The window ({col}, {row}, {width}×{height}) lies outside the raster '{info.path}'.")
    block = stack_block(infos, r1 - r0, c1 - c0)
    read_stack_into(infos, c0, r0, block)
    pad = ((0, 0), (r0 - row, row + height - r1), (c0 - col, col + width - c1))
    if any(p for pair in pad for p in pair):
        block = np.pad(block, pad, mode="symmetric")
    return block


# --- masks -------------------------------------------------------------------------------------------
@dataclass
class MaskReport:
    path: str
    labelled_pixels: int
    per_class: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def _geojson(labels: LabelSet) -> list[tuple[dict, int]]:
    from osgeo import ogr

    shapes = []
    for wkb, cid in zip(labels.geometries_wkb, labels.class_ids, strict=True):
        shapes.append((json.loads(ogr.CreateGeometryFromWkb(wkb).ExportToJson()), int(cid)))
    return shapes


def rasterize_labels(
    labels: LabelSet, info: RasterInfo, window: Optional[tuple[int, int, int, int]] = None, all_touched: bool = False
) -> np.ndarray:
    """(h, w) uint8 mask of ``window`` (col, row, w, h; default the whole raster): class ids under the
    polygons (points: the one pixel they fall in), :data:`IGNORE` elsewhere. Later features win overlaps."""
    import rasterio
    from rasterio.features import rasterize
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    col, row, width, height = window or (0, 0, info.width, info.height)
    transform = window_transform(Window(col, row, width, height), rasterio.Affine(*info.transform))
    shapes = _geojson(labels)
    if not shapes:
        return np.full((height, width), IGNORE, np.uint8)
    return rasterize(
        shapes, out_shape=(height, width), transform=transform, fill=IGNORE, dtype="uint8", all_touched=all_touched or labels.kind == POINT
    )


def rasterize_mask(
    raster: str | os.PathLike,
    labels: LabelSet,
    output: str | os.PathLike,
    all_touched: bool = False,
    block: int = 2048,
    progress: Optional[Progress] = None,
) -> MaskReport:
    """Write the mask of ``labels`` on the grid of ``raster`` (a tiled uint8 GeoTIFF, nodata 255, with a
    colour table) and a JSON sidecar with the class table, block by block. Labels must already be in the
    raster's CRS (``read_labels(..., target_crs_wkt=...)``)."""
    import rasterio
    from rasterio.windows import Window

    from ..io.atomic import atomic_path
    from ..io.raster import iter_windows

    progress = ensure(progress)
    info = raster_info(raster)
    classes = labels.classes
    counts = np.zeros(256, np.int64)
    windows = list(iter_windows(info.width, info.height, block))
    profile = {
        "driver": "GTiff",
        "width": info.width,
        "height": info.height,
        "count": 1,
        "dtype": "uint8",
        "crs": info.crs_wkt,
        "transform": rasterio.Affine(*info.transform),
        "nodata": IGNORE,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
    }
    with atomic_path(output) as tmp:
        with rasterio.open(tmp, "w", **profile) as ds:
            for n, (c, r, w, h) in enumerate(windows):
                progress.check()
                mask = rasterize_labels(labels, info, (c, r, w, h), all_touched)
                counts += np.bincount(mask.ravel(), minlength=256)
                ds.write(mask[None], window=Window(c, r, w, h))
                progress.update(95.0 * (n + 1) / len(windows))
            labelled = int(counts[:IGNORE].sum())
            if labelled == 0:
                raise GeoDLError(
                    f"No label falls on a pixel of '{info.path}': the mask would be empty. Check that the labels "
                    "overlap the raster (and that small polygons cover a pixel centre, or use all-touched)."
                )
            ds.write_colormap(1, {c.id: tuple(int(c.color[i : i + 2], 16) for i in (1, 3, 5)) + (255,) for c in classes})
            ds.set_band_description(1, "class (255 = unlabelled)")
    atomic_write_text(sidecar_path(output), json.dumps({"kind": "mask", "classes": classes.to_json(), "raster": str(raster)}, indent=2))
    per_class = {c.name: int(counts[c.id]) for c in classes}
    warnings = list(labels.warnings)
    missing = [name for name, n in per_class.items() if n == 0]
    if missing:
        warnings.append(f"Class(es) {missing} cover no pixel (features smaller than a pixel?).")
    for warning in warnings:
        log.warning(warning)
    progress.update(100, f"{labelled} labelled pixels written to {output}")
    return MaskReport(str(output), labelled, per_class, warnings)


def check_mask_classes(values: Iterable[int], classes: ClassTable, source: str = "the mask") -> None:
    """Error naming the class ids found in a mask that the class table lacks."""
    unknown = sorted(set(int(v) for v in values) - set(classes.ids) - {IGNORE})
    if unknown:
        raise GeoDLError(
            f"Class id(s) {unknown} in {source} are not in the class table ({classes.ids}). Add them to the class "
            "table, or recode those pixels to 255 (unlabelled)."
        )


def mask_classes(path: str | os.PathLike, classes: Optional[ClassTable] = None) -> ClassTable:
    """The class table of a mask: given, else its sidecar, else built from the ids present."""
    import rasterio

    meta = read_sidecar(path)
    if classes is None and "classes" in meta:
        classes = ClassTable.from_json(meta["classes"])
    counts = np.zeros(256, np.int64)
    with rasterio.open(path) as ds:
        for _, window in ds.block_windows(1):
            counts += np.bincount(ds.read(1, window=window).ravel(), minlength=256)[:256]
    present = np.flatnonzero(counts[:IGNORE])
    if not len(present):
        raise GeoDLError(f"The mask '{path}' has no labelled pixel (all 255). Label some areas first (geodl:rasterizemask).")
    if classes is None:
        return ClassTable.from_ids(present.tolist())
    check_mask_classes(present.tolist(), classes, f"the mask '{path}'")
    return classes


# --- chips -------------------------------------------------------------------------------------------
@dataclass
class ChipReport:
    path: str
    count: int
    test_path: Optional[str]
    test_count: int
    per_class_pixels: dict[str, int]
    skipped_unlabelled: int
    skipped_nodata: int
    histogram_path: Optional[str] = None
    warnings: list[str] = field(default_factory=list)


def chip_raster(  # noqa: C901, PLR0912, PLR0915 - one streaming pass over the raster; to split next
    rasters: Sequence[str | os.PathLike],
    mask: str | os.PathLike,
    output: str | os.PathLike,
    patch_size: int = 64,
    stride: Optional[int] = None,
    padding: int = 0,
    classes: Optional[ClassTable] = None,
    test_output: Optional[str | os.PathLike] = None,
    test_fraction: float = 0.2,
    block_size_pixels: Optional[int] = None,
    histogram_output: Optional[str | os.PathLike] = None,
    min_labelled: int = 1,
    nodata: Optional[float] = None,
    band_names: Optional[Sequence[str]] = None,
    seed: int = 42,
    progress: Optional[Progress] = None,
) -> ChipReport:
    """Cut k×k image+mask chips every ``stride`` pixels (default k: no overlap) from the stack and the mask.

    ``padding`` pixels beyond each raster edge are covered too (the image mirrored, the mask unlabelled), so
    edge pixels get chips of their own. Chips with fewer than ``min_labelled`` labelled pixels or touching
    nodata are skipped. With ``test_output``, whole spatial blocks (``block_size_pixels``, default 4 chips)
    of chips go to the test file, about ``test_fraction`` of them, so test chips are not neighbours of
    training chips. ``histogram_output`` gets per-band histograms (PNG)."""
    import rasterio
    from rasterio.windows import Window

    from ..io.atomic import atomic_path, check_writable
    from ..io.raster import pixel_centre
    from .splits import split_blocked

    progress = ensure(progress)
    for p in (output, test_output, histogram_output):
        if p:
            check_writable(p)
    k = int(patch_size)
    stride = int(stride or k)
    if k < 2 or stride < 1 or padding < 0 or padding >= k:
        raise GeoDLError(f"Patch size must be at least 2, stride at least 1 and padding in [0, patch size); got {k}, {stride}, {padding}.")
    infos = stack_info(rasters, band_names)
    names = stacked_band_names(infos, band_names)
    info = infos[0]
    minfo = raster_info(mask)
    if not same_grid(minfo, info):
        raise GeoDLError(
            f"The mask '{mask}' is not on the grid of '{info.path}'. Rasterise the labels onto this raster (geodl:rasterizemask)."
        )
    classes = mask_classes(mask, classes)
    nodata_value = nodata if nodata is not None else info.nodata
    rows = list(range(-padding, info.height + padding - k + 1, stride)) or [-padding]
    cols = list(range(-padding, info.width + padding - k + 1, stride)) or [-padding]
    if info.height + 2 * padding < k or info.width + 2 * padding < k:
        raise GeoDLError(
            f"The raster ({info.width}×{info.height}) is smaller than one {k}×{k} chip; use a smaller "
            f"patch size or padding of at least {(k - min(info.width, info.height) + 1) // 2}."
        )

    chips: list[tuple[np.ndarray, np.ndarray, float, float]] = []
    skipped_unlabelled = skipped_nodata = 0
    width = cols[-1] + k - cols[0]
    with rasterio.open(mask) as mds:
        for n, r in enumerate(rows):
            progress.check()
            image = read_reflect(infos, cols[0], r, width, k)
            labels = mds.read(1, window=Window(cols[0], r, width, k), boundless=True, fill_value=IGNORE)
            ok = valid_mask(image, nodata_value)
            for c in cols:
                cc = c - cols[0]
                m = labels[:, cc : cc + k]
                if int(np.count_nonzero(m != IGNORE)) < min_labelled:
                    skipped_unlabelled += 1
                    continue
                if not ok[:, cc : cc + k].all():
                    skipped_nodata += 1
                    continue
                x, y = pixel_centre(info.transform, np.array(r + k / 2 - 0.5), np.array(c + k / 2 - 0.5))
                chips.append((image[:, :, cc : cc + k].astype(np.float32), m.copy(), float(x), float(y)))
            progress.update(80.0 * (n + 1) / len(rows))
    if not chips:
        raise GeoDLError(
            f"No {k}×{k} chip holds a labelled pixel ({skipped_unlabelled} empty, {skipped_nodata} on "
            "nodata). Label more areas, or use a larger patch size or a smaller stride."
        )
    present = np.unique(np.concatenate([m[m != IGNORE] for _, m, _, _ in chips]))
    check_mask_classes(present.tolist(), classes, f"the mask '{mask}'")

    index = np.arange(len(chips))
    test_idx = np.zeros(0, np.int64)
    warnings: list[str] = []
    if test_output and test_fraction > 0:
        majority = np.array([np.bincount(m[m != IGNORE]).argmax() for _, m, _, _ in chips])
        xy = np.array([(x, y) for _, _, x, y in chips])
        block = (block_size_pixels or 4 * k) * info.res[0]
        index, test_idx = split_blocked(majority, xy, block, test_fraction, seed)
        if not len(test_idx):
            warnings.append("Too few spatial blocks for a test split; all chips went to training.")
        else:  # chips straddling a block edge would share pixels with test chips: leave them out
            reach = k * info.res[0] - 1e-6
            d = np.abs(xy[index][:, None, :] - xy[test_idx][None, :, :]).max(axis=-1)
            overlapping = (d < reach).any(axis=1)
            if overlapping.any():
                warnings.append(f"{int(overlapping.sum())} training chip(s) overlapping test chips were left out.")
                index = index[~overlapping]

    def records(idx: np.ndarray):
        for i in idx:
            image, m, x, y = chips[int(i)]
            rec: dict = {name: image[b].ravel() for b, name in enumerate(names)}
            rec[LABEL] = m.astype(np.float32).ravel()
            rec[COORDS[0]], rec[COORDS[1]] = x, y
            yield rec

    meta = {
        "kind": CHIPS_KIND,
        "bands": names,
        "label": LABEL,
        "patch_size": k,
        "stride": stride,
        "padding": padding,
        "ignore_value": IGNORE,
        "classes": classes.to_json(),
        **source_meta(info, nodata_value, rasters),
        "mask": str(mask),
    }
    outputs = [(output, index)] + ([(test_output, test_idx)] if test_output and len(test_idx) else [])
    for path, idx in outputs:
        progress.check()
        with atomic_path(path) as tmp:
            with TFRecordWriter(tmp) as writer:
                for rec in records(idx):
                    writer.write(rec)
        atomic_write_text(sidecar_path(path), json.dumps({**meta, "count": int(len(idx))}, indent=2))
    counts = np.zeros(256, np.int64)
    for _, m, _, _ in chips:
        counts += np.bincount(m.ravel(), minlength=256)
    per_class = {c.name: int(counts[c.id]) for c in classes}
    hist_path = None
    if histogram_output:
        train_images = np.stack([chips[int(i)][0] for i in index])
        train_masks = np.stack([chips[int(i)][1] for i in index])
        hist_path = str(band_histograms(train_images, train_masks, names, classes, histogram_output))
    for w in warnings:
        log.warning(w)
    progress.update(
        100,
        f"{len(index)} training chips written to {output}" + (f", {len(test_idx)} test chips to {test_output}" if len(test_idx) else ""),
    )
    return ChipReport(
        str(output),
        int(len(index)),
        str(test_output) if len(test_idx) else None,
        int(len(test_idx)),
        per_class,
        skipped_unlabelled,
        skipped_nodata,
        hist_path,
        warnings,
    )


def band_histograms(
    images: np.ndarray,
    masks: np.ndarray,
    bands: Sequence[str],
    classes: ClassTable,
    output: str | os.PathLike,
    bins: int = 64,
    max_pixels: int = 200_000,
    seed: int = 0,
) -> Path:
    """Per-band histograms (PNG): all chip pixels in grey, labelled pixels per class in the class colour.
    ``images`` (n, bands, k, k) or (n, k, k, bands) as ``bands`` says; ``masks`` (n, k, k)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from ..io.atomic import atomic_path

    if images.shape[1] != len(bands):
        images = np.moveaxis(images, -1, 1)
    pixels = np.moveaxis(images, 1, -1).reshape(-1, len(bands))
    labels = masks.reshape(-1)
    rng = np.random.default_rng(seed)
    if len(pixels) > max_pixels:  # a sample is enough for a histogram and keeps this fast
        pick = rng.choice(len(pixels), max_pixels, replace=False)
        pixels, labels = pixels[pick], labels[pick]
    n = len(bands)
    ncols = min(n, 3)
    nrows = (n + ncols - 1) // ncols
    fig = Figure(figsize=(4 * ncols, 3 * nrows), dpi=100)
    for b, name in enumerate(bands):
        ax = fig.add_subplot(nrows, ncols, b + 1)
        values = pixels[:, b]
        edges = np.histogram_bin_edges(values[np.isfinite(values)], bins=bins)
        ax.hist(values, bins=edges, color="#999999", density=True, alpha=0.6, label="all")
        for c in classes:
            sel = values[labels == c.id]
            if len(sel):
                ax.hist(sel, bins=edges, density=True, histtype="step", color=c.color, label=c.name)
        ax.set_title(name)
        ax.tick_params(labelsize=7)
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format="png")
    return Path(output)


# --- reading chips -----------------------------------------------------------------------------------
@dataclass
class ChipSet:
    """Chips in memory: ``x`` (n, k, k, bands) float32, ``mask`` (n, k, k) uint8 class ids (255 = ignore)."""

    x: np.ndarray
    mask: np.ndarray
    xy: Optional[np.ndarray]
    bands: list[str]
    classes: ClassTable
    meta: dict = field(default_factory=dict)

    @property
    def patch_size(self) -> int:
        return int(self.x.shape[1])

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray) -> ChipSet:
        return ChipSet(self.x[index], self.mask[index], None if self.xy is None else self.xy[index], self.bands, self.classes, self.meta)

    def crop(self, size: int) -> ChipSet:
        return ChipSet(crop_patches(self.x, size), crop_patches(self.mask, size), self.xy, self.bands, self.classes, self.meta)

    def majority(self) -> np.ndarray:
        """Each chip's most frequent labelled class id (for stratified, blocked splits)."""
        out = np.empty(len(self), np.int64)
        for i, m in enumerate(self.mask):
            lab = m[m != IGNORE]
            out[i] = np.bincount(lab).argmax()
        return out


def centre_mask(y: np.ndarray, k: int) -> np.ndarray:
    """Sparse masks for point patches: only the centre pixel (k // 2, k // 2) labelled."""
    mask = np.full((len(y), k, k), IGNORE, np.uint8)
    mask[:, k // 2, k // 2] = np.asarray(y).astype(np.uint8)
    return mask


def label_mask(value: Any, k: int, source: str) -> np.ndarray:
    """The (k, k) uint8 mask of one sample's ``class`` feature, for the chip and series readers alike.

    One value (a point patch) labels the centre pixel only; k×k values (a chip) keep the class ids, anything
    that is not one (NaN, negative, 255 or more) becoming :data:`IGNORE`. Any other size is an error that
    starts with ``source`` (e.g. "The label 'class' of chip 3")."""
    lab = np.asarray(value, dtype=np.float64).ravel()
    if lab.size == 1:
        return centre_mask(lab.astype(np.int64), k)[0]
    if lab.size == k * k:
        return np.where(np.isfinite(lab) & (lab >= 0) & (lab < IGNORE), lab, IGNORE).astype(np.uint8).reshape(k, k)
    raise GeoDLError(f"{source} has {lab.size} values; expected 1 or {k * k}.")


def load_chips(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    bands: Optional[Sequence[str]] = None,
    label: str = LABEL,
    classes: Optional[ClassTable] = None,
) -> ChipSet:
    """Read chip TFRecords (from :func:`chip_raster` or Earth Engine ``neighborhoodToArray`` exports), or point
    patches (``class`` a single value: a mask with the centre pixel labelled)."""
    paths, meta, band_list = open_sample_files(paths, bands, "chip")
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    coords: list[tuple[float, float]] = []
    k = 0
    for n, example in enumerate(read_examples(paths)):
        if label not in example:
            raise GeoDLError(f"Chip {n} has no '{label}' property; found {sorted(example)}. Name the label property.")
        band_list = example_bands(example, n, band_list, label, "Chip")
        first = np.asarray(example[band_list[0]])
        if not k:
            k = int(round(np.sqrt(first.size)))
        if k * k != first.size:
            raise GeoDLError(f"Band '{band_list[0]}' of chip {n} has {first.size} values, not a {k}×{k} patch.")
        images.append(np.stack([np.asarray(example[b], np.float32).reshape(k, k) for b in band_list], axis=-1))
        masks.append(label_mask(example[label], k, f"The label '{label}' of chip {n}"))
        if (centre := example_xy(example)) is not None:
            coords.append(centre)
    if not images:
        raise GeoDLError(f"The chip file(s) {[str(p) for p in paths]} hold no chip.")
    mask = np.stack(masks)
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256)[:IGNORE])
    if not len(present):
        raise GeoDLError("The chips hold no labelled pixel (every label is 255). Label some areas first.")
    if classes is None:
        classes = ClassTable.from_json(meta["classes"]) if "classes" in meta else ClassTable.from_ids(present.tolist())
    check_mask_classes(present.tolist(), classes, "the chips")
    xy = np.array(coords) if len(coords) == len(images) else None
    return ChipSet(np.stack(images), mask, xy, band_list, classes, meta)


def is_chip_file(path: str | os.PathLike) -> bool:
    """True when the sample file holds label arrays (chips), not one class per sample."""
    meta = read_sidecar(path)
    if meta.get("kind") == CHIPS_KIND:
        return True
    if meta:
        return False
    for example in read_examples(path):
        return np.asarray(example.get(LABEL, [0])).size > 1
    return False


def write_chips(path: str | os.PathLike, chips: ChipSet) -> str:
    """Write chips (with a sidecar) in the chip layout: the held-out test chips of a training run, say."""
    from ..io.atomic import atomic_path

    with atomic_path(path) as tmp:
        with TFRecordWriter(tmp) as writer:
            for i in range(len(chips)):
                rec: dict = {b: chips.x[i, :, :, j].ravel() for j, b in enumerate(chips.bands)}
                rec[LABEL] = chips.mask[i].astype(np.float32).ravel()
                if chips.xy is not None:
                    rec[COORDS[0]], rec[COORDS[1]] = float(chips.xy[i, 0]), float(chips.xy[i, 1])
                writer.write(rec)
    meta = {
        **chips.meta,
        "kind": CHIPS_KIND,
        "bands": chips.bands,
        "label": LABEL,
        "patch_size": chips.patch_size,
        "ignore_value": IGNORE,
        "classes": chips.classes.to_json(),
        "count": len(chips),
    }
    atomic_write_text(sidecar_path(path), json.dumps(meta, indent=2))
    return str(path)
