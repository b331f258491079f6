"""The plugin shell: registers the Processing provider, the dock, the menu entry and the log bridge, and
removes every one of them again in ``unload``. All work lives in the core and runs in tasks."""

from __future__ import annotations

import logging
from typing import Any, Optional

from qgis.core import Qgis, QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from . import log_bridge, settings
from .core.runtime.dependencies import check_dependencies, describe_training_device, missing_message, unavailable_features
from .core.runtime.environment import set_active_runtime
from .core.runtime.worker import run_in_worker, shutdown_shared_worker
from .paths import resource
from .processing.provider import GeoDLProvider
from .tasks import GeoDLTask, TaskKeeper

log = logging.getLogger("geodl")
MENU = "&GeoDL"


class GeoDLPlugin:
    def __init__(self, iface) -> None:  # iface is None under qgis_process
        self.iface = iface
        self.provider: Optional[GeoDLProvider] = None
        self.dock: Any = None  # the GeoDLDock, once initGui ran
        self.action: Optional[QAction] = None
        self.toolbar: Any = None
        self.log_handler: Optional[log_bridge.QgsMessageLogHandler] = None
        self.task_keeper = TaskKeeper()
        # The worker runs in geodl's own ML runtime once it is set up (before the check: it counts there).
        set_active_runtime(settings.runtime_dir())
        self.dependency_statuses = check_dependencies()

    # Processing only (qgis_process, and the first thing initGui does)
    def initProcessing(self) -> None:  # noqa: N802
        if self.provider is None:
            self.provider = GeoDLProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        from .gui.dock import GeoDLDock

        self.log_handler = log_bridge.install()
        self.initProcessing()

        main_window = self.iface.mainWindow()
        self.dock = GeoDLDock(main_window, iface=self.iface, run_task=self.run_task)
        self.dock.hide()
        self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.show_dependencies(self.dependency_statuses)

        self.action = QAction(QIcon(str(resource("icon.svg"))), "GeoDL", main_window)
        self.action.setObjectName("GeoDLAction")
        self.action.setCheckable(True)
        self.action.setToolTip("Show the GeoDL dock: label, train and map with deep learning")
        self.action.toggled.connect(self.dock.setVisible)
        self.dock.visibilityChanged.connect(self.action.setChecked)
        self.iface.addPluginToRasterMenu(MENU, self.action)
        self.toolbar = self.iface.addToolBar("GeoDL")
        self.toolbar.setObjectName("GeoDLToolbar")
        self.toolbar.addAction(self.action)

        message = missing_message(self.dependency_statuses)
        if message:
            log.warning(message)
            self.iface.messageBar().pushMessage("GeoDL", message, Qgis.MessageLevel.Warning, 0)
        if "deep_learning" not in unavailable_features(self.dependency_statuses):
            # In the persistent worker process: TensorFlow must not load inside the QGIS binary (see
            # core/worker.py), and warming that worker now makes the first map preview fast.
            self.run_task(
                GeoDLTask(
                    "GeoDL: find the training device",
                    lambda progress: run_in_worker(describe_training_device, None, progress, persistent=True),
                    on_done=self._show_device,
                    on_error=self._show_device,
                )
            )
        elif self.dock is not None:
            self.dock.show_device(
                'unavailable until the ML runtime (Keras on TensorFlow or PyTorch) is set up: press "Set up the ML runtime" below'
            )

    def _show_device(self, text: str) -> None:
        if self.dock is not None:
            self.dock.show_device(text)
        log.info("GeoDL training device: %s", text)

    def run_task(self, task: GeoDLTask) -> GeoDLTask:
        return self.task_keeper.run(task)

    def unload(self) -> None:
        self.task_keeper.cancel_all()
        if self.action is not None:
            self.iface.removePluginRasterMenu(MENU, self.action)
            self.action.deleteLater()
            self.action = None
        if self.toolbar is not None:
            self.iface.mainWindow().removeToolBar(self.toolbar)
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.dock is not None:
            self.dock.disconnect_project()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        shutdown_shared_worker()
        log_bridge.remove(self.log_handler)
        self.log_handler = None
