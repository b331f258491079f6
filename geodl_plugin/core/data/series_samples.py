"""Samples over time: labelled points → (dates, k, k, bands) patch sequences, masks → chip sequences.

Written in Earth Engine's TFRecord layout (``io/tfrecord.py``): one float feature per band and date named
``{band}_{YYYYMMDD}`` (k×k values, row-major), the class (one value for a point, k×k for a chip, 255 =
unlabelled) and the centre's map coordinates ``x``/``y``. Missing observations are stored as NaN, never as 0.
A sidecar (``<file>.json``) keeps the dates, the bands of one date, classes and grid facts.

The reader also takes Earth Engine exports of a multi-date image whose bands are named ``{band}_{YYYYMMDD}``
or ``{YYYYMMDD}_{band}`` (``ImageCollection.toBands()`` after renaming by date), or ``d{t}_{band}`` with a
``d{t}_doy`` feature (the day of year of date t) per date. Samples come back as a
:class:`~geodl_plugin.core.data.chips.ChipSet` whose images are network channels: for every date its bands,
then its day of year (``series.model_channels``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from typing import Iterable, Optional, Sequence

import numpy as np

from ..io.raster import pixel_centre, raster_info, world_to_pixel
from ..io.tfrecord import TFRecordWriter, read_examples
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .chips import CHIPS_KIND, IGNORE, ChipSet, label_mask, mask_classes
from .classes import ClassTable
from .labels import LabelSet
from .samples import COORDS, LABEL, MIN_SAMPLES_PER_CLASS, example_xy, open_sample_files, sidecar_path, source_meta
from .series import DOY, SeriesImage, as_date, date_key, day_of_year, parse_date

log = logging.getLogger("geodl")

SERIES_KIND = "series"
_BLOCK = 256
_INDEXED = re.compile(r"^d(\d+)_(.+)$")


def _series_meta(series: SeriesImage, kind: str, k: int, classes: ClassTable, extra: dict) -> dict:
    info = series.info
    return {
        "kind": kind,
        "bands": series.feature_names(),
        "label": LABEL,
        "patch_size": k,
        "series": {"dates": [d.isoformat() for d in series.dates], "bands": list(series.bands)},
        "ignore_value": IGNORE,
        "classes": classes.to_json(),
        **source_meta(info, None, [i.path for i in series.infos]),
        **extra,
    }


def _write(path: str | os.PathLike, records: Iterable[dict], meta: dict) -> int:
    from ..io.atomic import atomic_path

    with atomic_path(path) as tmp:
        with TFRecordWriter(tmp) as writer:
            for rec in records:
                writer.write(rec)
            count = writer.count
    sidecar_path(path).write_text(json.dumps({**meta, "count": count}, indent=2), encoding="utf-8")
    return count


def _record(series: SeriesImage, patch: np.ndarray, label: np.ndarray | float, x: float, y: float) -> dict:
    """patch (dates, bands, k, k) → one Example's features."""
    rec: dict = {}
    for t, date in enumerate(series.dates):
        for b, band in enumerate(series.bands):
            rec[f"{band}_{date_key(date)}"] = patch[t, b].astype(np.float32).ravel()
    rec[LABEL] = label
    rec[COORDS[0]], rec[COORDS[1]] = float(x), float(y)
    return rec


