"""Train/test splits. Spatially blocked splits keep neighbouring pixels on one side, because samples a few
metres apart are near-duplicates and inflate accuracy when split at random."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..runtime.errors import GeoDLError


def split_random(y: np.ndarray, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random split: about ``test_fraction`` of each class goes to the test side."""
    _check_fraction(test_fraction)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(len(idx) * test_fraction))
        if len(idx) > 1:
            n_test = min(max(n_test, 1), len(idx) - 1)
        else:
            n_test = 0
        test.append(idx[:n_test])
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx, test_idx


def split_blocked(
    y: np.ndarray, xy: Optional[np.ndarray], block_size: float, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Whole square blocks of ``block_size`` map units go to the test side, per class, until about
    ``test_fraction`` of that class's samples are there."""
    _check_fraction(test_fraction)
    if xy is None:
        raise GeoDLError("A spatially blocked split needs sample coordinates (x, y); these samples have none. Use a random split.")
    if block_size <= 0:
        raise GeoDLError("The block size of a blocked split must be positive.")
    rng = np.random.default_rng(seed)
    bx = np.floor(xy[:, 0] / block_size).astype(np.int64)
    by = np.floor(xy[:, 1] / block_size).astype(np.int64)
    block = bx * 1_000_003 + by
    test_mask = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        blocks = rng.permutation(np.unique(block[members]))
        target = len(members) * test_fraction
        taken = 0
        for b in blocks[:-1] if len(blocks) > 1 else []:  # always leave one block for training
            if taken >= target:
                break
            sel = members[block[members] == b]
            test_mask[sel] = True
            taken += len(sel)
    return np.flatnonzero(~test_mask), np.flatnonzero(test_mask)


def _check_fraction(f: float) -> None:
    if not 0.0 <= f < 1.0:
        raise GeoDLError(f"The test fraction must be in [0, 1); got {f}.")
