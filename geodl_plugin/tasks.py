"""The one QgsTask base class every long geodl step runs in.

``run()`` (worker thread) calls a core function with a :class:`Progress` wired to the task's progress,
cancel flag and signals; it touches no widget and no project, and keeps any exception. ``finished()``
(main thread) hands the result, the user-facing error, or the cancel to the callbacks, which apply it.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, Callable, Optional

from qgis.core import QgsApplication, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .core.runtime.errors import Cancelled, GeoDLError
from .core.runtime.progress import Progress

log = logging.getLogger("geodl")


class GeoDLTask(QgsTask):
    """Run ``work(progress)`` in the background; call ``on_done(result)`` or ``on_error(message)`` after."""

    metricsReported = pyqtSignal(dict)  # per-epoch training metrics, for live plots
    messageReported = pyqtSignal(str)

    def __init__(
        self,
        description: str,
        work: Callable[[Progress], Any],
        on_done: Optional[Callable[[Any], None]] = None,
        on_error: Optional[Callable[[str], None]] = None,
        on_cancelled: Optional[Callable[[], None]] = None,
    ) -> None:
        super().__init__(description, QgsTask.Flag.CanCancel)
        self._work = work
        self._on_done = on_done
        self._on_error = on_error
        self._on_cancelled = on_cancelled
        self.result: Any = None
        self.error: Optional[str] = None
        self.exception: Optional[BaseException] = None
        self.was_cancelled = False

    def progress_reporter(self) -> Progress:
        return Progress(
            on_progress=self.setProgress,
            on_message=self.messageReported.emit,
            is_cancelled=self.isCanceled,
            on_metrics=self.metricsReported.emit,
        )

    def run(self) -> bool:
        try:
            self.result = self._work(self.progress_reporter())
            return True
        except Cancelled:
            self.was_cancelled = True
            return False
        except GeoDLError as exc:
            self.exception = exc
            self.error = str(exc)
            return False
        except Exception as exc:  # noqa: BLE001 - kept and reported in finished(), never a traceback dialog
            self.exception = exc
            self.error = f"{self.description()} failed unexpectedly: {exc}. The GeoDL log has the details."
            log.error("%s\n%s", self.error, "".join(traceback.format_exception(exc)))
            return False

    def finished(self, ok: bool) -> None:
        if ok:
            if self._on_done is not None:
                self._on_done(self.result)
        elif self.was_cancelled or (self.isCanceled() and self.error is None):
            log.info("%s cancelled; nothing was written.", self.description())
            if self._on_cancelled is not None:
                self._on_cancelled()
        else:
            log.warning("%s", self.error)
            if self._on_error is not None:
                self._on_error(self.error or "failed")


def is_running(task: Optional[GeoDLTask]) -> bool:
    """Whether ``task`` was started and has not ended (False for None, or once its C++ side is gone)."""
    if task is None:
        return False
    try:
        return task.status() not in (QgsTask.TaskStatus.Complete, QgsTask.TaskStatus.Terminated)
    except RuntimeError:  # the C++ task is gone
        return False


class TaskKeeper:
    """Starts tasks and holds each one until it ends: QGIS's task manager does not own the Python object, so a
    task nobody references is collected mid-run. The plugin has one; a dock made without the plugin (tests,
    ``make screenshot``) makes its own."""

    def __init__(self) -> None:
        self.tasks: set[GeoDLTask] = set()

    def run(self, task: GeoDLTask) -> GeoDLTask:
        self.tasks.add(task)
        task.taskCompleted.connect(lambda: self.tasks.discard(task))
        task.taskTerminated.connect(lambda: self.tasks.discard(task))
        QgsApplication.taskManager().addTask(task)
        return task

    def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        self.tasks.clear()
