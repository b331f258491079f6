"""Forward the ``geodl`` logger to QGIS's message log (tag "GeoDL").

The core logs through ``logging.getLogger("geodl")`` and knows nothing of QGIS; the plugin installs this
handler in ``initGui`` and removes it in ``unload``.
"""

from __future__ import annotations

import logging

from qgis.core import Qgis, QgsMessageLog

TAG = "GeoDL"

_LEVELS = (
    (logging.ERROR, Qgis.MessageLevel.Critical),
    (logging.WARNING, Qgis.MessageLevel.Warning),
    (logging.NOTSET, Qgis.MessageLevel.Info),
)


class QgsMessageLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            level = next(q for py, q in _LEVELS if record.levelno >= py)
            QgsMessageLog.logMessage(message, TAG, level)
        except Exception:  # noqa: BLE001 - a logging handler must never raise
            self.handleError(record)


def install() -> QgsMessageLogHandler:
    handler = QgsMessageLogHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("geodl")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return handler


def remove(handler: QgsMessageLogHandler | None) -> None:
    if handler is not None:
        logging.getLogger("geodl").removeHandler(handler)
