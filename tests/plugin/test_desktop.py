"""The plugin in the real QGIS desktop binary (under Xvfb), installed with `make install`: it loads, the dock
is there, and the training device is found through the worker process. TensorFlow imported inside this binary
aborts the process ("free(): invalid size", measured), which is why geodl keeps it in a worker."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig

import pytest

from tests.conftest import REPO

CHECK = """
import json, time
from qgis.PyQt.QtCore import QTimer
from qgis.utils import iface, plugins
started, out = time.time(), {}

def poll():
    p = plugins.get("geodl")
    out["loaded"] = p is not None
    if p is not None and p.dock is not None:
        out["device"] = p.dock.status.deviceLabel.text()
        out["dock"] = p.dock.objectName()
        out["provider"] = p.provider is not None and p.provider.id()
        out["runtime"] = p.dock.status.runtime_panel.runtimeStatusLabel.text()
        out["packages"] = p.dock.status.dependencyLabel.text()
    if (p is not None and "checking" not in out.get("device", "checking")) or time.time() - started > 120:
        open(RESULT, "w").write(json.dumps(out))
        iface.actionExit().trigger()
    else:
        QTimer.singleShot(300, poll)

QTimer.singleShot(500, poll)
"""


def _run_desktop(tmp_path, python_path: str | None, before_start=None) -> dict:
    root = tmp_path / "profiles-root"
    subprocess.run(["make", "-s", "install", f"QGIS_PROFILE_DIR={root}/profiles/default"], cwd=REPO, check=True, capture_output=True)
    if before_start is not None:
        before_start(root / "profiles" / "default")
    result = tmp_path / "result.json"
    script = tmp_path / "check.py"
    script.write_text(f"RESULT = {str(result)!r}\n" + CHECK)
    drop = ("QT_QPA_PLATFORM", "PYTHONPATH", "GEODL_WORKER_PYTHON", "GEODL_RUNTIME_DIR", "KERAS_BACKEND")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(tmp_path)})
    if python_path:
        env["PYTHONPATH"] = python_path
    done = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1400x900x24",
            "/usr/bin/qgis",
            "--profiles-path",
            str(root),
            "--profile",
            "default",
            "--nologo",
            "--noversioncheck",
            "--code",
            str(script),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.exists(), f"QGIS ended without a result (exit {done.returncode}):\n{done.stderr[-2000:]}"
    return json.loads(result.read_text())


@pytest.mark.slow
def test_installed_plugin_runs_in_qgis_desktop(tmp_path):
    out = _run_desktop(tmp_path, sysconfig.get_paths()["purelib"])
    assert out["loaded"] and out["dock"] == "GeoDLDock" and out["provider"] == "geodl"
    assert "CPU" in out["device"] or "GPU" in out["device"], out["device"]


@pytest.mark.slow
def test_desktop_trains_on_geodl_runtime_alone(tmp_path, geodl_runtime):
    """A new user's desktop: QGIS's own Python has no TensorFlow, Keras or scikit-learn (no PYTHONPATH to the
    test venv, an empty HOME), and the runtime sits where the button puts it (``<profile>/geodl/runtime``;
    here a link to the session's runtime). The dock's device line comes from the worker running there."""
    runtime_root = geodl_runtime[0]

    def place_runtime(profile):
        (profile / "geodl").mkdir(parents=True, exist_ok=True)
        (profile / "geodl" / "runtime").symlink_to(runtime_root, target_is_directory=True)

    out = _run_desktop(tmp_path, None, place_runtime)
    assert out["loaded"] and out["dock"] == "GeoDLDock"
    assert out["device"].startswith("Training device: CPU (TensorFlow 2.20.0"), out["device"]
    assert "geodl ML runtime: Keras 3.15.1 on tensorflow 2.20.0" in out["runtime"], out["runtime"]
    for package in ("tensorflow-cpu", "keras", "scikit-learn"):  # the worker's packages count as present
        assert f"{package} (needed" not in out["packages"], out["packages"]
