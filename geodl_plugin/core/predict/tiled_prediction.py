"""Tiled U-Net inference without seams, strip by strip over the raster.

Tiles of ``tile`` pixels overlap by ``overlap``; each tile's probabilities are weighted by a window that is
flat in the middle and falls to zero over the overlap with a squared-sine ramp (after a ``margin`` of zero
weight, where the network sees the tile edge's zero padding). Neighbouring ramps sum to exactly one, so the
blend is a partition of unity: no seams, and away from the outer ``margin`` of each tile a pixel's
probabilities are those of an untiled pass (a test checks agreement). Tile offsets are multiples of 2^depth,
so every tile's pooling grid lines up with an untiled pass's.

Edges: the first tile starts ``overlap`` pixels before the region, so region pixels always lie in the flat
part of some tile; beyond the raster edge the image is mirrored. A raster smaller than one tile is simply
mirrored up to one tile. Only one strip of tiles (``tile`` rows × the region's width) and its overlap are in
memory at a time. Tiles go through the network in batches.

Outputs and checks are those of the pixel models (``prediction.predict_raster``): class ids (uint8, nodata
255, colour table), confidence (the highest probability, float32, nodata -1), optionally one probability band
per class, written atomically.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..data.chips import read_reflect
from ..data.classes import NODATA_CLASS
from ..io.raster import valid_mask
from ..models.onnx_engine import TileNetwork
from ..runtime.errors import GeoDLError
from .raster_prediction import CONFIDENCE_NODATA, PredictContext, PredictionOutputs, PredictResult

log = logging.getLogger("geodl")

DEFAULT_BATCH = 4


def ramp_window(tile: int, overlap: int, margin: int) -> np.ndarray:
    """1-D weights: 0 over ``margin``, squared-sine up to 1 by ``overlap - margin``, flat, and mirrored.
    ``w[j] + w[overlap - 1 - j] == 1`` for j < overlap, so tiles ``tile - overlap`` apart sum to one."""
    w = np.ones(tile, np.float64)
    if overlap:
        ramp_len = overlap - 2 * margin
        j = np.arange(overlap)
        t = np.clip((j - margin + 0.5) / ramp_len, 0.0, 1.0)
        r = np.sin(0.5 * np.pi * t) ** 2
        w[:overlap] = r
        w[tile - overlap :] = r[::-1]
    return w


def model_depth(model: Any, manifest: Optional[dict] = None) -> int:
    """The number of 2× poolings (from the manifest, else counted in the network)."""
    training = (manifest or {}).get("training") or {}
    depth = (training.get("network") or training.get("unet") or {}).get("depth")  # "unet": files before 0.3
    if depth:
        return int(depth)
    import keras

    return sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers) or 1


def tile_layout(width: int, height: int, tile: int, overlap: int, multiple: int) -> tuple[int, int, int]:
    """(tile, overlap, stride) rounded to multiples of ``multiple``; the tile shrinks for small regions."""
    up = lambda v: int(-(-int(v) // multiple) * multiple)  # noqa: E731
    overlap = up(max(overlap, 0))
    tile = up(max(tile, 2 * overlap + multiple))
    need = up(max(width, height) + 2 * overlap)  # one tile already covers the region
    tile = min(tile, max(need, 2 * overlap + multiple))
    return tile, overlap, tile - overlap


def blend_strips(
    read: Callable[[int, int, int, int], np.ndarray],
    predict: Callable[[np.ndarray], np.ndarray],
    width: int,
    height: int,
    n_classes: int,
    tile: int,
    overlap: int,
    margin: int,
    batch: int = DEFAULT_BATCH,
    check: Optional[Callable[[], None]] = None,
    report: Optional[Callable[[float], None]] = None,
    prepare: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    channels_first: bool = False,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(row, probabilities (C, h, width), image (bands, h, width))`` for consecutive finished row
    ranges of the region. ``read(col, row, w, h)`` returns (bands, h, w) in region coordinates (it may be
    asked for pixels outside the region); ``prepare`` turns it into network input (nodata filled, say);
    ``predict`` maps (n, tile, tile, bands) to (n, tile, tile, C), or with ``channels_first`` (n, bands,
    tile, tile) to (n, C, tile, tile) (tiles cut as read, no transposing copy).

    The next strip is read (and cut into tiles) in a second thread while the network runs on this one:
    reading then costs only the time the network leaves a core idle."""
    stride = tile - overlap
    nx = max(1, -(-(width + 2 * overlap - tile) // stride) + 1)
    ny = max(1, -(-(height + 2 * overlap - tile) // stride) + 1)
    span = (nx - 1) * stride + tile
    w1 = ramp_window(tile, overlap, margin)
    window = np.outer(w1, w1).astype(np.float32)
    acc = np.zeros((n_classes, tile, span), np.float32)
    weight = np.zeros((tile, span), np.float32)
    weighted = np.empty((n_classes, tile, tile), np.float32)  # one tile's weighted probabilities, reused

    def strip(i: int) -> tuple[int, np.ndarray, np.ndarray]:
        top = -overlap + i * stride
        image = read(-overlap, top, span, tile)  # (bands, tile, span)
        source = prepare(image) if prepare is not None else image
        if channels_first:
            tiles = np.empty((nx, source.shape[0], tile, tile), np.float32)
            for j in range(nx):
                tiles[j] = source[:, :, j * stride : j * stride + tile]
            return top, image, tiles
        tiles = np.empty((nx, tile, tile, source.shape[0]), np.float32)  # one transposing copy per tile
        for j in range(nx):
            tiles[j] = np.moveaxis(source[:, :, j * stride : j * stride + tile], 0, -1)
        return top, image, tiles

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="geodl-tiles") as reader:
        pending = reader.submit(strip, 0)
        for i in range(ny):
            if check:
                check()
            top, image, tiles = pending.result()
            if i + 1 < ny:
                pending = reader.submit(strip, i + 1)
            for b, size in batch_spans(nx, batch):
                probs = predict(tiles[b : b + size])
                for n, p in enumerate(probs):
                    j = (b + n) * stride
                    np.multiply(p if channels_first else np.moveaxis(p, -1, 0), window, out=weighted)
                    acc[:, :, j : j + tile] += weighted
                    weight[:, j : j + tile] += window
            last = i == ny - 1
            done = tile if last else stride  # rows before the next strip's top get no more tiles
            r0, r1 = max(top, 0), min(top + done, height)
            if r1 > r0:
                rows = slice(r0 - top, r1 - top)
                cols = slice(overlap, overlap + width)
                probs = acc[:, rows, cols] / np.maximum(weight[rows, cols], 1e-12)
                yield r0, probs, image[:, rows, cols]
            acc = np.concatenate([acc[:, stride:], np.zeros((n_classes, stride, span), np.float32)], axis=1)
            weight = np.concatenate([weight[stride:], np.zeros((stride, span), np.float32)], axis=0)
            if report:
                report(100.0 * (i + 1) / ny)


def batch_spans(n: int, batch: int) -> list[tuple[int, int]]:
    """(start, size) of the batches that take ``n`` tiles at most ``batch`` at a time, sizes as equal as
    possible: 5 tiles in batches of 4 go as 3 + 2, not 4 + 1 (or 4 + 1 padded to 8, a third of the
    compute wasted on empty tiles). A strip's batches have at most two sizes, so the compiled predict
    function is traced at most twice."""
    count = -(-n // max(1, batch))
    base, extra = divmod(n, count)
    sizes = [base + 1] * extra + [base] * (count - extra)
    starts = np.cumsum([0] + sizes[:-1])
    return [(int(s), size) for s, size in zip(starts, sizes)]


def keras_predictor(model: Any, multiple: int = 1, what: str = "U-Net") -> TileNetwork:
    """(n, tile, tile, bands) → (n, tile, tile, classes) for tiles whose sides are multiples of ``multiple``
    (a :class:`TileNetwork`: also channels first).

    On a CPU the network runs in onnxruntime (``onnx_engine``: a U-Net's tiles at ~1.2× and a temporal
    network's at ~1.6× their FLOP bound, bench_unet.py / bench_temporal.py). Otherwise, or where that
    is not possible, through the model's compiled predict function, XLA-compiled on TensorFlow (Keras only
    does so itself with a GPU): a tile batch has at most two shapes, so XLA compiles at most twice; if XLA
    cannot compile the model here, it runs without (same answer, slower). ``what`` names the network in the
    log."""
    import keras

    from ..models.onnx_engine import onnx_predictor

    fast = onnx_predictor(model, multiple)
    if fast is not None:
        return fast
    if keras.backend.backend() == "tensorflow" and not model.jit_compile:
        model.jit_compile = True
        model.predict_function = None  # rebuilt with XLA on the next call

    def predict(x: np.ndarray) -> np.ndarray:
        try:
            return keras.ops.convert_to_numpy(model.predict_on_batch(x))
        except Exception as exc:  # noqa: BLE001 - XLA's errors have no common type
            if not model.jit_compile:
                raise
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("XLA could not compile the %s (%s); predicting without it.", what, reason)
            model.jit_compile = False
            model.predict_function = None
            return keras.ops.convert_to_numpy(model.predict_on_batch(x))

    return TileNetwork(predict)


def best_class(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, h, w) probabilities → the position of the largest at each pixel (uint8; the first on a tie, as
    ``argmax``) and that probability (float32). Computed class plane by class plane: ``argmax`` and a gather
    across the class axis of a class-first block step along its largest stride, ~3× slower."""
    conf = np.array(probs[0], np.float32)
    best = np.zeros(conf.shape, np.uint8)
    for c in range(1, len(probs)):
        better = probs[c] > conf
        np.copyto(conf, probs[c], where=better)
        np.copyto(best, np.uint8(c), where=better)
    return best, conf


def write_strip(outputs: PredictionOutputs, row: int, probs: np.ndarray, ok: np.ndarray, ids: np.ndarray, counts: np.ndarray) -> int:
    """Write a finished strip of blended probabilities (C, h, width) at ``row``: class ids (nodata where not
    ``ok``), confidence and the probabilities; add its classes to ``counts``; return its valid pixels."""
    from rasterio.windows import Window

    best, conf = best_class(probs)
    classes = ids[best]
    if ok.all():
        counts += np.bincount(best.ravel(), minlength=len(counts))[: len(counts)]
    else:
        classes[~ok] = NODATA_CLASS
        conf[~ok] = CONFIDENCE_NODATA
        counts += np.bincount(best[ok], minlength=len(counts))[: len(counts)]
        if outputs.needs_probabilities:
            probs = np.where(ok[None], probs, CONFIDENCE_NODATA).astype(np.float32)
    outputs.write(Window(0, row, probs.shape[2], probs.shape[1]), classes, conf, probs)
    return int(ok.sum())


def predict_tiled(ctx: PredictContext) -> PredictResult:
    """Classify the context's region with a U-Net, tile by tile (``ctx.params.tiling``: tile size, overlap —
    0 means a quarter tile —, tiles a batch). The layout used is in the result's ``details``."""

    params, bundle, progress, nodata, infos = ctx.params, ctx.bundle, ctx.progress, ctx.nodata, ctx.infos
    col0, row0, width, height = ctx.region
    classes = bundle.classes
    ids = np.array(classes.ids, dtype=np.uint8)
    n_classes = len(classes)
    multiple = 2 ** model_depth(bundle.model, bundle.manifest)
    tiling = params.tiling
    tile_req = max(tiling.size, bundle.patch_size)
    overlap_req = tiling.overlap or tile_req // 4
    tile, overlap, _ = tile_layout(width, height, tile_req, overlap_req, multiple)
    margin = min(overlap // 4, max(0, (overlap - 1) // 2))
    batch = tiling.batch
    stats = bundle.statistics
    fill = stats[0] if stats else None
    network = keras_predictor(bundle.model, multiple)

    def read(c: int, r: int, w: int, h: int) -> np.ndarray:
        return read_reflect(infos, col0 + c, row0 + r, w, h)

    def prepare(block: np.ndarray) -> np.ndarray:
        ok = valid_mask(block, nodata)
        block = block.astype(np.float32, copy=False)
        if not ok.all():  # nodata pixels become the training mean, so they do not disturb their neighbours
            value = fill.reshape(-1, 1, 1) if fill is not None else np.float32(0)
            block = np.where(ok[None], block, value).astype(np.float32)
        return block

    counts = np.zeros(n_classes, dtype=np.int64)
    n_pixels = 0
    with contextlib.ExitStack() as stack:
        outputs = PredictionOutputs(stack, params, infos[0], width, height, ctx.transform, classes)
        progress.message(f"U-Net tiles of {tile}×{tile} px, overlap {overlap}, batches of {batch}")
        for r, probs, raw in blend_strips(
            read,
            network.run,  # in the network's own layout (channels_first below)
            width,
            height,
            n_classes,
            tile,
            overlap,
            margin,
            batch,
            check=progress.check,
            report=lambda p: progress.update(0.95 * p),
            prepare=prepare,
            channels_first=network.first,
        ):
            n_pixels += write_strip(outputs, r, probs, valid_mask(raw, nodata), ids, counts)
        outputs.finish(progress)
    result = ctx.result(n_pixels, counts, "segmented")
    result.details.update({"tile": tile, "overlap": overlap, "batch": batch})
    return result


def predict_patch_centres(bundle: Any, x: np.ndarray, batch: int = 32) -> np.ndarray:
    """Class ids a U-Net gives the centre pixel of each k×k patch (n, k, k, bands): how patch samples (whose
    label is their centre pixel) are scored by ``evaluate_model``."""
    import keras

    from ..data.chips import crop_patches, unet_patch_size

    if x.ndim != 4:
        raise GeoDLError("A U-Net is evaluated on image patches; these samples are single pixels.")
    k = x.shape[1]
    size = unet_patch_size(k, model_depth(bundle.model, bundle.manifest))
    patches = crop_patches(np.asarray(x, np.float32), size)
    centre = k // 2 - (k - size) // 2
    ids = np.array(bundle.classes.ids)
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), batch):
        probs = keras.ops.convert_to_numpy(bundle.model.predict_on_batch(patches[start : start + batch]))
        out[start : start + batch] = ids[probs[:, centre, centre, :].argmax(axis=-1)]
    return out
