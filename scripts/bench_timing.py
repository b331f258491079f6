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
from typing import Callable, Optional

import numpy as np

MATMUL_N = 3072


def matmul_cases(n: int = MATMUL_N) -> tuple[dict[str, Callable[[], object]], float]:
    """({name: run}, FLOPs) of an n×n float32 matmul through NumPy's BLAS and through ``keras.ops`` (the
    backend's own: Eigen or oneDNN on TensorFlow), each with all the cores. The machine's matmul rate is the
    faster of the two (:func:`matmul_rate`): the bound a network is held to is the best this CPU was seen to
    do, whichever library did it (measured here: OpenBLAS and oneDNN ~155 GFLOP/s, Eigen ~135, on 2 cores)."""
    import keras

    x = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    a, b = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
    runs = {
        "matmul_blas": lambda: float(np.sum(x @ y)),
        "matmul_keras": lambda: keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.matmul(a, b))),
    }
    return runs, 2.0 * n**3


def matmul_rate(best: dict[str, float], runs: dict[str, Callable[[], object]], flops: float) -> float:
    """FLOP/s of the fastest matmul among ``runs`` (their best seconds in ``best``)."""
    return flops / min(best[name] for name in runs)


def interleaved(
    cases: dict[str, Callable[[], object]],
    rounds: int,
    clock: Callable[[], float] = time.perf_counter,
    warm: bool = True,
    prepare: Optional[Callable[[str], None]] = None,
    every: Optional[dict[str, list[float]]] = None,
) -> dict[str, float]:
    """Best seconds of each case over ``rounds`` rounds, every case run once per round (after one untimed
    warm-up run each, unless ``warm`` is False). ``clock``: ``time.process_time`` for CPU seconds.
    ``prepare(name)`` runs, untimed, before each timed run of a case (e.g. removing its last outputs).
    ``every``: filled with each case's seconds round by round, for ratios of runs made side by side
    (:func:`paired_ratio`)."""
    if warm:
        for run in cases.values():
            run()
    best = {name: float("inf") for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            if prepare is not None:
                prepare(name)
            start = clock()
            run()
            seconds = clock() - start
            best[name] = min(best[name], seconds)
            if every is not None:
                every.setdefault(name, []).append(seconds)
    return best


def paired_ratio(every: dict[str, list[float]], numerator: str, denominator: str) -> float:
    """The median over rounds of ``numerator``'s seconds ÷ ``denominator``'s in the same round. The ratio of
    two bests can pair one case's quiet moment with the other's busy one; runs a second apart share the load."""
    return float(np.median(np.asarray(every[numerator]) / np.asarray(every[denominator])))


def load_average() -> float:
    """The 1-minute load average (how many other processes wanted the CPUs meanwhile); -1 where unknown."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0
