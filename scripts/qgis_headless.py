"""Start QGIS without a GUI (offscreen), with Processing and the geodl provider, for scripts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def start_qgis(gui: bool = False):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from geodl_plugin.core.runtime.tensorflow_env import tensorflow_environment

    tensorflow_environment(os.environ)
    sys.path.append("/usr/share/qgis/python/plugins")
    from qgis.core import QgsApplication

    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], gui)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    from geodl_plugin.processing.provider import GeoDLProvider

    provider = GeoDLProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return app, provider


def finish(code: int = 0) -> None:
    """End the process without QGIS's teardown: once TensorFlow is loaded, exitQgis() and the interpreter's
    own shutdown of QgsApplication segfault on QGIS 3.22, after all work is done and written."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
