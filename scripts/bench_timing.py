"""Timing shared by the FLOP-bound benches (``bench_unet.py``, ``bench_temporal.py``): the machine's matmul rate
and the work it bounds, measured interleaved in one process.

On a shared machine the load changes from second to second. A matmul rate measured once at the start and a
prediction timed a minute later can see different loads, and their ratio then says more about the neighbours
than about the code. So every case (the matmul included) runs once per round, round after round, and each
keeps its best time: all of them get the same chances at a quiet moment. The load average is recorded with
the figures.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

MATMUL_N = 3072


def matmul_case(n: int = MATMUL_N) -> tuple[Callable[[], object], float]:
    """(run, FLOPs) of an n×n float32 matmul through ``keras.ops`` (the backend's BLAS, its threads)."""
    import keras

    a = keras.ops.convert_to_tensor(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32))
    b = keras.ops.convert_to_tensor(np.random.default_rng(1).standard_normal((n, n)).astype(np.float32))
    return (lambda: keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.matmul(a, b)))), 2.0 * n**3


def interleaved(
    cases: dict[str, Callable[[], object]], rounds: int, clock: Callable[[], float] = time.perf_counter, warm: bool = True
) -> dict[str, float]:
    """Best seconds of each case over ``rounds`` rounds, every case run once per round (after one untimed
    warm-up run each, unless ``warm`` is False). ``clock``: ``time.process_time`` for CPU seconds."""
    if warm:
        for run in cases.values():
            run()
    best = {name: float("inf") for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            start = clock()
            run()
            best[name] = min(best[name], clock() - start)
    return best


def load_average() -> float:
    """The 1-minute load average (how many other processes wanted the CPUs meanwhile); -1 where unknown."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0