def extract_series_samples(
    series: SeriesImage, labels: LabelSet, output: str | os.PathLike, patch_size: int = 9, progress: Optional[Progress] = None
) -> dict:
    """k×k patch sequences at the label points. Points outside the raster are skipped; a point whose centre
    pixel is observed on no date is left out; both are counted. Returns a small report (count, per class,
    skipped, warnings)."""
    from ..io.atomic import check_writable

    progress = ensure(progress)
    check_writable(output)
    k = int(patch_size)
    if k < 1 or k % 2 == 0:
        raise GeoDLError(f"Patch size must be odd and at least 1 (got {k}); try {max(1, k | 1)}.")
    info = series.info
    xy = labels.points_xy()
    rows, cols = world_to_pixel(info.transform, xy[:, 0], xy[:, 1])
    inside = (rows >= 0) & (rows < info.height) & (cols >= 0) & (cols < info.width)
    if not inside.any():
        raise GeoDLError(
            f"None of the {len(xy)} label points falls inside the series' rasters. Check that labels and imagery cover the same area."
        )
    half = k // 2
    index = np.flatnonzero(inside)
    blocks = (rows[index] // _BLOCK) * (info.width // _BLOCK + 1) + cols[index] // _BLOCK
    records: list[dict] = []
    kept: list[int] = []
    never_observed = 0
    for n, block in enumerate(np.unique(blocks)):
        progress.check()
        members = index[blocks == block]
        r0, c0 = int(rows[members].min()) - half, int(cols[members].min()) - half
        r1, c1 = int(rows[members].max()) + half + 1, int(cols[members].max()) + half + 1
        window = series.read(c0, r0, c1 - c0, r1 - r0, edge="missing")
        for i in members:
            rr, cc = int(rows[i]) - r0, int(cols[i]) - c0
            patch = window[:, :, rr - half : rr + half + 1, cc - half : cc + half + 1]
            if not np.isfinite(patch[:, :, half, half]).all(axis=1).any():
                never_observed += 1
                continue
            records.append(_record(series, patch, float(labels.class_ids[i]), xy[i, 0], xy[i, 1]))
            kept.append(int(labels.class_ids[i]))
        progress.update(90.0 * (n + 1) / len(np.unique(blocks)))
    ids = np.array(kept, np.int64)
    per_class = {c.name: int(np.sum(ids == c.id)) for c in labels.classes}
    warnings = list(labels.warnings)
    if (~inside).sum():
        warnings.append(f"{int((~inside).sum())} label point(s) outside the raster were skipped.")
    if never_observed:
        warnings.append(f"{never_observed} point(s) observed on no date (all cloudy or nodata) were left out.")
    if sum(1 for v in per_class.values() if v) < 2:
        raise GeoDLError("Fewer than two classes have samples; a classifier needs at least two. Label more classes.")
    warnings += [
        f"Class '{name}' has only {v} samples; label more (at least {MIN_SAMPLES_PER_CLASS})."
        for name, v in per_class.items()
        if v < MIN_SAMPLES_PER_CLASS
    ]
    for w in warnings:
        log.warning(w)
    count = _write(output, records, _series_meta(series, SERIES_KIND, k, labels.classes, {}))
    progress.update(100, f"{count} patch sequences of {series.n_dates} dates written to {output}")
    return {
        "path": str(output),
        "count": count,
        "per_class": per_class,
        "skipped_outside": int((~inside).sum()),
        "skipped_unobserved": never_observed,
        "warnings": warnings,
    }


def chip_series(
    series: SeriesImage,
    mask: str | os.PathLike,
    output: str | os.PathLike,
    patch_size: int = 24,
    stride: Optional[int] = None,
    min_labelled: int = 1,
    classes: Optional[ClassTable] = None,
    progress: Optional[Progress] = None,
) -> dict:
    """k×k chip sequences with their k×k mask every ``stride`` pixels (default k). A chip keeps its missing
    observations (NaN); chips with fewer than ``min_labelled`` labelled pixels are skipped."""
    import rasterio
    from rasterio.windows import Window

    from ..io.atomic import check_writable

    progress = ensure(progress)
    check_writable(output)
    k, stride = int(patch_size), int(stride or patch_size)
    if k < 2 or stride < 1:
        raise GeoDLError(f"Chip size must be at least 2 and stride at least 1; got {k} and {stride}.")
    info, minfo = series.info, raster_info(mask)
    if (minfo.width, minfo.height) != (info.width, info.height):
        raise GeoDLError(
            f"The mask '{mask}' is not on the grid of the series. Rasterise the labels onto one of its rasters (geodl:rasterizemask)."
        )
    if info.width < k or info.height < k:
        raise GeoDLError(f"The series ({info.width}×{info.height}) is smaller than one {k}×{k} chip.")
    classes = mask_classes(mask, classes)
    rows = list(range(0, info.height - k + 1, stride))
    cols = list(range(0, info.width - k + 1, stride))
    records: list[dict] = []
    skipped = 0
    with rasterio.open(mask) as mds:
        for n, r in enumerate(rows):
            progress.check()
            strip = series.read(0, r, info.width, k)
            labels = mds.read(1, window=Window(0, r, info.width, k))
            for c in cols:
                m = labels[:, c : c + k]
                if int(np.count_nonzero(m != IGNORE)) < min_labelled:
                    skipped += 1
                    continue
                x, y = pixel_centre(info.transform, np.array(r + k / 2 - 0.5), np.array(c + k / 2 - 0.5))
                records.append(_record(series, strip[:, :, :, c : c + k], m.astype(np.float32).ravel(), float(x), float(y)))
            progress.update(90.0 * (n + 1) / len(rows))
    if not records:
        raise GeoDLError(f"No {k}×{k} chip holds a labelled pixel. Label more areas or use a smaller stride.")
    meta = _series_meta(series, CHIPS_KIND, k, classes, {"stride": stride, "mask": str(mask)})
    count = _write(output, records, meta)
    progress.update(100, f"{count} chip sequences written to {output}")
    return {"path": str(output), "count": count, "skipped_unlabelled": skipped}


def series_layout(
    names: Sequence[str], meta: Optional[dict] = None, example: Optional[dict] = None
) -> tuple[list[dt.date], list[str], list[list[str]]]:
    """(dates, bands of one date, per date the feature names of its bands) from a sample file's feature
    names: ``{band}_{YYYYMMDD}``, ``{YYYYMMDD}_{band}`` or ``d{t}_{band}`` (+ ``d{t}_doy``, or the sidecar's
    dates)."""
    meta = meta or {}
    skip = {LABEL, *COORDS}
    by_date: dict[dt.date, dict[str, str]] = {}
    indexed: dict[int, dict[str, str]] = {}
    for name in names:
        if name in skip:
            continue
        m = _INDEXED.match(name)
        if m:
            indexed.setdefault(int(m.group(1)), {})[m.group(2)] = name
            continue
        date = parse_date(name)
        if date is None:
            continue
        band = re.sub(r"(?<!\d)(?:19|20)\d\d[-_]?\d\d[-_]?\d\d(?!\d)", "", name).strip("_- ")
        if band.lower() == DOY:
            continue
        by_date.setdefault(date, {})[band] = name
    if indexed:
        steps = sorted(indexed)
        dates_meta = (meta.get("series") or {}).get("dates")
        if dates_meta and len(dates_meta) == len(steps):
            dates = [as_date(d) for d in dates_meta]
        elif example is not None and all(f"d{t}_{DOY}" in indexed[t].values() or f"d{t}_{DOY}" in example for t in steps):
            # a day of year without a year: dates in a nominal year, kept in the samples' order
            dates = [dt.date(2001, 1, 1) + dt.timedelta(days=int(np.asarray(example[f"d{t}_{DOY}"]).ravel()[0]) - 1) for t in steps]
        else:
            raise GeoDLError(
                "These samples name their bands d{t}_{band} but carry neither a d{t}_doy feature nor dates in a sidecar; give the dates."
            )
        per = [{b: n for b, n in indexed[t].items() if b != DOY} for t in steps]
    else:
        if not by_date:
            raise GeoDLError(
                f"No band of these samples is named per date ({list(names)[:6]}…). Name them "
                "{band}_{YYYYMMDD} (e.g. B2_20200518) or d{t}_{band}."
            )
        dates = sorted(by_date)
        per = [by_date[d] for d in dates]
    bands = list((meta.get("series") or {}).get("bands") or per[0].keys())
    for d, group in zip(dates, per):
        if set(group) != set(bands):
            raise GeoDLError(
                f"Date {d.isoformat()} has the bands {sorted(group)}, others {sorted(bands)}; every date needs the same bands."
            )
    return list(dates), bands, [[group[b] for b in bands] for group in per]


def load_series_samples(
    paths: str | os.PathLike | Iterable[str | os.PathLike], classes: Optional[ClassTable] = None, label: str = LABEL
) -> ChipSet:
    """Patch or chip sequences as a ChipSet of network channels (n, k, k, dates·(bands+1)) with NaN where not
    observed; the mask has only the centre labelled for point samples. ``meta["series"]`` holds the dates
    and bands."""
    files, meta, _ = open_sample_files(paths, None, "sample")
    nodata = meta.get("nodata")
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    coords: list[tuple[float, float]] = []
    layout = None
    k = 0
    for n, example in enumerate(read_examples(files)):
        if layout is None:
            layout = series_layout(list(example), meta, example)
            dates, bands, names = layout
            doy = day_of_year(dates)
        if label not in example:
            raise GeoDLError(f"Sample {n} has no '{label}' property; found {sorted(example)[:8]}….")
        first = np.asarray(example[names[0][0]])
        k = k or int(round(np.sqrt(first.size)))
        if k * k != first.size:
            raise GeoDLError(f"Feature '{names[0][0]}' of sample {n} has {first.size} values, not a k×k patch.")
        image = np.empty((k, k, len(dates), len(bands) + 1), np.float32)
        for t, group in enumerate(names):
            for b, name in enumerate(group):
                if name not in example:
                    raise GeoDLError(f"Sample {n} lacks the feature '{name}'.")
                image[:, :, t, b] = np.asarray(example[name], np.float32).reshape(k, k)
            image[:, :, t, len(bands)] = doy[t]
        values = image[..., : len(bands)]
        bad = ~np.isfinite(values).all(axis=-1, keepdims=True)
        if nodata is not None:
            bad |= (values == np.float32(nodata)).any(axis=-1, keepdims=True)
        values[np.broadcast_to(bad, values.shape)] = np.nan
        images.append(image.reshape(k, k, -1))
        masks.append(label_mask(example[label], k, f"The label of sample {n}"))
        if (centre := example_xy(example)) is not None:
            coords.append(centre)
    if layout is None:
        raise GeoDLError(f"The sample file(s) {[str(p) for p in files]} hold no sample.")
    dates, bands, _ = layout
    mask = np.stack(masks)
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256)[:IGNORE]).tolist()
    if classes is None:
        classes = ClassTable.from_json(meta["classes"]) if "classes" in meta else ClassTable.from_ids(present)
    unknown = sorted(set(present) - set(classes.ids))
    if unknown:
        raise GeoDLError(f"Class ids {unknown} in the samples are not in the class table ({classes.ids}).")
    feature_names = [f"{b}_{date_key(d)}" for d in dates for b in bands]
    meta = {**meta, "series": {"dates": [d.isoformat() for d in dates], "bands": bands}}
    xy = np.array(coords) if len(coords) == len(images) else None
    return ChipSet(np.stack(images), mask, xy, feature_names, classes, meta)


