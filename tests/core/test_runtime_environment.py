"""geodl's own ML runtime (core/runtime/environment.py): made from QGIS's Python with the shipped pins, the
worker running in it without QGIS's site-packages, cancel and failure leaving nothing half-made, remove, and
the GPU detection that pre-fills the choice; made with uv where the machine has it, with venv and pip where
not (core/runtime/uv_installer.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from geodl_plugin.core.runtime import environment
from geodl_plugin.core.runtime.environment import (
    MANIFEST,
    GpuInfo,
    RuntimeSpec,
    choose_installer,
    create_runtime,
    describe_runtime,
    detect_gpu,
    read_runtime,
    recommended_spec,
    remove_runtime,
    runtime_python,
    set_active_runtime,
    venv_python,
)
from geodl_plugin.core.runtime.errors import Cancelled, GeoDLError
from geodl_plugin.core.runtime.progress import Progress
from geodl_plugin.core.runtime.uv_installer import UV_ENV, find_uv
from tests.conftest import QGIS_PYTHON


def _running(marker: str) -> list[str]:
    """The command lines of running processes that contain ``marker`` (a build folder's full path: a pattern
    on its name alone could match another test run's processes)."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        if marker in line:
            lines.append(line)
    return lines


def _fake_runtime(root: Path) -> Path:
    """A bare venv with a manifest: enough for remove/replace checks, without installing anything."""
    subprocess.run([QGIS_PYTHON, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    (root / MANIFEST).write_text(json.dumps({"backend": "torch", "device": "cpu", "python_version": "3.11.2"}))
    return root


def _leftovers(root: Path) -> list[Path]:
    return sorted(root.parent.glob(f".{root.name}-*"))


# --- detection and choices -----------------------------------------------------------------------------
def _script(path: Path, text: str) -> str:
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_gpu_detection_reads_nvidia_smi(tmp_path):
    # No NVIDIA GPU here: stand-in nvidia-smi executables print what the real one prints for two GPUs / fails.
    two = _script(tmp_path / "smi-two", 'echo "NVIDIA H100 80GB HBM3, 550.54.15"\necho "NVIDIA H100 80GB HBM3, 550.54.15"\n')
    gpu = detect_gpu(two)
    assert gpu == GpuInfo(("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"), "550.54.15")
    assert "driver 550.54.15" in gpu.describe()
    none = _script(tmp_path / "smi-none", 'echo "NVIDIA-SMI has failed because it could not communicate" >&2\nexit 9\n')
    assert detect_gpu(none) is None


def test_recommended_choice_follows_the_gpu_and_the_system():
    gpu = GpuInfo(("NVIDIA RTX A2000",), "535")
    assert recommended_spec(None, "linux") == RuntimeSpec("tensorflow", "cpu")
    assert recommended_spec(gpu, "linux") == RuntimeSpec("tensorflow", "cuda")
    assert recommended_spec(gpu, "win32") == RuntimeSpec("torch", "cuda")  # TensorFlow: no GPU build there
    assert recommended_spec(gpu, "darwin") == RuntimeSpec("tensorflow", "cpu")


def test_bad_choices_are_named(tmp_path):
    with pytest.raises(GeoDLError, match="Unknown device 'gpu'"):
        RuntimeSpec("tensorflow", "gpu").validate()
    with pytest.raises(GeoDLError, match="Unknown ML backend 'jax'"):
        RuntimeSpec("jax", "cpu").validate()
    with pytest.raises(GeoDLError, match="wheel folder .* does not exist"):
        RuntimeSpec(wheel_dir=str(tmp_path / "nope")).validate()
    for backend in ("tensorflow", "torch"):
        for device in ("cpu", "cuda"):
            assert RuntimeSpec(backend, device).requirements_file().exists()


# --- failure, cancel, remove ---------------------------------------------------------------------------
@pytest.mark.slow  # makes a venv (ensurepip): ~15-25 s here
def test_offline_install_from_a_folder_without_the_wheels_fails_cleanly(tmp_path, monkeypatch):
    """An air-gapped install reads only the wheel folder (--no-index): an empty one fails with pip's reason,
    leaves the previous runtime in place and no half-made folder. No uv on this PATH: the default installer
    falls back to venv and pip, and says so."""
    _without_uv(monkeypatch)
    root = _fake_runtime(tmp_path / "runtime")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    seen: list[str] = []
    with pytest.raises(GeoDLError, match="pip exit code") as error:
        create_runtime(root, RuntimeSpec(wheel_dir=str(wheels)), base_python=QGIS_PYTHON, progress=Progress(on_message=seen.append))
    assert "creating the environment with venv and pip" in seen
    assert "No matching distribution" in str(error.value) or "Could not find" in str(error.value)
    assert read_runtime(root) is not None and read_runtime(root).backend == "torch"  # untouched
    assert _leftovers(root) == []


@pytest.mark.slow
def test_cancel_kills_pip_and_removes_the_half_made_environment(tmp_path):
    root = _fake_runtime(tmp_path / "runtime")
    build = f"{root.parent}/.{root.name}-new-"  # the half-made environment's folder, pip's own path
    seen: list[str] = []
    pips: list[str] = []

    def cancel() -> bool:
        if not any(m.startswith("collecting") for m in seen):
            return False
        pips.extend(line for line in _running(build) if "pip install" in line)  # pip is at work: cancel
        return True

    started = time.monotonic()
    with pytest.raises(Cancelled):
        create_runtime(
            root,
            RuntimeSpec("tensorflow", "cpu", installer="pip"),
            base_python=QGIS_PYTHON,
            progress=Progress(on_message=seen.append, is_cancelled=cancel),
        )
    assert pips and time.monotonic() - started < 120  # cancelled while pip ran from the build folder
    assert _leftovers(root) == [] and read_runtime(root).backend == "torch"
    assert not [line for line in _running(build) if "pip install" in line]  # pip is gone with its folder


def test_remove_deletes_only_a_geodl_runtime(tmp_path):
    other = tmp_path / "not-a-runtime"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(GeoDLError, match="not a geodl runtime"):
        remove_runtime(other)
    assert (other / "keep.txt").exists()
    root = _fake_runtime(tmp_path / "runtime")
    (tmp_path / ".runtime-new-abc").mkdir()  # a build an earlier crash left behind
    assert runtime_python(root) == str(venv_python(root))
    assert remove_runtime(root) is True and not root.exists() and _leftovers(root) == []
    assert remove_runtime(root) is False
    assert "No geodl ML runtime" in describe_runtime(root)


# --- the real thing: made from the index, the worker trains and predicts in it -------------------------
@pytest.mark.slow
def test_runtime_from_the_index_has_the_pinned_stack_and_reports_progress(geodl_runtime):
    root, info, trace = geodl_runtime
    assert read_runtime(root) == info
    assert info.backend == "tensorflow" and info.device == "cpu" and info.installer == "pip"
    assert info.packages["keras"] == "3.15.1" and info.packages["tensorflow-cpu"] == "2.20.0"
    assert info.packages["numba"] == "0.68.1"  # the pixel DNN's compiled kernel
    assert info.packages["onnxruntime"] == "1.32.0" and info.packages["tf2onnx"] == "1.17.0"  # tiled prediction
    assert info.packages["numpy"].startswith("1.")  # QGIS's osgeo is bridged in, so numpy follows QGIS's major
    assert info.osgeo_from and Path(info.osgeo_from, "osgeo").is_dir()
    values = trace["progress"]
    assert values == sorted(values) and values[-1] == 100  # monotonic, to the end
    messages = trace["messages"]
    assert any(m.startswith("collecting") and "keras" in m for m in messages), messages[-20:]
    assert any(m.startswith(("installing ", "installed")) for m in messages), messages[-20:]
    assert _leftovers(root) == []
    print(f"\nruntime made in {trace['seconds']:.0f} s")


@pytest.mark.slow
def test_worker_trains_and_predicts_in_the_runtime_without_qgis_packages(geodl_runtime, tmp_path):
    import rasterio

    from geodl_plugin.core.data.labels import read_labels
    from geodl_plugin.core.data.samples import extract_samples
    from geodl_plugin.core.families import predict_raster, train_model
    from geodl_plugin.core.io.raster import raster_info
    from geodl_plugin.core.predict.raster_prediction import PredictParams
    from geodl_plugin.core.runtime.dependencies import describe_training_device
    from geodl_plugin.core.runtime.worker import Worker, worker_environment, worker_python
    from geodl_plugin.core.train.trainer import TrainParams
    from tests.core.synthetic import grid_points, two_class_scene, write_points

    root, _, _ = geodl_runtime
    os.environ.pop("GEODL_WORKER_PYTHON", None)
    set_active_runtime(root)  # what the plugin does at start from its setting
    try:
        python = worker_python()
        assert python == str(venv_python(root))
        probe = (
            "import json, os, sys, importlib.util as u, osgeo.gdal\n"  # find_spec: no TensorFlow import
            "print(json.dumps({'path': sys.path, 'keras': u.find_spec('keras').origin,"
            " 'rasterio': u.find_spec('rasterio').origin, 'osgeo': osgeo.gdal.__file__,"
            " 'backend': os.environ['KERAS_BACKEND']}))"
        )
        seen = json.loads(
            subprocess.run(
                [python, "-c", probe], env=worker_environment(python), capture_output=True, text=True, check=True, timeout=300
            ).stdout.splitlines()[-1]
        )
        assert not any("dist-packages" in p or "/.venv/" in p for p in seen["path"]), seen["path"]
        assert seen["keras"].startswith(str(root)) and seen["rasterio"].startswith(str(root))
        assert seen["osgeo"].startswith("/usr/lib/python3/dist-packages/osgeo")  # only osgeo is QGIS's
        assert seen["backend"] == "tensorflow"
        # tiled prediction (U-Net, temporal) runs through onnxruntime there, converted and checked against Keras
        tiles = (
            "from geodl_plugin.core.models.unet import build_unet\n"
            "from geodl_plugin.core.models.onnx_engine import onnx_predictor\n"
            "print(onnx_predictor(build_unet(3, 2, [0.0] * 3, [1.0] * 3, depth=1, base_filters=4)) is not None)"
        )
        done = subprocess.run([python, "-c", tiles], env=worker_environment(python), capture_output=True, text=True, timeout=600)
        assert done.stdout.strip().splitlines()[-1:] == ["True"], done.stderr[-2000:]

        raster = two_class_scene(tmp_path / "scene.tif", size=64)
        xy, names = grid_points(size=64, step=4)
        labels = read_labels(write_points(tmp_path / "p.gpkg", xy, names), "name", target_crs_wkt=raster_info(raster).crs_wkt)
        samples = extract_samples([raster], labels, tmp_path / "s.tfrecord.gz").path
        worker = Worker()  # one process for the three jobs: TensorFlow is imported once
        try:
            assert "CPU (TensorFlow 2.20.0" in worker.call(describe_training_device)
            result = worker.call(train_model, TrainParams([str(samples)], str(tmp_path / "m.geodl"), epochs=5))
            assert result.metrics.overall_accuracy > 0.95
            worker.call(predict_raster, PredictParams([str(raster)], str(tmp_path / "m.geodl"), str(tmp_path / "map.tif")))
        finally:
            worker.close()
        with rasterio.open(tmp_path / "map.tif") as ds:
            classes = ds.read(1)
        assert (classes[8:, :30] == classes[40, 10]).mean() > 0.95 and (classes[:, 34:] == classes[40, 50]).mean() > 0.95
        assert classes[40, 10] != classes[40, 50]  # the two halves got the two classes
    finally:
        set_active_runtime(None)


def test_worker_environment_in_the_runtime_holds_only_the_plugin(tmp_path):
    from geodl_plugin.core.runtime.worker import _PACKAGE_PARENT, worker_environment

    root = _fake_runtime(tmp_path / "runtime")  # its manifest says torch
    qgis_env = {"PYTHONPATH": "/usr/share/qgis/python", "PYTHONHOME": "/usr", "PATH": "/usr/bin"}
    env = worker_environment(str(venv_python(root)), qgis_env)
    assert env["PYTHONPATH"] == _PACKAGE_PARENT and "PYTHONHOME" not in env and env["PYTHONNOUSERSITE"] == "1"
    assert env["KERAS_BACKEND"] == "torch" and env["PATH"] == "/usr/bin"
    assert worker_environment(str(venv_python(root)), {"KERAS_BACKEND": "tensorflow"})["KERAS_BACKEND"] == "tensorflow"
    plain = worker_environment(QGIS_PYTHON, qgis_env)  # QGIS's own Python: QGIS's path, as before
    assert plain["PYTHONPATH"].startswith(_PACKAGE_PARENT) and "KERAS_BACKEND" not in plain
    # TensorFlow's oneDNN kernels on in every worker (off by default on AVX2 CPUs), unless the user says otherwise
    assert env["TF_ENABLE_ONEDNN_OPTS"] == plain["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert worker_environment(QGIS_PYTHON, {"TF_ENABLE_ONEDNN_OPTS": "0"})["TF_ENABLE_ONEDNN_OPTS"] == "0"


# --- uv where the machine has it, venv and pip where not -----------------------------------------------
def _real_uv() -> str:
    """The uv requirements/dev.txt installs (the ``uv`` package knows where its binary is), or one on PATH."""
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
    if not found:
        pytest.fail("uv is missing: `make setup` installs it (requirements/dev.txt).")
    return found


def _without_uv(monkeypatch) -> None:
    """This process as on a machine without uv: none configured, none on PATH."""
    monkeypatch.delenv(UV_ENV, raising=False)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not shutil.which("uv", path=p)]
    monkeypatch.setenv("PATH", os.pathsep.join(path))


def _wheel(folder: Path, version: str) -> Path:
    """A pure-Python wheel of ``geodl-offline-probe`` (a name no index holds): installed, it came from the folder."""
    folder.mkdir(exist_ok=True)
    info = f"geodl_offline_probe-{version}.dist-info"
    files = {
        "geodl_offline_probe/__init__.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: geodl-offline-probe\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: geodl-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    digest = {p: base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b"=").decode() for p, c in files.items()}
    record = "".join(f"{p},sha256={digest[p]},{len(c.encode())}\n" for p, c in files.items()) + f"{info}/RECORD,,\n"
    path = folder / f"geodl_offline_probe-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in {**files, f"{info}/RECORD": record}.items():
            zf.writestr(name, text)
    return path


@dataclass(frozen=True)
class _ProbeSpec(RuntimeSpec):
    """The shipped choice with a one-package requirement set instead of the 1.9 GB stack."""

    requirements: str = ""

    def requirements_file(self) -> Path:
        return Path(self.requirements)


def _probe(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    """(requirements file, base Python) for a runtime holding only the probe: what the check imports is the
    probe, and the base is a Python without GDAL's bindings (no osgeo bridge, so no numpy is needed)."""
    requirements = tmp_path / "probe.txt"
    requirements.write_text("geodl-offline-probe\n")
    monkeypatch.setattr(environment, "CHECK_IMPORTS", ("geodl_offline_probe",))
    base = tmp_path / "base"
    subprocess.run([QGIS_PYTHON, "-m", "venv", "--without-pip", str(base)], check=True, timeout=120)
    return requirements, str(venv_python(base))


def test_installer_choice_uv_where_found_pip_otherwise(tmp_path, monkeypatch):
    uv = _real_uv()
    version = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").symlink_to(uv)
    _without_uv(monkeypatch)
    assert find_uv() is None and choose_installer(RuntimeSpec()) is None  # the fallback: venv and pip
    with pytest.raises(GeoDLError, match="uv was asked for but none was found"):
        choose_installer(RuntimeSpec(installer="uv"))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    found = choose_installer(RuntimeSpec())
    assert found is not None and found.path == str(bin_dir / "uv") and found.version == version
    assert choose_installer(RuntimeSpec(installer="pip")) is None  # asked for pip: pip
    monkeypatch.setenv(UV_ENV, "off")
    assert choose_installer(RuntimeSpec()) is None  # switched off although on PATH
    monkeypatch.setenv(UV_ENV, str(tmp_path / "nope" / "uv"))
    with pytest.raises(GeoDLError, match=f"{UV_ENV} names .* nothing that runs"):
        choose_installer(RuntimeSpec())
    old = _script(tmp_path / "old-uv", 'echo "uv 0.1.0"\n')
    monkeypatch.setenv(UV_ENV, old)
    with pytest.raises(GeoDLError, match="which is uv 0.1.0"):
        choose_installer(RuntimeSpec())
    monkeypatch.delenv(UV_ENV)
    (bin_dir / "uv").unlink()
    (bin_dir / "uv").symlink_to(old)
    assert choose_installer(RuntimeSpec()) is None  # too old on PATH: passed over for pip
    with pytest.raises(GeoDLError, match="Unknown installer 'conda'"):
        RuntimeSpec(installer="conda").validate()


@pytest.mark.slow  # three runtimes of one package, offline: a few seconds
def test_uv_makes_repairs_and_fails_cleanly_offline(tmp_path, monkeypatch):
    """uv makes the venv and installs from the wheel folder only (the probe exists nowhere else); the log
    and the manifest name uv; repair replaces the runtime; a folder without the wheel fails with uv's reason
    and leaves the runtime as it was."""
    uv = _real_uv()
    monkeypatch.setenv(UV_ENV, uv)
    requirements, base = _probe(tmp_path, monkeypatch)
    wheels = tmp_path / "wheels"
    _wheel(wheels, "1.0")
    root = tmp_path / "profile" / "runtime"
    trace: dict = {"progress": [], "messages": []}
    spec = _ProbeSpec(wheel_dir=str(wheels), requirements=str(requirements))
    info = create_runtime(root, spec, base, Progress(on_progress=trace["progress"].append, on_message=trace["messages"].append))
    version = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    assert info.installer == f"uv {version}" and read_runtime(root) == info and info.source == f"wheels:{wheels}"
    assert f"uv = {version}" in (root / "pyvenv.cfg").read_text()  # uv made the venv itself
    messages = trace["messages"]
    assert any(m.startswith(f"creating the environment with uv {version}") for m in messages), messages
    assert any(m.startswith("resolved 1 package") for m in messages) and "+ geodl-offline-probe==1.0" in messages, messages
    assert messages[-1].endswith(f"(made with uv {version})")
    assert trace["progress"] == sorted(trace["progress"]) and trace["progress"][-1] == 100
    probe = [str(venv_python(root)), "-c", "import geodl_offline_probe as p; print(p.VERSION)"]
    assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip() == "1.0"

    _wheel(wheels, "1.1")  # repair: made again beside it, swapped in
    assert create_runtime(root, spec, base).installer == f"uv {version}"
    assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip() == "1.1"
    assert _leftovers(root) == []

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GeoDLError, match="uv exit code") as error:
        create_runtime(root, _ProbeSpec(wheel_dir=str(empty), requirements=str(requirements)), base)
    assert "not found in the provided package locations" in str(error.value)
    assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip() == "1.1"  # untouched
    assert _leftovers(root) == []


@pytest.mark.slow
def test_cancel_kills_uv_and_removes_the_half_made_environment(tmp_path, monkeypatch):
    """uv waits on an index that never answers; the cancel kills it at once and leaves the old runtime."""
    monkeypatch.setenv(UV_ENV, _real_uv())
    requirements, base = _probe(tmp_path, monkeypatch)
    root = _fake_runtime(tmp_path / "runtime")
    server = socket.create_server(("127.0.0.1", 0))
    asked = threading.Event()
    held: list[socket.socket] = []

    def silent_index() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)  # kept open, never answered
            asked.set()

    threading.Thread(target=silent_index, daemon=True).start()
    spec = _ProbeSpec(index_url=f"http://127.0.0.1:{server.getsockname()[1]}/simple", requirements=str(requirements))
    started = time.monotonic()
    try:
        with pytest.raises(Cancelled):
            create_runtime(root, spec, base, Progress(is_cancelled=asked.is_set))  # cancelled once uv asks
    finally:
        server.close()
        for connection in held:
            connection.close()
    assert asked.is_set() and time.monotonic() - started < 30
    assert _leftovers(root) == [] and read_runtime(root).backend == "torch"
    assert _running(f"{root.parent}/.{root.name}-new-") == []  # uv is gone with its folder


@pytest.mark.slow  # numpy from the package index (uv's cache may serve it): a few seconds
def test_uv_runtime_from_qgis_python_bridges_osgeo_with_qgis_numpy_major(tmp_path, monkeypatch):
    """Made by uv from the Python QGIS runs: the osgeo bridge is in, the numpy pin reached uv as a constraint
    (QGIS's numpy is 1.x, the index's newest is 2.x), and GDAL's numpy bindings import in the runtime."""
    monkeypatch.setenv(UV_ENV, _real_uv())
    requirements = tmp_path / "numpy.txt"
    requirements.write_text("numpy\n")
    monkeypatch.setattr(environment, "CHECK_IMPORTS", ("numpy",))  # with osgeo.gdal_array, added for the bridge
    root = tmp_path / "runtime"
    info = create_runtime(root, _ProbeSpec(requirements=str(requirements)), QGIS_PYTHON)
    assert info.installer.startswith("uv ") and info.numpy_pin == "numpy>=1,<2" and info.packages["numpy"].startswith("1.")
    assert info.osgeo_from and (root / "geodl-constraints.txt").read_text().strip() == info.numpy_pin
    code = "import osgeo.gdal_array, numpy; print(osgeo.gdal_array.__file__)"
    done = subprocess.run([str(venv_python(root)), "-c", code], capture_output=True, text=True, check=True, env=environment._pip_env())
    assert done.stdout.startswith(info.osgeo_from)
