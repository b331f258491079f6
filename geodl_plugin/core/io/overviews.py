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
