"""geodl's own Python environment for the worker: made, repaired and removed here, never QGIS's Python.

The worker process (``worker.py``) needs the machine-learning stack; QGIS's Python must not carry it
(pip-installing TensorFlow into it fights QGIS's own numpy, GDAL bindings and protobuf). So geodl keeps a venv
of its own in the QGIS profile (``<profile>/geodl/runtime``), made from the Python QGIS runs (same version,
same ABI), holding pinned requirements shipped with the plugin (``requirements/``: one file per backend and
device). The worker runs in that venv and sees nothing of QGIS's site-packages except its GDAL bindings:

**Why QGIS's ``osgeo`` is bridged in.** Inside the worker, labels are read with OGR and predictions are written
through GDAL's own API (flush and overview levels, which rasterio lacks). GDAL's Python bindings on PyPI build
from source against a matching libgdal, which a user machine rarely has. QGIS always ships working bindings
for its own Python, and the venv is made from that same Python, so the venv gets a tiny import hook
(``geodl_osgeo_bridge.pth``) that resolves the one package ``osgeo`` from QGIS's folder and nothing else. numpy
is then pinned to QGIS's numpy major in the venv (``gdal_array`` is compiled against it): the numpy<2 pin applies
only because, and only where, GDAL's bindings are imported. rasterio comes from its wheels (with their own
GDAL; fine in a separate process). A venv made without the bridge (no osgeo in QGIS's Python) still trains.

The venv is made and filled with ``uv`` where the machine has it (``uv_installer.py``: ``GEODL_UV`` or ``uv`` on
PATH), with ``venv`` and pip otherwise; the same pins, indexes and wheel folder either way.

Creation happens in a temporary folder beside the target and is renamed over it only once the install and a
check import succeeded, so a cancel or a failure leaves the previous runtime (or nothing) behind, and "repair"
is the same operation. A manifest (``geodl-runtime.json``) records what was installed and for which device.
"""

from __future__ import annotations

import ctypes.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import Cancelled, GeoDLError
from .progress import Progress, ensure
from .tensorflow_env import tensorflow_environment
from .uv_installer import UvProgress, UvTool, find_uv, install_command, uv_env, venv_command

log = logging.getLogger("geodl")

BACKENDS = ("tensorflow", "torch")
DEVICES = ("cpu", "cuda")
MANIFEST = "geodl-runtime.json"
REQUIREMENTS_DIR = Path(__file__).resolve().parent / "requirements"
BRIDGE_MODULE = "geodl_osgeo_bridge"
# What the worker imports; checked in the new venv before it replaces the old one.
CHECK_IMPORTS = ("numpy", "keras", "sklearn", "rasterio", "matplotlib")
PACKAGES_REPORTED = (
    "keras",
    "tensorflow",
    "tensorflow-cpu",
    "torch",
    "numpy",
    "scikit-learn",
    "rasterio",
    "matplotlib",
    "numba",
    "onnxruntime",
    "tf2onnx",
)
PIP_TIMEOUT_S = 3600.0
INSTALLERS = ("auto", "uv", "pip")  # auto: uv where found (uv_installer.find_uv), else pip


@dataclass(frozen=True)
class GpuInfo:
    """An NVIDIA GPU the machine has (``nvidia-smi``), or only its CUDA driver library when that is absent."""

    names: tuple[str, ...]
    driver: str = ""

    def describe(self) -> str:
        names = ", ".join(self.names) or "an NVIDIA GPU (CUDA driver found)"
        return f"{names} (driver {self.driver})" if self.driver else names


