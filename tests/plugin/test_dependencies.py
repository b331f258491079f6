"""With a dependency hidden, the plugin still loads, names what is missing and how to install it, and
disables only what needs it."""

from __future__ import annotations

import sys

from qgis.core import QgsApplication

import geodl_plugin
from geodl_plugin.core.runtime.dependencies import check_dependencies, install_command, missing_message
from tests.plugin.conftest import flush_deletes


def test_missing_message_names_package_and_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    statuses = check_dependencies()
    message = missing_message(statuses)
    # The worker's packages go into geodl's own runtime (the button), never into QGIS's Python.
    assert "tensorflow-cpu" in message and "Set up the ML runtime" in message and "pip install" not in message
    assert "tensorflow-cpu" in install_command(["tensorflow-cpu"])  # still the command for QGIS-side packages


def test_plugin_loads_with_tensorflow_hidden(monkeypatch, qgis_iface, qgis_processing):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    plugin = geodl_plugin.classFactory(qgis_iface)
    plugin.initGui()
    try:
        text = plugin.dock.status.dependencyLabel.text()
        assert "tensorflow-cpu" in text and "Set up the ML runtime" in text
        assert "TensorFlow" in plugin.dock.status.deviceLabel.text()
        provider = QgsApplication.processingRegistry().providerById("geodl")
        ok, why = provider.algorithm("predict").canExecute()
        assert ok  # gating happens per model type at run time; the algorithm stays listed
        train = provider.algorithm("train")
        assert train._can_execute(("deep_learning",))[0] is False
        assert "geodl:setupruntime" in train._can_execute(("deep_learning",))[1]
        assert train._can_execute(("classic_ml",))[0] is True  # the random forest still works
    finally:
        plugin.unload()
        flush_deletes()
