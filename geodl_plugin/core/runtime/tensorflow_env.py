"""The environment TensorFlow reads when it is imported: set for the worker, the scripts and the tests alike
(before any of them imports TensorFlow), so what is measured and tested is what a user's worker runs."""

from __future__ import annotations

from typing import MutableMapping

TENSORFLOW_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI / BF16 or AMX. On an
    # AVX2 CPU (the 2-core AMD EPYC this was built on) they were off, and turning them on trained the temporal
    # model ~25 % and the U-Net ~50 % more samples a second (interleaved A/B runs, same seeds).
    "TF_ENABLE_ONEDNN_OPTS": "1",
}


def tensorflow_environment(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """``env`` with :data:`TENSORFLOW_ENV`'s settings where it has none of its own (a user's own wins)."""
    for name, value in TENSORFLOW_ENV.items():
        env.setdefault(name, value)
    return env
