"""How do my bands look, and how separable are my classes? Per-band statistics and histograms (overall and per
labelled class, with the Jeffries–Matusita distance of every class pair), and the area of each class of a
classified map. Both stream the raster block by block; results go to JSON and a PNG plot.

Jeffries–Matusita (JM) distance between two classes modelled as Gaussians over the bands: with the
Bhattacharyya distance B = ⅛ dᵀ S⁻¹ d + ½ ln(|S| / √(|S₁||S₂|)), d the difference of the class means and
S = (S₁+S₂)/2, JM = 2(1 − e^(−B)), from 0 (identical) to 2 (fully separable). Remote-sensing practice reads
JM ≥ 1.9 as well separated and JM < 1.0 as classes a classifier will confuse.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ..data.classes import NODATA_CLASS, ClassTable
from ..data.flatten import PixelSelector
from ..data.labels import LabelSet
from ..data.samples import read_stack_window, stack_info, stacked_band_names
from ..io.atomic import atomic_path, check_writable
from ..io.raster import iter_windows, raster_info, valid_mask
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure

log = logging.getLogger("geodl")

JM_POOR, JM_GOOD = 1.0, 1.9
_EARTH_RADIUS_M = 6371008.8


@dataclass
class _Moments:
    """Running count, sums and cross-products of pixel vectors (float64), min and max."""

    n_bands: int
    count: int = 0
    total: np.ndarray = field(init=False)
    cross: np.ndarray = field(init=False)
    low: np.ndarray = field(init=False)
    high: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.total = np.zeros(self.n_bands)
        self.cross = np.zeros((self.n_bands, self.n_bands))
        self.low = np.full(self.n_bands, np.inf)
        self.high = np.full(self.n_bands, -np.inf)

    def add(self, x: np.ndarray) -> None:
        """x: (n, bands)."""
        if not len(x):
            return
        x = x.astype(np.float64)
        self.count += len(x)
        self.total += x.sum(axis=0)
        self.cross += x.T @ x
        self.low = np.minimum(self.low, x.min(axis=0))
        self.high = np.maximum(self.high, x.max(axis=0))

    @property
    def mean(self) -> np.ndarray:
        return self.total / max(self.count, 1)

    @property
    def covariance(self) -> np.ndarray:
        n = max(self.count, 1)
        mean = self.mean
        cov = self.cross / n - np.outer(mean, mean)
        return cov * n / max(n - 1, 1)


def bhattacharyya(m1: np.ndarray, c1: np.ndarray, m2: np.ndarray, c2: np.ndarray) -> float:
    """Bhattacharyya distance of two Gaussians. A tiny ridge keeps a constant band from making S singular."""
    ridge = 1e-9 * max(float(np.trace(c1) + np.trace(c2)), 1e-12) / len(m1)
    c1 = c1 + ridge * np.eye(len(m1))
    c2 = c2 + ridge * np.eye(len(m1))
    s = (c1 + c2) / 2
    d = m1 - m2
    term1 = float(d @ np.linalg.solve(s, d)) / 8
    term2 = 0.5 * (np.linalg.slogdet(s)[1] - 0.5 * (np.linalg.slogdet(c1)[1] + np.linalg.slogdet(c2)[1]))
    return term1 + term2


def jeffries_matusita(b: float) -> float:
    return 2.0 * (1.0 - math.exp(-b))


def _band_report(m: _Moments, hist: np.ndarray, edges: np.ndarray, k: int) -> dict[str, Any]:
    cum = np.cumsum(hist)

    def pct(q: float) -> Optional[float]:
        if not cum[-1]:
            return None
        i = int(np.searchsorted(cum, q * cum[-1]))
        return float(edges[min(i + 1, len(edges) - 1)])

    var = float(m.covariance[k, k]) if m.count > 1 else 0.0
    return {
        "count": m.count,
        "min": float(m.low[k]) if m.count else None,
        "max": float(m.high[k]) if m.count else None,
        "mean": float(m.mean[k]) if m.count else None,
        "std": math.sqrt(max(var, 0.0)),
        "p02": pct(0.02),
        "p50": pct(0.5),
        "p98": pct(0.98),
        "histogram": hist.astype(int).tolist(),
    }


def summarize_bands(
    rasters: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    plot: Optional[str | os.PathLike] = None,
    labels: Optional[LabelSet] = None,
    nodata: Optional[float] = None,
    bins: int = 64,
    all_touched: bool = False,
    block: int = 512,
    progress: Optional[Progress] = None,
) -> dict[str, Any]:
    """Per-band statistics and histograms of ``rasters`` (a co-registered stack); with class ``labels``
    (polygons or points) also per class, and the JM/Bhattacharyya separability of every class pair. Two
    streaming passes: moments and range, then histograms on common bin edges. Writes JSON (+ PNG)."""
    progress = ensure(progress)
    check_writable(output)
    if plot:
        check_writable(plot)
    if bins < 2:
        raise GeoDLError(f"Use at least 2 histogram bins (got {bins}).")
    infos = stack_info(rasters)
    names = stacked_band_names(infos)
    info = infos[0]
    nodata_value = nodata if nodata is not None else info.nodata
    selector = PixelSelector(labels, info, all_touched)
    class_ids = labels.classes.ids if labels is not None else []
    windows = list(iter_windows(info.width, info.height, block))

    def pixels(share: float, offset: float):
        for i, (col, row, width, height) in enumerate(windows):
            progress.check()
            rr, cc, index = selector.select(col, row, width, height)
            if len(rr):
                data = read_stack_window(infos, col, row, width, height)
                ok = valid_mask(data, nodata_value)[rr, cc]
                values = data[:, rr[ok], cc[ok]].T
                ids = labels.class_ids[index[ok]] if labels is not None else None
                yield values, ids
            progress.update(offset + share * (i + 1) / len(windows))

    overall, per_class = _moments(pixels(50, 0), len(names), class_ids)
    edges = [
        np.linspace(overall.low[k], overall.high[k] if overall.high[k] > overall.low[k] else overall.low[k] + 1, bins + 1)
        for k in range(len(names))
    ]
    hist, class_hist = _histograms(pixels(45, 50), edges, class_ids)

    report: dict[str, Any] = {
        "kind": "bands",
        "rasters": [str(r) for r in rasters],
        "bands": names,
        "nodata": nodata_value,
        "pixels": overall.count,
        "bins": bins,
        "band_stats": {n: {**_band_report(overall, hist[k], edges[k], k), "edges": edges[k].tolist()} for k, n in enumerate(names)},
    }
    warnings: list[str] = []
    if labels is not None:
        report["classes"] = _class_reports(labels.classes, per_class, class_hist, edges, names)
        report["separability"], sep_warnings = _separability(labels.classes, per_class)
        warnings += sep_warnings
        if selector.outside:
            warnings.append(f"{selector.outside} label point(s) outside the raster were skipped.")
    report["warnings"] = warnings
    for w in warnings:
        log.warning(w)
    _write_json(report, output)
    if plot:
        plot_band_summary(report, plot, labels.classes if labels is not None else None)
    progress.update(100, f"statistics of {overall.count} pixels written to {output}")
    return report


def _moments(blocks: Any, n_bands: int, class_ids: list[int]) -> tuple[_Moments, dict[int, _Moments]]:
    """The first pass: moments overall and per class."""
    overall = _Moments(n_bands)
    per_class = {cid: _Moments(n_bands) for cid in class_ids}
    for values, ids in blocks:
        overall.add(values)
        for cid in class_ids:
            per_class[cid].add(values[ids == cid])
    if not overall.count:
        raise GeoDLError("No valid pixel to summarize: all are nodata, or the labels miss the raster.")
    return overall, per_class


def _histograms(blocks: Any, edges: list[np.ndarray], class_ids: list[int]) -> tuple[np.ndarray, dict[int, Any]]:
    """The second pass: histograms on the common edges, overall and per class."""
    bins = len(edges[0]) - 1
    hist = np.zeros((len(edges), bins), np.int64)
    class_hist = {cid: np.zeros((len(edges), bins), np.int64) for cid in class_ids}
    for values, ids in blocks:
        for k in range(len(edges)):
            hist[k] += np.histogram(values[:, k], edges[k])[0]
            for cid in class_ids:
                class_hist[cid][k] += np.histogram(values[ids == cid, k], edges[k])[0]
    return hist, class_hist


def _class_reports(
    classes: ClassTable, per_class: dict[int, _Moments], class_hist: dict[int, np.ndarray], edges: list[np.ndarray], names: list[str]
) -> dict[str, Any]:
    out = {}
    for c in classes:
        m = per_class[c.id]
        out[c.name] = {
            "id": c.id,
            "color": c.color,
            "pixels": m.count,
            "bands": {n: _band_report(m, class_hist[c.id][k], edges[k], k) for k, n in enumerate(names)},
        }
    return out


def _separability(classes: ClassTable, per_class: dict[int, _Moments]) -> tuple[dict[str, Any], list[str]]:
    pairs = []
    warnings = []
    present = [c for c in classes if per_class[c.id].count > 1]
    for i, a in enumerate(present):
        for b in present[i + 1 :]:
            ma, mb = per_class[a.id], per_class[b.id]
            dist = bhattacharyya(ma.mean, ma.covariance, mb.mean, mb.covariance)
            jm = jeffries_matusita(dist)
            pairs.append({"a": a.name, "b": b.name, "bhattacharyya": dist, "jeffries_matusita": jm})
            if jm < JM_POOR:
                warnings.append(
                    f"Classes '{a.name}' and '{b.name}' overlap in these bands (Jeffries–Matusita "
                    f"{jm:.2f} of 2); a classifier will confuse them. Add bands, or merge or relabel them."
                )
    missing = [c.name for c in classes if per_class[c.id].count <= 1]
    if missing:
        warnings.append(f"Class(es) {missing} have fewer than 2 valid pixels; no separability for them.")
    measure = {
        "measure": "Jeffries-Matusita (0-2; >= 1.9 well separated, < 1.0 confused)",
        "pairs": pairs,
        "min_jeffries_matusita": min((p["jeffries_matusita"] for p in pairs), default=None),
    }
    return measure, warnings


def _write_json(report: dict[str, Any], output: str | os.PathLike) -> None:
    with atomic_path(output) as tmp:
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")


def plot_band_summary(report: dict[str, Any], png_path: str | os.PathLike, classes: Optional[ClassTable]) -> None:
    """One panel per band: the histogram overall (grey) and per class (its colour), with the JM of the
    least separable pair in the title."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    names = report["bands"]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 2.8 * rows + 0.6), dpi=100)
    for k, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        stats = report["band_stats"][name]
        edges = np.array(stats["edges"])
        centres = (edges[:-1] + edges[1:]) / 2
        width = edges[1] - edges[0]
        total = max(stats["count"], 1)
        ax.bar(centres, np.array(stats["histogram"]) / total, width=width, color="#cccccc", label="all")
        if classes is not None:
            for c in classes:
                counts = np.array(report["classes"][c.name]["bands"][name]["histogram"])
                if counts.sum():
                    ax.step(centres, counts / counts.sum(), where="mid", color=c.color, label=c.name)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    if classes is not None:
        fig.axes[0].legend(fontsize=7)
        worst = min(report["separability"]["pairs"], key=lambda p: p["jeffries_matusita"], default=None)
        if worst is not None:
            fig.suptitle(
                f"least separable: {worst['a']} / {worst['b']}, Jeffries–Matusita {worst['jeffries_matusita']:.2f} of 2", fontsize=10
            )
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")