def detect_gpu(nvidia_smi: Optional[str] = None) -> Optional[GpuInfo]:
    """The NVIDIA GPU(s) present, or None. ``nvidia-smi`` names them; without it, the CUDA driver library
    (libcuda / nvcuda.dll) still tells that one is there."""
    smi = nvidia_smi or shutil.which("nvidia-smi")
    if smi:
        try:
            done = subprocess.run(
                [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=15
            )
        except (OSError, subprocess.SubprocessError):
            done = None
        if done is not None and done.returncode == 0:
            rows = [[p.strip() for p in line.split(",")] for line in done.stdout.splitlines() if line.strip()]
            if rows:
                return GpuInfo(tuple(r[0] for r in rows), rows[0][1] if len(rows[0]) > 1 else "")
        return None  # nvidia-smi is there and finds no GPU: trust it
    if ctypes.util.find_library("cuda") or ctypes.util.find_library("nvcuda"):
        return GpuInfo(())
    return None


@dataclass(frozen=True)
class RuntimeSpec:
    """What to install. ``wheel_dir``: an offline folder of wheels (air-gapped sites; no index is contacted).
    ``index_url``: another package index (a mirror). ``extra_index_urls``: added to the default index."""

    backend: str = "tensorflow"
    device: str = "cpu"
    wheel_dir: Optional[str] = None
    index_url: Optional[str] = None
    extra_index_urls: tuple[str, ...] = ()
    pytorch_index: bool = True  # add PyTorch's index where PyPI lacks the wanted torch build
    installer: str = "auto"

    def validate(self) -> None:
        if self.installer not in INSTALLERS:
            raise GeoDLError(f"Unknown installer '{self.installer}'; choose one of {', '.join(INSTALLERS)}.")
        if self.backend not in BACKENDS:
            raise GeoDLError(f"Unknown ML backend '{self.backend}'; choose one of {', '.join(BACKENDS)}.")
        if self.device not in DEVICES:
            raise GeoDLError(f"Unknown device '{self.device}'; choose cpu or cuda.")
        if self.backend == "tensorflow" and self.device == "cuda" and not sys.platform.startswith("linux"):
            raise GeoDLError(
                "TensorFlow has no GPU build for this system (only Linux has one). Choose the torch backend for the GPU, or the CPU."
            )
        if self.device == "cuda" and sys.platform == "darwin":
            raise GeoDLError("There is no CUDA on macOS; choose the CPU.")
        if self.wheel_dir and not Path(self.wheel_dir).is_dir():
            raise GeoDLError(
                f"The wheel folder '{self.wheel_dir}' does not exist. Give the folder holding the "
                f"downloaded .whl files (pip download -r <requirements> -d <folder>)."
            )

    def requirements_file(self) -> Path:
        name = f"{self.backend}-{self.device}"
        if self.backend == "tensorflow" and self.device == "cpu" and not sys.platform.startswith(("linux", "win")):
            name = "tensorflow-other"  # tensorflow-cpu has no macOS wheels; plain tensorflow is the CPU build
        return REQUIREMENTS_DIR / f"{name}.txt"


def recommended_spec(gpu: Optional[GpuInfo] = None, platform: str = sys.platform) -> RuntimeSpec:
    """The pre-filled choice: CUDA when an NVIDIA GPU is present, on TensorFlow where it has a GPU build
    (Linux) and on torch elsewhere; the CPU otherwise."""
    if gpu is None or platform == "darwin":
        return RuntimeSpec("tensorflow", "cpu")
    return RuntimeSpec("tensorflow" if platform.startswith("linux") else "torch", "cuda")


@dataclass
class RuntimeInfo:
    """The manifest of a made runtime."""

    backend: str
    device: str
    python_version: str
    packages: dict[str, str] = field(default_factory=dict)
    osgeo_from: Optional[str] = None  # QGIS's folder the osgeo bridge resolves from, if any
    numpy_pin: Optional[str] = None
    created: float = 0.0
    source: str = "index"  # "index", "mirror" or "wheels:<folder>"
    installer: str = "pip"  # "pip" or "uv <version>" (manifests from before uv have no entry: pip made them)


def _is_this_interpreter(executable: str) -> bool:
    """Whether ``executable`` is a Python of this process's own installation (or its virtual environment)."""
    try:
        exe = Path(executable).resolve()
    except OSError:
        return False
    if not exe.name.lower().startswith("python") or not exe.exists():
        return False
    homes = {Path(p).resolve() for p in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix)}
    in_venv = Path(executable).absolute().parent.parent.resolve() == Path(sys.prefix).resolve()
    return in_venv or any(home in exe.parents for home in homes)


