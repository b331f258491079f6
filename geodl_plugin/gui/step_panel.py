"""The base of the dock's step panels (Region, Labels, Imagery, Train, Map, Status).

A step panel is a QWidget that owns its widgets, built from its own form ``ui/<module>.ui`` (``forms.load_form``)
into attributes its class declares with their types, and that receives everything else in its constructor: the
:class:`DockContext` (project, canvas, task runner, messages, output folder), the :class:`SharedState` and, for
the labelling steps, the labelling session. The dock composes the panels; they never import one another. The
hooks below are what the dock calls on every step.
"""

from __future__ import annotations

from typing import Any, Optional

from qgis.PyQt.QtWidgets import QWidget

from ..tasks import GeoDLTask, is_running
from .dock_context import DockContext
from .project_state import DockState


class StepPanel(QWidget):
    def __init__(self, context: DockContext, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.context = context

    def tasks(self) -> list[Optional[GeoDLTask]]:
        """The step's own long tasks (started or not): the dock waits on them and cancels them."""
        return []

    def cancel(self) -> None:
        for task in self.tasks():
            self._cancel_task(task)

    def _cancel_task(self, task: Optional[GeoDLTask], say: bool = False) -> None:
        """Cancel ``task`` if it runs; ``say``: tell the user (a Cancel button), not when the dock closes."""
        if task is not None and is_running(task):
            task.cancel()
            if say:
                self.context.message(f"Cancelling: {task.description()}…")

    def _start_task(self, task: GeoDLTask, progress: Any, idle: tuple[Any, ...], cancel_button: Any, message: str) -> GeoDLTask:
        """Run ``task`` with the step's progress bar at 0, the buttons that start work (``idle``) off and its
        Cancel button on; returns the task as started."""
        progress.setValue(0)
        for button in idle:
            button.setEnabled(False)
        cancel_button.setEnabled(True)
        started = self.context.run_task(task)
        self.context.message(message)
        return started

    def release_tools(self) -> None:
        """Take the step's map tools off the canvas."""

    def project_cleared(self) -> None:
        """The project closed: forget what belonged to it (the shared state is cleared by the dock)."""

    def write_state(self, state: DockState) -> None:
        """Put the step's choices into the project's saved state."""

    def read_state(self, state: DockState) -> None:
        """Take the step's choices back from a project's saved state."""

    def _release(self, *tools: object) -> None:
        canvas = self.context.canvas
        for tool in tools:
            if tool is not None and canvas is not None and canvas.mapTool() is tool:
                canvas.unsetMapTool(tool)
