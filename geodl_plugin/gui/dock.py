"""The GeoDL dock: built from ``ui/dock.ui``; calls the core only through tasks."""

from __future__ import annotations

from typing import Iterable

from qgis.PyQt import uic
from qgis.PyQt.QtWidgets import QDockWidget, QWidget

from ..core.dependencies import DependencyStatus, missing_message
from ..paths import ui_file

DOCK_OBJECT_NAME = "GeoDLDock"  # QGIS saves and restores dock state by object name

_FORM, _ = uic.loadUiType(str(ui_file("dock.ui")))


class GeoDLDock(QDockWidget, _FORM):  # type: ignore[valid-type, misc]
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setupUi(self)
        self.setObjectName(DOCK_OBJECT_NAME)

    def show_dependencies(self, statuses: Iterable[DependencyStatus]) -> None:
        statuses = list(statuses)
        message = missing_message(statuses)
        found = ", ".join(f"{s.dependency.package} {s.version}" for s in statuses if s.available)
        if message is None:
            self.dependencyLabel.setText(f"All Python packages found: {found}.")
        else:
            self.dependencyLabel.setText(message)

    def show_device(self, text: str) -> None:
        self.deviceLabel.setText(f"Training device: {text}")
