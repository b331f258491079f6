from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import zipfile

import pytest
from qgis.PyQt.QtCore import QCoreApplication, QEvent

import geodl_plugin


def flush_deletes() -> None:
    """Run pending deleteLater()s now (outside an event loop processEvents() leaves them queued)."""
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()


@pytest.fixture
def geodl_provider(qgis_processing):
    """The geodl provider registered the way qgis_process does it (classFactory(None) → initProcessing)."""
    from qgis.core import QgsApplication

    plugin = geodl_plugin.classFactory(None)
    plugin.initProcessing()
    yield plugin.provider
    QgsApplication.processingRegistry().removeProvider("geodl")


@pytest.fixture
def plugin_loaded(qgis_iface, qgis_processing):
    """classFactory → initGui; unload at the end if the test did not."""
    plugin = geodl_plugin.classFactory(qgis_iface)
    plugin.initGui()
    yield plugin
    if plugin.provider is not None or plugin.dock is not None:
        plugin.unload()
    flush_deletes()


class QgisProcess:
    """qgis_process.bin with dist/geodl.zip unpacked into a temporary plugin folder and enabled."""

    def __init__(self, root) -> None:
        from tests.conftest import REPO

        subprocess.run(["make", "-s", "package"], cwd=REPO, check=True, capture_output=True)
        plugins = root / "plugins"
        with zipfile.ZipFile(REPO / "dist" / "geodl.zip") as z:
            self.top_folders = {n.split("/")[0] for n in z.namelist()}
            z.extractall(plugins)
        self.env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "QGIS_PLUGINPATH": str(plugins),
            "QGIS_CUSTOM_CONFIG_PATH": str(root / "profile"),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONPATH": sysconfig.get_paths()["purelib"],
        }
        assert self.call(["plugins", "enable", "geodl"]).returncode == 0

    def call(self, args):
        return subprocess.run(["/usr/bin/qgis_process.bin", *args], capture_output=True, text=True, env=self.env, timeout=600)

    def run(self, alg: str, **params):
        args = ["run", f"geodl:{alg}", "--json", "--"] + [f"{k}={v}" for k, v in params.items()]
        done = self.call(args)
        assert done.returncode == 0, f"geodl:{alg} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return json.loads(done.stdout[done.stdout.index("{") :])["results"]


@pytest.fixture(scope="session")
def qgis_process(tmp_path_factory):
    return QgisProcess(tmp_path_factory.mktemp("qgis_process"))
