"""What every geodl Processing algorithm shares: group, icon, dependency gate, feedback bridge, errors."""

from __future__ import annotations

from typing import Any, Callable, Optional

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingFeedback
from qgis.PyQt.QtGui import QIcon

from ..core.runtime.dependencies import DEPENDENCIES, WORKER_FEATURES, check_dependencies, install_command
from ..core.runtime.errors import Cancelled, GeoDLError
from ..core.runtime.progress import Progress
from ..paths import resource


class GeoDLAlgorithm(QgsProcessingAlgorithm):
    """Base class. Subclasses set ``NAME``, ``DISPLAY``, ``GROUP``, ``HELP``, ``REQUIRES`` and implement
    ``initAlgorithm`` and ``processAlgorithm``; long work goes through :meth:`run_core`."""

    NAME = ""
    DISPLAY = ""
    GROUP = "Local pipeline"
    HELP = ""
    REQUIRES: tuple[str, ...] = ()  # features from core.dependencies: "deep_learning", "earth_engine", ...

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:
        return self.DISPLAY

    def group(self) -> str:
        return self.GROUP

    def groupId(self) -> str:
        return self.GROUP.lower().replace(" ", "_")

    def shortHelpString(self) -> str:
        return self.HELP

    def icon(self) -> QIcon:
        return QIcon(str(resource("icon.svg")))

    def createInstance(self) -> GeoDLAlgorithm:
        return type(self)()

    def canExecute(self) -> tuple[bool, str]:
        return self._can_execute(self.REQUIRES)

    @staticmethod
    def _can_execute(requires: tuple[str, ...]) -> tuple[bool, str]:
        if not requires:
            return True, ""
        needed = [d for d in DEPENDENCIES if d.feature in requires]
        absent = [s.dependency.package for s in check_dependencies(needed) if not s.available]
        if absent:
            if any(f in WORKER_FEATURES for f in requires):  # installed into geodl's runtime, not QGIS's Python
                return False, (f"This algorithm needs the Python package(s) {', '.join(absent)}. Run "
                               f"geodl:setupruntime (or press \"Set up the ML runtime\" in the GeoDL dock's "
                               f"Status tab) once; QGIS's own Python is left as it is.")
            return False, (
                f"This algorithm needs the Python package(s) {', '.join(absent)}. Install with: "
                f"{install_command(absent)}"
            )
        return True, ""

    @staticmethod
    def progress(feedback: Optional[QgsProcessingFeedback]) -> Progress:
        if feedback is None:
            return Progress()
        return Progress(
            on_progress=feedback.setProgress,
            on_message=feedback.pushInfo,
            is_cancelled=feedback.isCanceled,
        )

    def run_core(self, feedback: Optional[QgsProcessingFeedback], work: Callable[[Progress], Any],
                 requires: Optional[tuple[str, ...]] = None) -> Any:
        """Run a core call, turning user errors and cancels into Processing's own exception. ``requires``
        overrides the class's REQUIRES when the parameters decide (e.g. which model type)."""
        ok, why = self._can_execute(self.REQUIRES if requires is None else requires)
        if not ok:
            raise QgsProcessingException(why)
        try:
            return work(self.progress(feedback))
        except GeoDLError as exc:
            raise QgsProcessingException(str(exc)) from exc
        except Cancelled as exc:
            raise QgsProcessingException("Cancelled by the user; nothing was written.") from exc