def qgis_python_executable() -> str:
    """The interpreter of the Python QGIS runs. Inside QGIS ``sys.executable`` is the QGIS binary; under
    ``qgis_process`` it is whatever ``python3`` comes first on PATH (a pyenv or conda Python, say, that
    cannot import qgis), so it is trusted only when it belongs to this interpreter's installation."""
    if sys.prefix != sys.base_prefix and _is_this_interpreter(sys.executable):
        return sys.executable  # a virtual environment (made with --system-site-packages, as the tests do)
    base = Path(sys.base_exec_prefix)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = (
        [base / "python.exe"]
        if sys.platform == "win32"
        else [base / "bin" / f"python{version}", base / "bin" / f"python{sys.version_info.major}"]
    )
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    if _is_this_interpreter(sys.executable):
        return sys.executable
    return "python3"


def venv_python(root: Path | str) -> Path:
    root = Path(root)
    return root / "Scripts" / "python.exe" if sys.platform == "win32" else root / "bin" / "python"


def read_runtime(root: Path | str) -> Optional[RuntimeInfo]:
    """The runtime in ``root`` if it is complete (manifest and interpreter present), else None."""
    root = Path(root)
    try:
        raw = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        info = RuntimeInfo(**raw)
    except (OSError, ValueError, TypeError):
        return None
    return info if venv_python(root).exists() else None