def write_series_chips(path: str | os.PathLike, chips: ChipSet) -> str:
    """Write series samples (network channels, as :func:`load_series_samples` gives them) back in the series
    layout, label arrays included: the held-out samples of a training run, say."""
    from .series import as_date

    series = chips.meta["series"]
    dates = [as_date(d) for d in series["dates"]]
    n_bands = len(series["bands"])
    k = chips.patch_size
    # Point patches (only the centre labelled) go back as point samples: one class value each, as extracted.
    points = bool(((chips.mask != IGNORE).sum(axis=(1, 2)) == 1).all() and (chips.mask[:, k // 2, k // 2] != IGNORE).all())

    def records() -> Iterable[dict]:
        for i in range(len(chips)):
            per_date = chips.x[i].reshape(k, k, len(dates), n_bands + 1)
            rec: dict = {
                f"{b}_{date_key(d)}": per_date[:, :, t, j].ravel() for t, d in enumerate(dates) for j, b in enumerate(series["bands"])
            }
            rec[LABEL] = float(chips.mask[i, k // 2, k // 2]) if points else chips.mask[i].astype(np.float32).ravel()
            if chips.xy is not None:
                rec[COORDS[0]], rec[COORDS[1]] = float(chips.xy[i, 0]), float(chips.xy[i, 1])
            yield rec

    meta = {
        **chips.meta,
        "kind": SERIES_KIND if points else CHIPS_KIND,
        "bands": chips.bands,
        "label": LABEL,
        "patch_size": k,
        "ignore_value": IGNORE,
        "classes": chips.classes.to_json(),
    }
    _write(path, records(), meta)
    return str(path)


def is_series_file(path: str | os.PathLike) -> bool:
    """True when a sample file holds bands per date (its sidecar says so, or its features are named by date)."""
    from .samples import read_sidecar

    meta = read_sidecar(path)
    if meta:
        return "series" in meta
    for example in read_examples(path):
        try:
            series_layout(list(example), None, example)
            return True
        except GeoDLError:
            return False
    return False
