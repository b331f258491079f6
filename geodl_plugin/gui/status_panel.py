"""The dock's Status step: which Python packages are found, the training device, and the ML-runtime panel
(``runtime_panel.py``) that sets geodl's own runtime up. A runtime set up or removed changes the device:
``deviceChanged`` tells the dock, which shows it in the Train step too."""

from __future__ import annotations

from typing import Iterable, Optional

from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..core.runtime.dependencies import DependencyStatus, check_dependencies, missing_message
from .dock_context import DockContext
from .forms import load_form
from .runtime_panel import RuntimePanel
from .step_panel import StepPanel


class StatusPanel(StepPanel):
    deviceChanged = pyqtSignal(str)  # the worker's training device, after the runtime changed

    # ui/status_panel.ui
    statusLayout: QVBoxLayout
    dependencyLabel: QLabel
    deviceLabel: QLabel

    def __init__(self, context: DockContext, parent: Optional[QWidget] = None) -> None:
        super().__init__(context, parent)
        load_form(self, "status_panel.ui")
        self.runtime_panel = RuntimePanel(self, context.run_task, self._runtime_changed, context.message, context.warn)
        self.statusLayout.insertWidget(2, self.runtime_panel)  # under the package and device lines

    def show_dependencies(self, statuses: Iterable[DependencyStatus]) -> None:
        statuses = list(statuses)
        message = missing_message(statuses)
        found = ", ".join(f"{s.dependency.package} {s.version}" for s in statuses if s.available)
        self.dependencyLabel.setText(f"All Python packages found: {found}." if message is None else message)

    def show_device(self, text: str) -> None:
        self.deviceLabel.setText(f"Training device: {text}")

    def _runtime_changed(self, device: str) -> None:
        """The ML runtime was set up or removed: the device and package lines follow it."""
        self.show_device(device)
        self.deviceChanged.emit(device)
        self.show_dependencies(check_dependencies())
