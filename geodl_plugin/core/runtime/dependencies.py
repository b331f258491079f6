"""Which optional Python packages are importable, what breaks without each, and how to install it.

The check at plugin start is cheap (``find_spec``, no import); asking TensorFlow which device it will train
on imports it, so the plugin does that in a background task.
"""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable, Optional

from .environment import active_runtime, qgis_python_executable, read_runtime

__all__ = ["qgis_python_executable"]  # kept here for its callers; it lives with the runtime it makes


@dataclass(frozen=True)
class Dependency:
    module: str
    package: str
    needed_for: str
    feature: str  # the capability switched off without it: "deep_learning", "earth_engine", ...


DEPENDENCIES: tuple[Dependency, ...] = (
    Dependency("tensorflow", "tensorflow-cpu", "training and prediction with neural networks", "deep_learning"),
    Dependency("keras", "keras", "the pixel DNN and U-Net models", "deep_learning"),
    Dependency("sklearn", "scikit-learn", "the random-forest baseline and accuracy metrics", "classic_ml"),
    Dependency("rasterio", "rasterio", "reading and writing rasters", "rasters"),
    Dependency("ee", "earthengine-api", "Earth Engine imagery and exports", "earth_engine"),
)


@dataclass(frozen=True)
class DependencyStatus:
    dependency: Dependency
    available: bool
    version: Optional[str]


def is_importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _version(dep: Dependency) -> Optional[str]:
    for dist in (dep.package, dep.module, "tensorflow"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


# Features that run wholly in the worker process: geodl's own ML runtime provides them when it is set up.
WORKER_FEATURES = ("deep_learning", "classic_ml")


def _runtime_version(dep: Dependency, packages: dict[str, str], backend: str) -> Optional[str]:
    if dep.module == "tensorflow":  # "a Keras backend": torch stands in for TensorFlow in a torch runtime
        return packages.get("torch") if backend == "torch" else (packages.get("tensorflow") or packages.get("tensorflow-cpu"))
    return packages.get(dep.package) or packages.get(dep.module)


def check_dependencies(deps: Iterable[Dependency] = DEPENDENCIES) -> list[DependencyStatus]:
    """What QGIS's Python has, except that the worker's features count as present when geodl's own ML
    runtime is set up (the worker runs there, not in QGIS's Python)."""
    root = active_runtime()
    runtime = read_runtime(root) if root is not None else None
    result = []
    for dep in deps:
        if runtime is not None and dep.feature in WORKER_FEATURES:
            version = _runtime_version(dep, runtime.packages, runtime.backend)
            if version is not None:
                result.append(DependencyStatus(dep, True, f"{version} (geodl runtime)"))
                continue
        ok = is_importable(dep.module)
        result.append(DependencyStatus(dep, ok, _version(dep) if ok else None))
    return result


def missing(statuses: Iterable[DependencyStatus]) -> list[Dependency]:
    return [s.dependency for s in statuses if not s.available]


def unavailable_features(statuses: Iterable[DependencyStatus]) -> set[str]:
    return {d.feature for d in missing(statuses)}


def _externally_managed() -> bool:
    return (Path(sysconfig.get_paths()["stdlib"]) / "EXTERNALLY-MANAGED").exists()


def install_command(packages: Iterable[str]) -> str:
    """The one command that installs ``packages`` into QGIS's Python."""
    names = list(dict.fromkeys(packages))
    numpy_major = _numpy_major()
    if numpy_major is not None and numpy_major < 2:
        names.append('"numpy<2"')  # keep GDAL's numpy bindings working
    flags = ["--user"]
    if _externally_managed():
        flags.append("--break-system-packages")
    return f"{qgis_python_executable()} -m pip install {' '.join(flags)} {' '.join(names)}"


def _numpy_major() -> Optional[int]:
    try:
        return int(metadata.version("numpy").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return None


def missing_message(statuses: Iterable[DependencyStatus]) -> Optional[str]:
    """A user-facing sentence naming what is missing, what it disables and the install command."""
    absent = missing(statuses)
    if not absent:
        return None
    what = "; ".join(f"{d.package} (needed for {d.needed_for})" for d in absent)
    if any(d.feature in WORKER_FEATURES for d in absent):
        return (
            f'geodl: missing Python package(s): {what}. The rest of geodl works. Press "Set up the ML '
            f"runtime\" in the GeoDL dock's Status tab (or run geodl:setupruntime): it installs them into "
            f"geodl's own environment and leaves QGIS's Python as it is."
        )
    return (
        f"geodl: missing Python package(s): {what}. The rest of geodl works. To install, run: "
        f"{install_command(d.package for d in absent)} — then restart QGIS."
    )


def describe_training_device() -> str:
    """Which device Keras will train on, e.g. "GPU: NVIDIA H100 (TensorFlow 2.20.0)" or "CPU ..."."""
    import keras  # noqa: PLC0415 - heavy, imported on demand

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            names = []
            for gpu in gpus:
                details = tf.config.experimental.get_device_details(gpu)
                names.append(details.get("device_name", gpu.name))
            return f"GPU: {', '.join(names)} (TensorFlow {tf.__version__})"
        return f"CPU (TensorFlow {tf.__version__} sees no GPU; to use one, set up the GPU runtime in the Status tab)"
    if backend == "torch":
        import torch  # noqa: PLC0415

        if torch.cuda.is_available():
            return f"GPU: {torch.cuda.get_device_name(0)} (Keras on torch {torch.__version__})"
        return f"CPU (Keras on torch {torch.__version__} sees no GPU)"
    return f"CPU (Keras backend {backend})"
