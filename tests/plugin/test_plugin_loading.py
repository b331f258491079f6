"""The plugin loads into a real (offscreen) QGIS and unload leaves nothing behind."""

from __future__ import annotations

import logging

from qgis.core import QgsApplication
from qgis.PyQt.QtWidgets import QAction, QDockWidget, QToolBar

import geodl_plugin
from geodl_plugin.log_bridge import QgsMessageLogHandler
from tests.plugin.conftest import flush_deletes


def test_plugin_loads_and_unloads_cleanly(plugin_loaded, qgis_iface):
    plugin = plugin_loaded
    registry = QgsApplication.processingRegistry()
    assert registry.providerById("geodl") is not None
    assert {a.id() for a in registry.providerById("geodl").algorithms()} >= {
        "geodl:samplepoints",
        "geodl:extractsamples",
        "geodl:train",
        "geodl:evaluate",
        "geodl:predict",
    }
    window = qgis_iface.mainWindow()
    dock = window.findChild(QDockWidget, "GeoDLDock")
    assert dock is plugin.dock
    assert window.findChild(QAction, "GeoDLAction") is not None
    assert window.findChild(QToolBar, "GeoDLToolbar") is not None
    assert any(isinstance(h, QgsMessageLogHandler) for h in logging.getLogger("geodl").handlers)
    plugin.action.trigger()
    assert dock.isVisibleTo(window)

    plugin.unload()
    flush_deletes()
    assert registry.providerById("geodl") is None
    assert window.findChild(QDockWidget, "GeoDLDock") is None
    assert window.findChild(QAction, "GeoDLAction") is None
    assert window.findChild(QToolBar, "GeoDLToolbar") is None
    assert not any(isinstance(h, QgsMessageLogHandler) for h in logging.getLogger("geodl").handlers)


def test_init_processing_alone_as_qgis_process_does(qgis_app):
    plugin = geodl_plugin.classFactory(None)
    plugin.initProcessing()
    try:
        provider = QgsApplication.processingRegistry().providerById("geodl")
        assert provider is not None and provider.name() == "GeoDL"
        for alg in provider.algorithms():
            assert alg.shortHelpString(), f"{alg.id()} has no help"
    finally:
        QgsApplication.processingRegistry().removeProvider("geodl")


def test_log_messages_reach_qgis_message_log(plugin_loaded, qtbot):
    from qgis.core import QgsApplication as App

    seen = []
    App.messageLog().messageReceived.connect(lambda msg, tag, level: seen.append((msg, tag)))
    logging.getLogger("geodl").warning("hello from the core")
    qtbot.waitUntil(lambda: ("hello from the core", "GeoDL") in seen, timeout=2000)


def test_device_is_reported_in_the_dock(plugin_loaded, qtbot):
    dock = plugin_loaded.dock
    qtbot.waitUntil(lambda: "checking" not in dock.status.deviceLabel.text(), timeout=60000)
    assert "CPU" in dock.status.deviceLabel.text() or "GPU" in dock.status.deviceLabel.text()