def _pixel_areas_m2(info: Any, rows: np.ndarray) -> np.ndarray:
    """Area (m²) of a pixel in each of ``rows``: constant in a projected CRS; on the sphere for degrees."""
    from osgeo import osr

    a, b, _, d, e, f = info.transform[:6]
    srs = osr.SpatialReference()
    srs.ImportFromWkt(info.crs_wkt)
    if not srs.IsGeographic():
        metres = srs.GetLinearUnits() or 1.0
        return np.full(len(rows), abs(a * e - b * d) * metres * metres)
    lat_top = np.radians(f + e * rows)
    lat_bottom = np.radians(f + e * (rows + 1))
    return _EARTH_RADIUS_M**2 * math.radians(abs(a)) * np.abs(np.sin(lat_top) - np.sin(lat_bottom))


def summarize_classified(
    raster: str | os.PathLike,
    output: str | os.PathLike,
    plot: Optional[str | os.PathLike] = None,
    classes: Optional[ClassTable] = None,
    block: int = 1024,
    progress: Optional[Progress] = None,
) -> dict[str, Any]:
    """Pixels, area (ha) and share (%) of each class of a classified map (band 1). Class names and colours
    come from ``classes`` (e.g. the model file's), else the raster's colour table and 'class N'."""
    progress = ensure(progress)
    check_writable(output)
    if plot:
        check_writable(plot)
    import rasterio
    from rasterio.windows import Window

    info = raster_info(raster)
    if np.dtype(info.dtype).kind not in "iu":
        raise GeoDLError(
            f"'{raster}' is {info.dtype}; a classified map holds integer class ids. Pick the class raster, not the confidence."
        )
    nodata = info.nodata if info.nodata is not None else NODATA_CLASS
    counts: dict[int, int] = {}
    area: dict[int, float] = {}
    windows = list(iter_windows(info.width, info.height, block))
    with rasterio.open(raster) as ds:
        try:
            colormap = ds.colormap(1)
        except ValueError:
            colormap = {}
        for i, (col, row, width, height) in enumerate(windows):
            progress.check()
            values = ds.read(1, window=Window(col, row, width, height)).astype(np.int64)
            pixel_area = _pixel_areas_m2(info, np.arange(row, row + height, dtype=np.float64))
            for v in np.unique(values):
                if v == nodata:
                    continue
                hit = values == v
                counts[int(v)] = counts.get(int(v), 0) + int(hit.sum())
                area[int(v)] = area.get(int(v), 0.0) + float((hit.sum(axis=1) * pixel_area).sum())
            progress.update(95.0 * (i + 1) / len(windows))
    if not counts:
        raise GeoDLError(f"'{raster}' holds no classified pixel (all are nodata {nodata}).")
    known = {c.id: c for c in classes} if classes is not None else {}
    total_area = sum(area.values())
    items = []
    for v in sorted(counts):
        c = known.get(v)
        colour = c.color if c else (_hex(colormap[v]) if v in colormap else "#999999")
        items.append(
            {
                "id": v,
                "name": c.name if c else f"class {v}",
                "color": colour,
                "pixels": counts[v],
                "area_ha": area[v] / 1e4,
                "percent": 100.0 * area[v] / total_area,
            }
        )
    report = {
        "kind": "classified",
        "raster": str(raster),
        "nodata": nodata,
        "pixels": sum(counts.values()),
        "area_ha": total_area / 1e4,
        "classes": items,
    }
    _write_json(report, output)
    if plot:
        plot_class_areas(report, plot)
    progress.update(100, f"areas of {len(items)} classes written to {output}")
    return report


def _hex(rgba: Sequence[int]) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgba[:3])


def plot_class_areas(report: dict[str, Any], png_path: str | os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    items = report["classes"]
    fig = Figure(figsize=(max(4.0, 0.8 * len(items) + 2), 3.4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    bars = ax.bar([i["name"] for i in items], [i["area_ha"] for i in items], color=[i["color"] for i in items], edgecolor="#333333")
    for bar, item in zip(bars, items):
        ax.annotate(f"{item['percent']:.1f}%", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("area (ha)")
    ax.set_title(f"{report['area_ha']:.1f} ha classified", fontsize=10)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
