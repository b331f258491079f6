"""What every geodl Processing algorithm shares: group, icon, dependency gate, feedback bridge, errors."""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Optional

from qgis.core import (
    QgsMapLayer,
    QgsProcessingAlgorithm,
    QgsProcessingDestinationParameter,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingUtils,
    QgsProperty,
)
from qgis.PyQt.QtGui import QIcon

from ..core.io.paths_guard import check_outputs_against_inputs
from ..core.runtime.dependencies import DEPENDENCIES, WORKER_FEATURES, check_dependencies, install_command
from ..core.runtime.errors import Cancelled, GeoDLError
from ..core.runtime.progress import Progress
from ..core.runtime.signals import Interrupted, signals_cancel
from ..paths import resource


class GeoDLAlgorithm(QgsProcessingAlgorithm):
    """Base class. Subclasses set ``NAME``, ``DISPLAY``, ``GROUP``, ``HELP``, ``REQUIRES`` and implement
    ``initAlgorithm`` and ``processAlgorithm``; long work goes through :meth:`run_core`."""

    NAME = ""
    DISPLAY = ""
    GROUP = "Local pipeline"
    HELP = ""
    REQUIRES: tuple[str, ...] = ()  # features from core.dependencies: "deep_learning", "earth_engine", ...

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every subclass's processAlgorithm runs inside :func:`_guarded`: one clear message for a user error
        (a QgsProcessingException, shown without a traceback), Ctrl+C/SIGTERM as a clean cancel."""
        super().__init_subclass__(**kwargs)
        body = cls.__dict__.get("processAlgorithm")
        if body is not None and not getattr(body, "_geodl_guarded", False):
            cls.processAlgorithm = _guarded(body)  # type: ignore[method-assign]

    def prepareAlgorithm(self, parameters, context, feedback) -> bool:
        """Before any work: refuse an output that is, resolves to, or is a sidecar of one of the inputs."""
        inputs, outputs = self.input_and_output_files(parameters, context)
        try:
            check_outputs_against_inputs(inputs, outputs)
        except GeoDLError as exc:
            raise user_error(feedback, str(exc)) from exc
        return True

    def input_and_output_files(self, parameters, context) -> tuple[list[str], list[str]]:
        """The file sources of every input parameter and the file of every destination, read from the
        parameter definitions, so an algorithm added later is guarded without code of its own."""
        inputs: list[str] = []
        outputs: list[str] = []
        for definition in self.parameterDefinitions():
            name = definition.name()
            value = parameters.get(name)
            if value is None or value == "":
                continue
            if isinstance(definition, QgsProcessingDestinationParameter):
                outputs.append(_destination(value, context))
                continue
            kind = definition.type()
            if kind not in ("file", "raster", "vector", "layer", "source", "multilayer", "mesh", "pointcloud"):
                continue
            raws = value if isinstance(value, (list, tuple)) else [value]
            for raw in raws:
                if isinstance(raw, QgsMapLayer):
                    inputs.append(raw.source())
                    continue
                if isinstance(raw, QgsProcessingOutputLayerDefinition) or isinstance(raw, QgsProperty):
                    raw = _destination(raw, context)
                text = str(raw)
                inputs.append(text)
                if kind != "file":  # a layer id or name in the project: its source is the file
                    layer = QgsProcessingUtils.mapLayerFromString(text, context, False)
                    if layer is not None:
                        inputs.append(layer.source())
        return inputs, outputs

    @staticmethod
    def warn(feedback: Optional[QgsProcessingFeedback], text: str) -> None:
        """A warning, not an error: the step went on and its output is usable."""
        if feedback is not None:
            feedback.pushWarning(text)

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
                return False, (
                    f"This algorithm needs the Python package(s) {', '.join(absent)}. Run "
                    f'geodl:setupruntime (or press "Set up the ML runtime" in the GeoDL dock\'s '
                    f"Status tab) once; QGIS's own Python is left as it is."
                )
            return False, (f"This algorithm needs the Python package(s) {', '.join(absent)}. Install with: {install_command(absent)}")
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

    def run_core(
        self, feedback: Optional[QgsProcessingFeedback], work: Callable[[Progress], Any], requires: Optional[tuple[str, ...]] = None
    ) -> Any:
        """Run a core call, turning user errors and cancels into Processing's own exception. ``requires``
        overrides the class's REQUIRES when the parameters decide (e.g. which model type)."""
        ok, why = self._can_execute(self.REQUIRES if requires is None else requires)
        if not ok:
            raise user_error(feedback, why)
        try:
            return work(self.progress(feedback))
        except GeoDLError as exc:
            raise user_error(feedback, str(exc)) from exc
        except Interrupted as exc:
            raise user_error(feedback, str(exc)) from exc
        except Cancelled as exc:
            raise user_error(feedback, CANCELLED) from exc


CANCELLED = "Cancelled by the user; nothing was written."


def _under_qgis_process() -> bool:
    try:
        return os.path.basename(os.readlink("/proc/self/exe")).startswith("qgis_process")
    except OSError:
        return False


UNDER_QGIS_PROCESS = _under_qgis_process()


def user_error(feedback: Optional[QgsProcessingFeedback], text: str) -> QgsProcessingException:
    """The exception that ends an algorithm on a user error, carrying the message (scripts calling
    processing.run read it from the exception). qgis_process prints an exception's text three times (its
    message-log echo twice, then as the error), so there the text goes to the feedback once and the exception
    carries none."""
    if feedback is None or not UNDER_QGIS_PROCESS:
        return QgsProcessingException(text)
    feedback.reportError(text, True)
    error = QgsProcessingException("")
    error.geodl_message = text  # type: ignore[attr-defined]
    return error


def _destination(value: Any, context) -> str:
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value = value.sink
    if isinstance(value, QgsProperty):
        value, _ok = value.valueAsString(context.expressionContext(), "")
    return str(value)


def _guarded(body: Callable) -> Callable:
    @functools.wraps(body)
    def process(self, parameters, context, feedback):
        with signals_cancel():
            try:
                return body(self, parameters, context, feedback)
            except GeoDLError as exc:
                raise user_error(feedback, str(exc)) from exc
            except Interrupted as exc:
                raise user_error(feedback, str(exc)) from exc
            except Cancelled as exc:
                raise user_error(feedback, CANCELLED) from exc
            except QgsProcessingException as exc:
                if UNDER_QGIS_PROCESS and str(exc):  # raised by the algorithm itself: printed once
                    raise user_error(feedback, str(exc)) from exc
                raise

    process._geodl_guarded = True  # type: ignore[attr-defined]
    return process
