"""What every step panel of the dock is given: the project, the map canvas, the task runner, the message line
and the output folder; and the project's lifetime, so a task that ends after its project closed changes
nothing (``guard``).

The dock (``gui/dock.py``) makes one :class:`DockContext` and hands it to each panel; a panel built alone (a
test, another face) gets its own.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from qgis.core import Qgis, QgsProject
from qgis.gui import QgsMapCanvas
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QObject

from .. import settings
from ..tasks import GeoDLTask

# show_message(text, level): the dock's message line (and QGIS's message bar for warnings)
ShowMessage = Callable[[str, Any], None]


class OutputFiles:
    """Where the dock writes (labels, region, samples, models, maps): the chosen folder, else beside the project
    when it is saved, else the user's last folder, else a temporary folder."""

    def __init__(self, project: QgsProject) -> None:
        self.project = project
        self.folder = ""  # chosen or settled on; "" until a file is first needed (kept in the project state)

    def output_dir(self) -> Path:
        if self.folder and Path(self.folder).is_dir():
            return Path(self.folder)
        home = self.project.homePath()
        if home and Path(home).is_dir() and os.access(home, os.W_OK):
            path = Path(home) / "geodl"
        elif settings.get("last_output_dir") and Path(settings.get("last_output_dir")).is_dir():
            path = Path(settings.get("last_output_dir")) / "geodl"
        else:
            path = Path(tempfile.mkdtemp(prefix="geodl-"))
        path.mkdir(parents=True, exist_ok=True)
        self.folder = str(path)
        return path

    def set_output_dir(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        self.folder = str(path)

    def unique(self, stem: str, suffix: str) -> str:
        # A new name per run: QGIS may hold the previous file open.
        stamp = f"{time.strftime('%Y%m%d_%H%M%S')}_{time.perf_counter_ns() % 100000}"
        return str(self.output_dir() / f"{stem}_{stamp}{suffix}")


class DockContext:
    """The services a step panel receives in its constructor (never another panel)."""

    def __init__(
        self,
        project: QgsProject,
        canvas: Optional[QgsMapCanvas],
        run_task: Callable[[GeoDLTask], GeoDLTask],
        show_message: ShowMessage,
    ) -> None:
        self.project = project
        self.canvas = canvas  # None without a map (the panels then disable their map tools)
        self.run_task = run_task  # starts a GeoDLTask and keeps it alive (the plugin's TaskKeeper)
        self.files = OutputFiles(project)
        self._show = show_message
        self._generation = 0  # bumped when the project closes: late results of older tasks are dropped

    def message(self, text: str, level: Any = Qgis.MessageLevel.Info) -> None:
        self._show(text, level)

    def warn(self, text: str) -> None:
        self._show(text, Qgis.MessageLevel.Warning)

    def unique(self, stem: str, suffix: str) -> str:
        """A new file name in the output folder."""
        return self.files.unique(stem, suffix)

    def guard(self, owner: QObject, fn: Callable[..., None]) -> Callable[..., None]:
        """``fn`` as a task callback that does nothing once ``owner`` is deleted or the project it was started
        in has closed."""
        generation = self._generation

        def wrapped(*args: Any) -> None:
            if not sip.isdeleted(owner) and generation == self._generation:
                fn(*args)

        return wrapped

    def project_closed(self) -> None:
        self._generation += 1
        self.files.folder = ""
