from __future__ import annotations

import pytest
from qgis.PyQt.QtCore import QCoreApplication, QEvent

import geodl_plugin


def flush_deletes() -> None:
    """Run pending deleteLater()s now (outside an event loop processEvents() leaves them queued)."""
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()


@pytest.fixture
def plugin_loaded(qgis_iface, qgis_processing):
    """classFactory → initGui; unload at the end if the test did not."""
    plugin = geodl_plugin.classFactory(qgis_iface)
    plugin.initGui()
    yield plugin
    if plugin.provider is not None or plugin.dock is not None:
        plugin.unload()
    flush_deletes()
