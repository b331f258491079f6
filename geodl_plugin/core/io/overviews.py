"""Overview levels computed block by block, while a prediction writes its outputs.

Building overviews after the outputs are closed means reading every output back and resampling it: about a
fifth of a whole prediction's time here. The blocks are in memory anyway when they are written, so each
level's piece of a block is computed then (by the output writer's thread, overlapping the classification of
the next block) and written into overview levels that were created empty. Only a block's pyramid is in memory
at a time.

Class rasters get the **mode** of each f×f window (nodata ignored; a window with no data stays nodata; a tie
goes to the smallest class id), float rasters the **mean** of the valid pixels: what GDAL's MODE and AVERAGE
resampling give. Each level is derived from the previous one's exact counts or sums, so level 8 is the mode
over the whole 8×8 window, not a mode of modes.

A block's pieces line up with the overview grid only when the block's offsets are multiples of the largest
factor; for others the caller builds the overviews the usual way at the end (``aligned``).

``mode_levels`` and ``mean_levels`` are the NumPy statements of the rules; the writer calls ``*_fast``, the
same rules compiled by numba, working through the block in strips that stay in the core's cache (the NumPy
mode makes a full-resolution pass over the whole block per class). The tests hold both to window-by-window
definitions.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def overview_factors(width: int, height: int, smallest: int = 128) -> list[int]:
    """2, 4, 8 … while the level keeps at least ``smallest`` pixels a side; none for rasters up to 512 px."""
    if max(width, height) <= 512:
        return []
    return [f for f in (2, 4, 8, 16, 32) if max(width, height) / f >= smallest]


def aligned(col_off: int, row_off: int, factors: Sequence[int]) -> bool:
    return not factors or (col_off % factors[-1] == 0 and row_off % factors[-1] == 0)


def _sum2x2(a: np.ndarray) -> np.ndarray:
    """Sum of each 2×2 window; an odd last row or column is summed alone (the window is cut by the edge)."""
    h, w = a.shape
    if h % 2 or w % 2:
        padded = np.zeros((h + h % 2, w + w % 2), a.dtype)
        padded[:h, :w] = a
        a = padded
    return a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]


def _check_factors(factors: Sequence[int]) -> None:
    if list(factors) != [2 ** (i + 1) for i in range(len(factors))]:
        raise ValueError(f"factors must be 2, 4, 8 … in order; got {list(factors)}")


def mode_levels(block: np.ndarray, factors: Sequence[int], nodata: int) -> list[np.ndarray]:
    """(h, w) uint8 class ids → one array per factor: the most frequent valid id of each window."""
    _check_factors(factors)
    best: list[np.ndarray] = []
    best_count: list[np.ndarray] = []
    shape = block.shape
    for _ in factors:
        shape = (-(-shape[0] // 2), -(-shape[1] // 2))
        best.append(np.full(shape, nodata, block.dtype))
        best_count.append(np.zeros(shape, np.uint16))
    present = np.flatnonzero(np.bincount(block.ravel(), minlength=256))
    for value in present[present != nodata]:
        count = (block == value).view(np.uint8)  # 0/1; a 2×2 sum fits in uint8 up to 8×8 windows
        for level in range(len(factors)):
            count = _sum2x2(count if level < 3 else count.astype(np.uint16))
            more = count > best_count[level]  # strictly more: a tie keeps the smaller id, seen first
            np.copyto(best[level], value, where=more, casting="unsafe")
            np.maximum(best_count[level], count, out=best_count[level], casting="unsafe")
    return best


def mean_levels(block: np.ndarray, factors: Sequence[int], nodata: float) -> list[np.ndarray]:
    """(h, w) floats → one float32 array per factor: the mean of each window's valid pixels (nodata where
    there are none)."""
    _check_factors(factors)
    valid = block != nodata
    total = np.where(valid, block, 0).astype(np.float32)
    count = valid.astype(np.float32)
    levels = []
    for _ in factors:
        total, count = _sum2x2(total), _sum2x2(count)
        with np.errstate(invalid="ignore", divide="ignore"):
            levels.append(np.where(count > 0, total / count, np.float32(nodata)).astype(np.float32))
    return levels


def mode_levels_fast(block: np.ndarray, factors: Sequence[int], nodata: int) -> list[np.ndarray]:
    """:func:`mode_levels` through compiled code, strip by strip (:func:`_mode_pyramid`): a 1024² block of a
    four-class map in 1.6–2.4 ms, against 5–8 ms when each pixel was added to its window's counter and more
    when the NumPy version made a full-resolution pass per class (a sixth of the writer's time). Same answers,
    ties included; the NumPy version where numba is missing."""
    _check_factors(factors)
    kernels = _compiled_pyramids()
    if kernels is None or block.ndim != 2 or block.dtype != np.uint8 or not factors:
        return mode_levels(block, factors, nodata)
    present_in, pyramid, _ = kernels
    block = np.ascontiguousarray(block)
    out, offsets, levels = _level_buffer(block.shape, factors, np.uint8)
    present = np.flatnonzero(present_in(block))
    values = present[present != nodata].astype(np.uint8)  # ascending: the first best is the smallest id
    pyramid(block, values, len(factors), np.uint8(nodata), out, offsets)
    return levels


def _level_buffer(shape: tuple[int, ...], factors: Sequence[int], dtype: type) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """One flat buffer the compiled kernels fill with every level (they take arrays, not lists of them), the
    offset of each level in it, and each level as a 2-D view of its part."""
    h, w = shape
    shapes = [(-(-h // f), -(-w // f)) for f in factors]
    offsets = np.cumsum([0, *(a * b for a, b in shapes)]).astype(np.int64)
    out: np.ndarray = np.empty(int(offsets[-1]), dtype)
    return out, offsets, [out[offsets[i] : offsets[i + 1]].reshape(level) for i, level in enumerate(shapes)]


def _present(block):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """Which of the 256 values occur in a uint8 block (compiled by numba)."""
    seen = np.zeros(256, np.bool_)
    for v in block.ravel():
        seen[v] = True
    return seen


def _mode_pyramid(block, values, n_levels, nodata, out, offsets):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """Compiled by numba (:func:`_compiled_pyramids`). The block is walked in strips as tall as the largest window.
    A strip's counts are kept class by class ((class, row, column) for each level): the finest level's come
    from one straight pass over the strip per class (each window's four pixels compared with the class), every
    coarser level's from the 2×2 sums of the level below, so each level's mode is over the exact counts of its
    whole window; the mode is then the largest of count·256 + (255 − class index) over the classes, row by row.
    Class by class, every loop is a plain vector loop: a 1024² block of a 4-class map takes 1.6–2.4 ms, against
    5–8 ms when each pixel was added to its window's counter (a chain of dependent loads and stores); at 32
    classes it is still ~1.8× faster. A strip cut by the block's odd edge is copied out with nodata first."""
    h, w = block.shape
    k = max(len(values), 1)
    top = 1 << n_levels
    wl0 = (w + 1) >> 1
    padded = np.empty((top, 2 * wl0), np.uint8)  # a strip cut by an odd edge, filled out with nodata
    for r0 in range(0, h, top):
        rows = min(top, h - r0)
        hl, wl = (rows + 1) >> 1, wl0
        src, s0 = block, r0
        if rows & 1 or w & 1:  # windows cut by the edge: nodata is never counted
            padded[:] = nodata
            padded[:rows, :w] = block[r0 : r0 + rows]
            src, s0 = padded, 0
        counts = np.zeros((k, hl, wl), np.uint16)
        for v in range(len(values)):
            val = values[v]
            for i in range(hl):
                a, b = src[s0 + 2 * i], src[s0 + 2 * i + 1]
                for j in range(wl):
                    c = 2 * j
                    same = np.uint16(a[c] == val) + np.uint16(a[c + 1] == val)
                    counts[v, i, j] = same + np.uint16(b[c] == val) + np.uint16(b[c + 1] == val)
        for level in range(n_levels):
            if level > 0:
                below, hb, wb = counts, hl, wl
                hl, wl = (hl + 1) >> 1, (wl + 1) >> 1
                counts = np.zeros((k, hl, wl), np.uint16)
                for v in range(k):
                    for i in range(hl):
                        i0 = 2 * i
                        i1 = i0 + 1 if i0 + 1 < hb else i0
                        wi = np.uint16(i1 != i0)
                        for j in range(wl):
                            j0 = 2 * j
                            j1 = j0 + 1 if j0 + 1 < wb else j0
                            wj = np.uint16(j1 != j0)
                            top_row = below[v, i0, j0] + below[v, i0, j1] * wj
                            counts[v, i, j] = top_row + below[v, i1, j0] * wi + below[v, i1, j1] * (wi & wj)
            base = offsets[level] + (r0 >> (level + 1)) * wl
            key = np.empty(wl, np.int32)
            for i in range(hl):
                key[:] = 0  # count above, 255 - class index below: the max is the mode, the smallest id on a tie
                for v in range(len(values)):
                    tag = np.int32(255 - v)
                    for j in range(wl):
                        key[j] = max(key[j], (np.int32(counts[v, i, j]) << 8) | tag)
                for j in range(wl):
                    out[base + i * wl + j] = values[255 - (key[j] & 255)] if key[j] >> 8 else nodata
    return out


_PYRAMID_KERNELS: list = []


def _compiled_pyramids():  # type: ignore[no-untyped-def]  # noqa: ANN202
    """The numba-compiled (:func:`_present`, :func:`_mode_pyramid`, :func:`_mean_pyramid`), machine code
    cached on disk by numba; None without numba."""
    if not _PYRAMID_KERNELS:
        try:
            import numba

            def compiled(cache: bool) -> tuple:
                jit = numba.njit(nogil=True, cache=cache)
                return (jit(_present), jit(_mode_pyramid), jit(_mean_pyramid))

            try:
                kernels = compiled(cache=True)
            except RuntimeError:  # no writable cache location: compiled anew in each process
                kernels = compiled(cache=False)
            _PYRAMID_KERNELS.append(kernels)
        except Exception:  # noqa: BLE001 - numba missing or broken: the NumPy version answers
            _PYRAMID_KERNELS.append(None)
    return _PYRAMID_KERNELS[0]


def mean_levels_fast(block: np.ndarray, factors: Sequence[int], nodata: float) -> list[np.ndarray]:
    """:func:`mean_levels` through compiled code (one pass for the finest level's sums, then sums of those);
    the NumPy version where numba is missing. Sums in float64, so it matches the definition at least as
    closely as the NumPy version's float32 sums."""
    _check_factors(factors)
    kernels = _compiled_pyramids()
    if kernels is None or block.ndim != 2 or not factors:
        return mean_levels(block, factors, nodata)
    out, offsets, levels = _level_buffer(block.shape, factors, np.float32)
    kernels[2](np.ascontiguousarray(block, np.float32), np.float32(nodata), len(factors), out, offsets)
    return levels


def _mean_pyramid(block, nodata, n_levels, out, offsets):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """Compiled by numba: the sums and counts of valid pixels per window, finest level from the pixels, each
    coarser one from the level below (like :func:`_mode_pyramid`), then sum / count or nodata. Each window
    gathers its four pixels (or four sums) by index, clamped at an odd edge and weighted 0 there: straight-line
    code, where loops bounded by the edge and sums scattered into the next level took three times longer."""
    h, w = block.shape
    hl, wl = (h + 1) >> 1, (w + 1) >> 1
    total = np.empty((hl, wl), np.float64)
    count = np.empty((hl, wl), np.int32)
    for i in range(hl):
        r0 = 2 * i
        row2 = r0 + 1 < h
        r1 = r0 + 1 if row2 else r0
        for j in range(wl):
            c0 = 2 * j
            col2 = c0 + 1 < w
            c1 = c0 + 1 if col2 else c0
            a, b, c, d = block[r0, c0], block[r0, c1], block[r1, c0], block[r1, c1]
            oka = (a != nodata) & (a == a)
            okb = (b != nodata) & (b == b) & col2
            okc = (c != nodata) & (c == c) & row2
            okd = (d != nodata) & (d == d) & col2 & row2
            total[i, j] = (
                (np.float64(a) if oka else 0.0)
                + (np.float64(b) if okb else 0.0)
                + (np.float64(c) if okc else 0.0)
                + (np.float64(d) if okd else 0.0)
            )
            count[i, j] = np.int32(oka) + np.int32(okb) + np.int32(okc) + np.int32(okd)
    for level in range(n_levels):
        if level > 0:
            below_total, below_count = total, count
            hb, wb = hl, wl
            hl, wl = (hl + 1) >> 1, (wl + 1) >> 1
            total = np.empty((hl, wl), np.float64)
            count = np.empty((hl, wl), np.int32)
            for i in range(hl):
                i0 = 2 * i
                i1 = i0 + 1 if i0 + 1 < hb else i0
                wi = i1 != i0
                for j in range(wl):
                    j0 = 2 * j
                    j1 = j0 + 1 if j0 + 1 < wb else j0
                    wj = j1 != j0
                    total[i, j] = (
                        below_total[i0, j0]
                        + (below_total[i0, j1] if wj else 0.0)
                        + (below_total[i1, j0] if wi else 0.0)
                        + (below_total[i1, j1] if wi and wj else 0.0)
                    )
                    count[i, j] = (
                        below_count[i0, j0]
                        + (below_count[i0, j1] if wj else 0)
                        + (below_count[i1, j0] if wi else 0)
                        + (below_count[i1, j1] if wi and wj else 0)
                    )
        base = offsets[level]
        for i in range(hl):
            for j in range(wl):
                n = count[i, j]
                out[base + i * wl + j] = np.float32(total[i, j] / n) if n else nodata
    return out
