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
        out["device"] = p.dock.deviceLabel.text()
        out["dock"] = p.dock.objectName()
        out["provider"] = p.provider is not None and p.provider.id()
    if (p is not None and "checking" not in out.get("device", "checking")) or time.time() - started > 120:
        open(RESULT, "w").write(json.dumps(out))
        iface.actionExit().trigger()
    else:
        QTimer.singleShot(300, poll)

QTimer.singleShot(500, poll)
"""


@pytest.mark.slow
def test_installed_plugin_runs_in_qgis_desktop(tmp_path):
    root = tmp_path / "profiles-root"
    subprocess.run(["make", "-s", "install", f"QGIS_PROFILE_DIR={root}/profiles/default"], cwd=REPO, check=True,
                   capture_output=True)
    result = tmp_path / "result.json"
    script = tmp_path / "check.py"
    script.write_text(f"RESULT = {str(result)!r}\n" + CHECK)
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update({"PYTHONPATH": sysconfig.get_paths()["purelib"], "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(tmp_path)})
    done = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", "/usr/bin/qgis", "--profiles-path",
                           str(root), "--profile", "default", "--nologo", "--noversioncheck", "--code", str(script)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert result.exists(), f"QGIS ended without a result (exit {done.returncode}):\n{done.stderr[-2000:]}"
    out = json.loads(result.read_text())
    assert out["loaded"] and out["dock"] == "GeoDLDock" and out["provider"] == "geodl"
    assert "CPU" in out["device"] or "GPU" in out["device"], out["device"]
