"""The Status tab's ML-runtime panel: one button sets up (or repairs) geodl's own Python environment for the
worker, with the device pre-filled from what the machine has; cancel, remove, a progress bar and pip's log.

All work runs in GeoDLTasks (``core/runtime/environment.py``); the result line names the device the worker will
train on, asked of the worker itself in the new runtime.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional

from qgis.PyQt import sip
from qgis.PyQt.QtWidgets import QComboBox, QGroupBox, QLabel, QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QWidget

from .. import settings
from ..core.runtime.environment import (
    GpuInfo,
    RuntimeSpec,
    create_runtime,
    describe_runtime,
    detect_gpu,
    read_runtime,
    recommended_spec,
    remove_runtime,
    set_active_runtime,
)
from ..core.runtime.progress import Progress
from ..tasks import GeoDLTask
from .forms import load_form

log = logging.getLogger("geodl")


def _new_device(progress: Progress) -> str:
    """In a fresh worker in the (new) runtime: the device it will train on."""
    from ..core.runtime.dependencies import describe_training_device
    from ..core.runtime.worker import run_in_worker, shutdown_shared_worker

    shutdown_shared_worker()  # the persistent worker still runs the previous interpreter
    return str(run_in_worker(describe_training_device, None, progress, persistent=True))


class RuntimePanel(QGroupBox):
    """``run_task`` starts and keeps a GeoDLTask; ``show_device`` receives the device line; ``message`` and
    ``warn`` report to the dock."""

    # ui/runtime_panel.ui
    runtimeStatusLabel: QLabel
    gpuLabel: QLabel
    runtimeDeviceCombo: QComboBox
    runtimeBackendCombo: QComboBox
    wheelDirEdit: QLineEdit
    setupRuntimeButton: QPushButton
    cancelRuntimeButton: QPushButton
    removeRuntimeButton: QPushButton
    runtimeProgress: QProgressBar
    runtimeLog: QPlainTextEdit

    def __init__(
        self,
        parent: QWidget,
        run_task: Callable[[GeoDLTask], GeoDLTask],
        show_device: Callable[[str], None],
        message: Callable[[str], None],
        warn: Callable[[str], None],
    ) -> None:
        super().__init__(parent)
        load_form(self, "runtime_panel.ui")
        self.setObjectName("runtimePanel")
        self._run_task, self._show_device, self._message, self._warn = run_task, show_device, message, warn
        self.task: Optional[GeoDLTask] = None
        self.gpu: Optional[GpuInfo] = None
        self.runtimeDeviceCombo.addItem("CPU", "cpu")
        self.runtimeDeviceCombo.addItem("GPU (NVIDIA CUDA)", "cuda")
        self.runtimeBackendCombo.addItem("TensorFlow", "tensorflow")
        self.runtimeBackendCombo.addItem("PyTorch", "torch")
        self.wheelDirEdit.setText(str(settings.get("runtime_wheel_dir")))
        self.setupRuntimeButton.clicked.connect(self.setup_runtime)
        self.cancelRuntimeButton.clicked.connect(self.cancel)
        self.removeRuntimeButton.clicked.connect(self.remove)
        self.runtimeDeviceCombo.currentIndexChanged.connect(self._device_changed)
        self.refresh()
        # nvidia-smi (or the library search) can take a moment: not on the main thread.
        self.gpu_task = self._run_task(
            GeoDLTask(
                "GeoDL: look for an NVIDIA GPU", lambda _p: detect_gpu(), on_done=self._gpu_found, on_error=lambda _e: self._gpu_found(None)
            )
        )

    # ------------------------------------------------------------------------------------------------ state
    @staticmethod
    def root() -> Path:
        return settings.runtime_dir()

    def refresh(self) -> None:
        info = read_runtime(self.root())
        self.runtimeStatusLabel.setText(describe_runtime(self.root()))
        self.setupRuntimeButton.setText("Repair the ML runtime" if info else "Set up the ML runtime")
        self.removeRuntimeButton.setEnabled(info is not None and not self._busy())
        if info is not None:
            self._select(self.runtimeDeviceCombo, info.device)
            self._select(self.runtimeBackendCombo, info.backend)

    @staticmethod
    def _select(combo: Any, value: str) -> None:
        index = combo.findData(value)
        if index >= 0:
            combo.setCurrentIndex(index)

    def _gpu_found(self, gpu: Optional[GpuInfo]) -> None:
        if sip.isdeleted(self):
            return
        self.gpu = gpu
        self.gpuLabel.setText(
            f"NVIDIA GPU: {gpu.describe()}" if gpu else "No NVIDIA GPU found: the CPU runtime is the one for this machine."
        )
        if read_runtime(self.root()) is None:  # pre-fill the recommended choice; a made runtime keeps its own
            spec = recommended_spec(gpu)
            self._select(self.runtimeDeviceCombo, spec.device)
            backend = str(settings.get("runtime_backend") or spec.backend)
            self._select(self.runtimeBackendCombo, backend)

    def _device_changed(self) -> None:
        import sys

        if self.runtimeDeviceCombo.currentData() == "cuda" and not sys.platform.startswith("linux"):
            self._select(self.runtimeBackendCombo, "torch")  # TensorFlow has a GPU build on Linux only

    def spec(self) -> RuntimeSpec:
        return RuntimeSpec(
            backend=str(self.runtimeBackendCombo.currentData()),
            device=str(self.runtimeDeviceCombo.currentData()),
            wheel_dir=self.wheelDirEdit.text().strip() or None,
        )

    def _busy(self) -> bool:
        try:
            return self.task is not None and self.task.status() not in (self.task.TaskStatus.Complete, self.task.TaskStatus.Terminated)
        except RuntimeError:
            return False

    def _set_running(self, running: bool) -> None:
        self.setupRuntimeButton.setEnabled(not running)
        self.removeRuntimeButton.setEnabled(not running and read_runtime(self.root()) is not None)
        self.cancelRuntimeButton.setEnabled(running)
        self.runtimeProgress.setVisible(running or self.runtimeProgress.value() > 0)

    # -------------------------------------------------------------------------------------------- actions
    def setup_runtime(self) -> Optional[GeoDLTask]:
        """Set up (or repair) the runtime with the chosen backend and device, in a background task."""
        if self._busy():
            return None
        spec = self.spec()
        try:
            spec.validate()
        except Exception as exc:  # noqa: BLE001 - GeoDLError: shown as it is
            self._warn(str(exc))
            return None
        settings.set_value("runtime_wheel_dir", spec.wheel_dir or "")
        settings.set_value("runtime_backend", spec.backend)
        root = self.root()
        self.runtimeLog.clear()
        self.runtimeLog.setVisible(True)
        self.runtimeProgress.setValue(0)
        self.runtimeLog.appendPlainText(f"Installing Keras on {spec.backend} ({spec.device}) into {root}")

        def work(progress: Progress) -> str:
            create_runtime(root, spec, progress=progress.sub(0, 90))
            set_active_runtime(root)
            return _new_device(progress.sub(90, 100))

        self.task = GeoDLTask("GeoDL: set up the ML runtime", work, on_done=self._done, on_error=self._failed, on_cancelled=self._cancelled)
        self.task.progressChanged.connect(lambda p: self.runtimeProgress.setValue(int(p)))
        self.task.messageReported.connect(self.runtimeLog.appendPlainText)
        self._set_running(True)
        return self._run_task(self.task)

    def cancel(self) -> None:
        if self._busy() and self.task is not None:
            self.task.cancel()
            self.runtimeLog.appendPlainText("Cancelling: pip is stopped and the half-made environment removed.")

    def remove(self) -> Optional[GeoDLTask]:
        if self._busy():
            return None
        root = self.root()

        def work(_progress: Progress) -> bool:
            from ..core.runtime.worker import shutdown_shared_worker

            shutdown_shared_worker()  # it may run from the folder being removed
            set_active_runtime(None)
            return remove_runtime(root)

        self.task = GeoDLTask("GeoDL: remove the ML runtime", work, on_done=self._removed, on_error=self._failed)
        self._set_running(True)
        return self._run_task(self.task)

    # ------------------------------------------------------------------------------------------ callbacks
    def _done(self, device: str) -> None:
        if sip.isdeleted(self):
            return
        self._set_running(False)
        self.runtimeProgress.setValue(100)
        self.refresh()
        self.runtimeLog.appendPlainText(f"Ready. Training device: {device}")
        self._show_device(device)
        self._message(f"The ML runtime is ready; training device: {device}")

    def _failed(self, error: str) -> None:
        if sip.isdeleted(self):
            return
        self._set_running(False)
        self.refresh()
        self.runtimeLog.appendPlainText(error)
        self._warn(error)

    def _cancelled(self) -> None:
        if sip.isdeleted(self):
            return
        self._set_running(False)
        self.refresh()
        self.runtimeLog.appendPlainText("Cancelled; the previous state is unchanged.")

    def _removed(self, existed: bool) -> None:
        if sip.isdeleted(self):
            return
        self._set_running(False)
        self.refresh()
        self.runtimeLog.appendPlainText("Removed." if existed else "There was no runtime to remove.")
        self._show_device("the worker now uses QGIS's Python (set up the ML runtime to train)")
