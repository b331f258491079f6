"""Make ``import tensorflow`` fail in this process as where TensorFlow is not installed, so a test on Keras'
torch backend shows that engine stands alone (a torch-only runtime: Windows, where TensorFlow has no GPU
build), although the test machine has TensorFlow installed."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Any


class _NoTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """An import hook under which ``import tensorflow`` fails as where it is not installed. (An entry of None
    in ``sys.modules`` would not do: Keras takes a name present there for TensorFlow being loaded. Raising in
    ``find_spec`` would not either: torch asks ``importlib.util.find_spec`` whether TensorFlow exists.) The
    spec found has no origin, which torch reads as "absent"; loading it raises."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name == "tensorflow" or name.startswith("tensorflow."):
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec: Any) -> Any:
        raise ModuleNotFoundError(f"No module named '{spec.name}'", name=spec.name)

    def exec_module(self, module: Any) -> None:  # never reached: create_module raises
        raise ModuleNotFoundError(module.__name__)


def block_tensorflow() -> None:
    """Install the hook (before anything imports TensorFlow; one already imported stays)."""
    if "tensorflow" in sys.modules:
        raise RuntimeError("TensorFlow is already imported in this process")
    sys.meta_path.insert(0, _NoTensorFlow())
