"""Shared fixtures. pytest-qgis starts a real QgsApplication (offscreen) before this file is imported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from geodl_plugin.core.runtime.tensorflow_env import tensorflow_environment

tensorflow_environment(os.environ)  # the worker's TensorFlow settings, for the tests that run it in process

REPO = Path(__file__).resolve().parents[1]
# The pixel DNN's compiled kernels (core/models/dense_kernel.py) are kept here, not in the user's cache.
os.environ.setdefault("GEODL_KERNEL_CACHE", str(REPO / ".pytest_cache" / "geodl-kernels"))
SAMPLE_DATA = REPO / "data" / "sample"
SCENE = SAMPLE_DATA / "LC08_L1TP_224078_20200518_20200518_01_RT.TIF"
POLYGONS = SAMPLE_DATA / "LC08_L1TP_224078_20200518_20200518_01_RT_polygons.gpkg"
POINTS = SAMPLE_DATA / "LC08_L1TP_224078_20200518_20200518_01_RT_points.gpkg"


@pytest.fixture(scope="session")
def sample_scene() -> Path:
    """The real Landsat 8 scene (fetched by `make sample-data`, which `make test` runs first)."""
    if not SCENE.exists():
        pytest.fail("The sample scene is missing: run `make sample-data` (make test does it for you).")
    return SCENE


_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the test process with pytest's own status, after its summary is printed, without the interpreter's
    teardown: once TensorFlow has been imported in-process (the core tests train models directly), destroying
    QgsApplication during interpreter shutdown segfaults on QGIS 3.22. The plugin itself never loads
    TensorFlow inside QGIS (core/worker.py), so this affects test processes only."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


QGIS_PYTHON = "/usr/bin/python3"  # the Python QGIS 3.22 runs on Debian 12


@pytest.fixture(scope="session")
def geodl_runtime(tmp_path_factory):
    """geodl's own ML runtime, made as a new user's button press makes it: a venv from QGIS's Python, filled
    from the package index with the shipped TensorFlow-CPU requirements (pip's cache may serve the files).
    Made once per session (about 2 minutes on 2 cores) and shared by the tests that need it."""
    import time

    from geodl_plugin.core.runtime.environment import RuntimeSpec, create_runtime
    from geodl_plugin.core.runtime.progress import Progress

    root = tmp_path_factory.mktemp("geodl-runtime") / "runtime"
    trace: dict = {"progress": [], "messages": []}
    started = time.perf_counter()
    info = create_runtime(
        root,
        RuntimeSpec("tensorflow", "cpu", installer="pip"),  # pip's per-package progress is checked; uv has its own tests
        base_python=QGIS_PYTHON,
        progress=Progress(on_progress=trace["progress"].append, on_message=trace["messages"].append),
    )
    trace["seconds"] = time.perf_counter() - started
    return root, info, trace
