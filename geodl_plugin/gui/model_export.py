"""The Map step's "Export for Deepness (ONNX)" button: the current model file as ONNX with Deepness'
metadata, plus a STAC item (MLM extension) beside it. The export runs in the worker process (it needs
TensorFlow), from a task."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from qgis.core import Qgis
from qgis.PyQt.QtWidgets import QFileDialog, QPushButton, QWidget

from ..tasks import GeoDLTask


def stac_path_for(onnx_path: str) -> str:
    return str(Path(onnx_path).with_suffix("")) + ".stac.json"


class OnnxExportButton(QPushButton):
    def __init__(
        self,
        parent: Optional[QWidget],
        model_path: Callable[[], str],
        run_task: Callable[[GeoDLTask], GeoDLTask],
        message: Callable[[str, Any], None],
    ) -> None:
        super().__init__("Export for Deepness (ONNX)…", parent)
        self.setToolTip("Write the model as ONNX for the Deepness plugin, with a STAC model card beside it")
        self._model_path, self._run, self._message = model_path, run_task, message
        self.task: Optional[GeoDLTask] = None
        self.clicked.connect(self._clicked)

    def _clicked(self) -> None:
        model = self._model_path()
        if not model or not Path(model).is_file():
            self._message("No model file. Train a model (Train tab) or choose a .geodl file.", Qgis.MessageLevel.Warning)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export for Deepness", str(Path(model).with_suffix(".onnx")), "ONNX model (*.onnx)")
        if path:
            self.export(model, path if path.lower().endswith(".onnx") else path + ".onnx")

    def export(self, model: str, output: str) -> Optional[GeoDLTask]:
        from ..core.models.onnx_export import OnnxExportParams
        from ..core.runtime.errors import GeoDLError

        params = OnnxExportParams(model=model, output=output, stac_output=stac_path_for(output))
        try:
            params.validate()
        except GeoDLError as exc:
            self._message(str(exc), Qgis.MessageLevel.Warning)
            return None

        def work(progress: Any) -> Any:
            from ..core.models.onnx_export import export_onnx
            from ..core.runtime.worker import run_in_worker

            return run_in_worker(export_onnx, params, progress)

        def done(result: Any) -> None:
            self.setEnabled(True)
            self._message(
                f"ONNX model for Deepness written to {result.output} (tiles {result.tile_size} px; "
                f"largest difference from the Keras model {result.max_abs_difference:.1e}); model card "
                f"{result.stac_output}.",
                Qgis.MessageLevel.Success,
            )

        def failed(text: str) -> None:
            self.setEnabled(True)
            self._message(text, Qgis.MessageLevel.Critical)

        self.setEnabled(False)
        self.task = self._run(
            GeoDLTask("GeoDL: export to ONNX", work, on_done=done, on_error=failed, on_cancelled=lambda: self.setEnabled(True))
        )
        return self.task