def _site_packages(root: Path, python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    path = Path(out)
    if not path.is_dir() or root.resolve() not in path.resolve().parents:
        raise GeoDLError(f"The new environment's site-packages ({out}) is not inside {root}.")
    return path


def _host_facts(base_python: str) -> dict[str, Any]:
    """From the Python QGIS runs: its version, where its ``osgeo`` lives and its numpy version."""
    code = (
        "import json, os, sys\nout = {'version': '%d.%d.%d' % sys.version_info[:3]}\n"
        "try:\n import osgeo\n out['osgeo'] = os.path.dirname(os.path.dirname(osgeo.__file__))\n"
        "except Exception:\n pass\n"
        "try:\n import numpy\n out['numpy'] = numpy.__version__\nexcept Exception:\n pass\n"
        "print(json.dumps(out))"
    )
    try:
        done = subprocess.run([base_python, "-c", code], capture_output=True, text=True, timeout=120)
    except OSError as exc:
        raise GeoDLError(f"Cannot run QGIS's Python '{base_python}': {exc}.") from exc
    if done.returncode != 0:
        raise GeoDLError(f"QGIS's Python '{base_python}' failed to start: {done.stderr[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


BRIDGE_CODE = '''"""Made by geodl: resolves the package ``osgeo`` (GDAL's bindings) from QGIS's own Python, and nothing else
from there. See geodl's core/runtime/environment.py for why."""
import importlib.machinery
import sys

_FOLDER = {folder!r}


class _OsgeoFromQgis:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "osgeo":
            return importlib.machinery.PathFinder.find_spec(name, [_FOLDER])
        return None


if _OsgeoFromQgis not in sys.meta_path:
    sys.meta_path.append(_OsgeoFromQgis)  # last: an osgeo installed in the runtime itself wins
'''


def _write_bridge(site: Path, folder: str) -> None:
    (site / f"{BRIDGE_MODULE}.py").write_text(BRIDGE_CODE.format(folder=folder), encoding="utf-8")
    (site / f"{BRIDGE_MODULE}.pth").write_text(f"import {BRIDGE_MODULE}\n", encoding="utf-8")


class PipProgress:
    """Turns pip's output lines into a percentage and short messages. pip prints "Collecting X" per resolved
    requirement, "Downloading"/"Using cached" per file, then one "Installing collected packages: a, b, …" and
    "Successfully installed …": resolving is mapped onto ``start``…``middle`` (approaching it as packages
    arrive, since their number is unknown until the end), installing onto ``middle``…``end``."""

    def __init__(self, progress: Progress, start: float, middle: float, end: float, expected: int = 40) -> None:
        self.progress, self.start, self.middle, self.end = progress, start, middle, end
        self.expected = expected
        self.collected = 0
        self.lines: list[str] = []

    def feed(self, line: str) -> None:
        self.lines.append(line.rstrip())
        line = line.strip()  # pip indents "Downloading" and "Using cached" under their "Collecting"
        if not line:
            return
        if line.startswith("Collecting ") or line.startswith("Processing "):
            self.collected += 1
            share = 1.0 - 1.0 / (1.0 + self.collected / max(self.expected / 2, 1))  # → 1 as packages arrive
            self.progress.update(self.start + (self.middle - self.start) * share, f"collecting {line.split()[1]}")
        elif line.startswith(("Downloading ", "Using cached ")):
            self.progress.message(line)
        elif line.startswith("Installing collected packages:"):
            self.progress.update(self.middle, "installing " + line.split(":", 1)[1].strip()[:200])
        elif line.startswith("Successfully installed"):
            self.progress.update(self.end, "installed")
        elif line.startswith(("ERROR", "error:")):
            self.progress.message(line)


def _run_pip(args: list[str], progress: Progress, watcher: PipProgress | UvProgress, env: dict[str, str], tool: str = "pip") -> None:
    """Run pip (or uv: ``tool``), feeding its output to ``watcher``; a cancel kills it (its whole process group
    where the system has them) and raises Cancelled."""
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    else:
        kwargs["start_new_session"] = True
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace", env=env, **kwargs
    )
    lines: list[Optional[str]] = []
    lock = threading.Lock()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with lock:
                lines.append(line)
        with lock:
            lines.append(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started = time.monotonic()
    done = False
    try:
        while not done:
            if progress.cancelled():
                raise Cancelled("Cancelled by the user.")
            if time.monotonic() - started > PIP_TIMEOUT_S:
                raise GeoDLError("Installing the ML runtime took over an hour; check the network and try again.")
            with lock:
                batch, lines[:] = list(lines), []
            for line in batch:
                if line is None:
                    done = True
                else:
                    watcher.feed(line)
            if not batch:
                time.sleep(0.1)
    finally:
        if proc.poll() is None:
            _kill(proc)
        proc.wait()
        reader.join(timeout=5)
    if proc.returncode != 0:
        tail = "\n".join(watcher.lines[-15:])
        raise GeoDLError(
            f"Installing the ML runtime failed ({tool} exit code {proc.returncode}). Check the network "
            f"(or the wheel folder) and press Repair. {tool} said:\n{tail}"
        )


def _kill(proc: subprocess.Popen) -> None:
    try:
        if sys.platform == "win32":
            proc.kill()
        else:
            os.killpg(proc.pid, 9)
    except (OSError, ProcessLookupError):
        pass


def _pip_env() -> dict[str, str]:
    """pip must not see QGIS's Python path or the user's site (it would count their packages as installed)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PIP_USER")}
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


PYTORCH_INDEX = "https://download.pytorch.org/whl/"


def _index_args(spec: RuntimeSpec, platform: str = sys.platform) -> list[str]:
    if spec.wheel_dir:
        return ["--no-index", "--find-links", str(Path(spec.wheel_dir).resolve())]
    args = ["--index-url", spec.index_url] if spec.index_url else []
    extra = list(spec.extra_index_urls)
    if spec.backend == "torch" and not spec.index_url and spec.pytorch_index:
        # PyPI's Linux torch is the CUDA build and its Windows torch the CPU build: the other one of each
        # comes from PyTorch's own index.
        if spec.device == "cpu" and platform.startswith("linux"):
            extra.append(PYTORCH_INDEX + "cpu")
        elif spec.device == "cuda" and platform == "win32":
            extra.append(PYTORCH_INDEX + "cu128")
    for url in extra:
        args += ["--extra-index-url", url]
    return args


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():  # a file still open on Windows: try once more
        time.sleep(0.5)
        shutil.rmtree(path, ignore_errors=True)


def create_runtime(
    root: Path | str, spec: RuntimeSpec, base_python: Optional[str] = None, progress: Optional[Progress] = None
) -> RuntimeInfo:
    """Make (or remake: this is also "repair") the runtime at ``root`` from ``base_python`` (default: the
    Python QGIS runs). Built in a temporary folder beside ``root``; ``root`` is replaced only when everything
    succeeded, so a cancel or failure leaves the previous runtime as it was and no half-made folder."""
    progress = ensure(progress)
    spec.validate()
    root = Path(root)
    base = base_python or qgis_python_executable()
    root.parent.mkdir(parents=True, exist_ok=True)
    progress.update(0, f"checking QGIS's Python ({base})")
    host = _host_facts(base)
    uv = choose_installer(spec)
    build = Path(tempfile.mkdtemp(prefix=f".{root.name}-new-", dir=root.parent))
    try:
        progress.check()
        progress.update(1, f"creating the environment with {uv.describe() if uv else 'venv and pip'}")
        python = _make_venv(uv, base, build)
        progress.check()
        site = _site_packages(build, python)
        numpy_pin = None
        if host.get("osgeo"):
            _write_bridge(site, host["osgeo"])
            if host.get("numpy"):
                major = int(host["numpy"].split(".")[0])
                numpy_pin = f"numpy>={major},<{major + 1}"  # gdal_array's ABI: QGIS's numpy major
        constraints = build / "geodl-constraints.txt"
        constraints.write_text((numpy_pin or "") + "\n", encoding="utf-8")
        if uv is not None:
            progress.message("installing with uv (it reports when resolving, downloading and installing end)")
            args = install_command(uv, python, spec.requirements_file(), constraints if numpy_pin else None, _index_args(spec))
            _run_pip(args, progress, UvProgress(progress, 3, 92), uv_env(_pip_env()), tool="uv")
        else:
            _install_with_pip(python, spec, constraints, progress)
        progress.check()
        progress.update(93, "checking the new environment")
        info = RuntimeInfo(
            spec.backend,
            spec.device,
            host["version"],
            _check(python, spec, bool(host.get("osgeo"))),
            host.get("osgeo"),
            numpy_pin,
            time.time(),
            f"wheels:{spec.wheel_dir}" if spec.wheel_dir else ("mirror" if spec.index_url else "index"),
            f"uv {uv.version}" if uv else "pip",
        )
        (build / MANIFEST).write_text(json.dumps(asdict(info), indent=1), encoding="utf-8")
        progress.check()
        _swap_in(build, root)
    except BaseException:
        _remove_tree(build)
        raise
    progress.update(100, f"the ML runtime is ready in {root} (made with {info.installer})")
    return info


def choose_installer(spec: RuntimeSpec) -> Optional[UvTool]:
    """The uv to use, or None for venv and pip (``spec.installer``: auto, uv or pip)."""
    if spec.installer == "pip":
        return None
    uv = find_uv()
    if uv is None and spec.installer == "uv":
        raise GeoDLError("uv was asked for but none was found: put uv on PATH or set GEODL_UV to its path, or choose pip.")
    return uv


def _make_venv(uv: Optional[UvTool], base: str, build: Path) -> Path:
    """The new venv's interpreter. QGIS's Python starts with QGIS's environment as it is (PYTHONHOME included,
    which OSGeo4W sets); only the new venv's interpreter runs without it (_pip_env)."""
    if uv is not None:
        command = venv_command(uv, base, build)
        made = subprocess.run(command, capture_output=True, text=True, timeout=600, env=uv_env(dict(os.environ)), cwd=build)
        hint = "(uv could not use it; set GEODL_UV=off to make it with venv and pip)"
    else:
        made = subprocess.run([base, "-m", "venv", str(build)], capture_output=True, text=True, timeout=600)
        hint = "(on Debian/Ubuntu: sudo apt install python3-venv)"
    python = venv_python(build)
    if made.returncode != 0 or not python.exists():
        raise GeoDLError(f"Cannot create a Python environment with '{base}': {made.stderr.strip()[-500:]} {hint}.")
    return python


def _install_with_pip(python: Path, spec: RuntimeSpec, constraints: Path, progress: Progress) -> None:
    args = [
        str(python),
        "-m",
        "pip",
        "install",
        "--progress-bar",
        "off",
        "--no-input",
        "-r",
        str(spec.requirements_file()),
        "-c",
        str(constraints),
        *_index_args(spec),
    ]
    _run_pip(args, progress, PipProgress(progress, 3, 75, 92), _pip_env())


def _check(python: Path, spec: RuntimeSpec, with_osgeo: bool) -> dict[str, str]:
    """Import what the worker needs in the new environment, with its backend; return package versions."""
    imports = list(CHECK_IMPORTS) + (["osgeo.gdal", "osgeo.gdal_array", "osgeo.ogr"] if with_osgeo else [])
    code = (
        "import json, importlib, importlib.metadata as m\n"
        f"for name in {imports!r}:\n importlib.import_module(name)\n"
        "out = {}\n"
        f"for dist in {list(PACKAGES_REPORTED)!r}:\n"
        " try:\n  out[dist] = m.version(dist)\n except m.PackageNotFoundError:\n  pass\n"
        "print(json.dumps(out))"
    )
    env = _pip_env()
    env["KERAS_BACKEND"] = spec.backend
    tensorflow_environment(env)
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=600, env=env)
    if done.returncode != 0:
        raise GeoDLError(f"The new ML runtime was installed but does not import: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _swap_in(build: Path, root: Path) -> None:
    """Rename the finished ``build`` onto ``root``; an old runtime is moved aside first and deleted after."""
    old = None
    if root.exists():
        old = root.with_name(f".{root.name}-old-{os.getpid()}-{int(time.time())}")
        os.replace(root, old)
    try:
        os.replace(build, root)
    except OSError:
        if old is not None:
            os.replace(old, root)
        raise
    if old is not None:
        _remove_tree(old)


def remove_runtime(root: Path | str) -> bool:
    """Delete the runtime at ``root`` (and leftovers of interrupted builds beside it). True if one was there.
    Only a folder geodl made (it has the manifest or is a leftover build) is deleted."""
    root = Path(root)
    existed = root.exists()
    if existed and not (root / MANIFEST).exists() and any(root.iterdir()):
        raise GeoDLError(f"'{root}' is not a geodl runtime (no {MANIFEST}); it was left as it is.")
    if existed:
        _remove_tree(root)
    if root.parent.is_dir():
        for leftover in root.parent.glob(f".{root.name}-*"):
            _remove_tree(leftover)
    return existed


def runtime_python(root: Path | str) -> Optional[str]:
    """The runtime's interpreter if the runtime at ``root`` is complete."""
    return str(venv_python(root)) if read_runtime(root) is not None else None


def describe_runtime(root: Path | str) -> str:
    info = read_runtime(root)
    if info is None:
        return "No geodl ML runtime is set up; the worker uses QGIS's Python."
    main = info.packages.get("tensorflow") or info.packages.get("tensorflow-cpu") or info.packages.get("torch", "?")
    return (
        f"geodl ML runtime: Keras {info.packages.get('keras', '?')} on {info.backend} {main} "
        f"({'CUDA' if info.device == 'cuda' else 'CPU'} build), Python {info.python_version}, in {root}"
    )


_active: dict[str, Optional[str]] = {"root": None}


def set_active_runtime(root: Optional[Path | str]) -> None:
    """Which runtime folder the worker uses (the plugin sets it from its settings at start)."""
    _active["root"] = str(root) if root else None


def active_runtime() -> Optional[Path]:
    root = os.environ.get("GEODL_RUNTIME_DIR") or _active["root"]
    return Path(root) if root else None
