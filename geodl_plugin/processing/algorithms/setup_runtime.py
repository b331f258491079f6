"""geodl:setupruntime — make, repair or remove geodl's own ML runtime (headless installs)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterString,
)

from ... import settings
from ...core.runtime.dependencies import describe_training_device
from ...core.runtime.environment import (
    BACKENDS,
    RuntimeSpec,
    create_runtime,
    describe_runtime,
    detect_gpu,
    recommended_spec,
    remove_runtime,
    set_active_runtime,
)
from ...core.runtime.worker import run_in_worker, shutdown_shared_worker
from ..base import GeoDLAlgorithm

DEVICE_CHOICES = ("auto", "cpu", "cuda")
BACKEND_CHOICES = ("auto",) + BACKENDS


class SetupRuntimeAlgorithm(GeoDLAlgorithm):
    NAME = "setupruntime"
    DISPLAY = "Set up the ML runtime"
    GROUP = "Setup"
    HELP = (
        "Creates (or repairs) geodl's own Python environment for its worker process, in the QGIS profile: "
        "TensorFlow or PyTorch (as Keras' backend), Keras, scikit-learn and rasterio, pinned and tested. "
        "QGIS's own Python is never modified. Device 'auto' takes the CUDA build when an NVIDIA GPU is present "
        "(nvidia-smi). An offline wheel folder serves air-gapped sites (fill it with pip download -r on a "
        "connected machine). It is made with uv where the machine has it (GEODL_UV, else uv on PATH; "
        "GEODL_UV=off for pip), with venv and pip otherwise. 'Remove' deletes the runtime. The result names "
        "the device the worker will train on."
    )
    DEVICE, BACKEND, WHEELS, INDEX_URL, FOLDER, REMOVE = "DEVICE", "BACKEND", "WHEELS", "INDEX_URL", "FOLDER", "REMOVE"
    OUTPUT_DEVICE, OUTPUT_FOLDER = "TRAINING_DEVICE", "RUNTIME_FOLDER"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, "Device", list(DEVICE_CHOICES), defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(self.BACKEND, "Keras backend", list(BACKEND_CHOICES), defaultValue=0))
        self.addParameter(
            QgsProcessingParameterFile(
                self.WHEELS, "Offline wheel folder (no network)", QgsProcessingParameterFile.Behavior.Folder, optional=True
            )
        )
        advanced = [
            QgsProcessingParameterString(self.INDEX_URL, "Package index URL (a mirror)", optional=True),
            QgsProcessingParameterFile(
                self.FOLDER, "Runtime folder (default: in the QGIS profile)", QgsProcessingParameterFile.Behavior.Folder, optional=True
            ),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterBoolean(self.REMOVE, "Remove the runtime instead", defaultValue=False))
        self.addOutput(QgsProcessingOutputString(self.OUTPUT_DEVICE, "Training device"))
        self.addOutput(QgsProcessingOutputString(self.OUTPUT_FOLDER, "Runtime folder"))

    def processAlgorithm(self, parameters, context, feedback):
        folder = self.parameterAsFile(parameters, self.FOLDER, context) or str(settings.runtime_dir())
        if self.parameterAsBoolean(parameters, self.REMOVE, context):
            shutdown_shared_worker()  # it may run from the runtime being removed
            removed = remove_runtime(folder)
            feedback.pushInfo(f"Removed {folder}." if removed else f"No runtime was in {folder}.")
            set_active_runtime(None)
            return {self.OUTPUT_DEVICE: "", self.OUTPUT_FOLDER: ""}
        device = DEVICE_CHOICES[self.parameterAsEnum(parameters, self.DEVICE, context)]
        backend = BACKEND_CHOICES[self.parameterAsEnum(parameters, self.BACKEND, context)]
        gpu = detect_gpu()
        feedback.pushInfo(f"NVIDIA GPU: {gpu.describe()}" if gpu else "No NVIDIA GPU found.")
        recommended = recommended_spec(gpu if device != "cpu" else None)
        spec = RuntimeSpec(
            backend=recommended.backend if backend == "auto" else backend,
            device=recommended.device if device == "auto" else device,
            wheel_dir=self.parameterAsFile(parameters, self.WHEELS, context) or None,
            index_url=self.parameterAsString(parameters, self.INDEX_URL, context) or None,
        )
        feedback.pushInfo(f"Installing Keras on {spec.backend} ({spec.device}) into {folder}.")

        def work(progress):
            shutdown_shared_worker()
            create_runtime(folder, spec, progress=progress.sub(0, 90))
            set_active_runtime(folder)
            settings.set_value("runtime_dir", "" if folder == str(settings.runtime_dir()) else folder)
            return run_in_worker(describe_training_device, None, progress.sub(90, 100))

        device_text = self.run_core(feedback, work)
        feedback.pushInfo(describe_runtime(folder))
        feedback.pushInfo(f"Training device: {device_text}")
        return {self.OUTPUT_DEVICE: device_text, self.OUTPUT_FOLDER: folder}
