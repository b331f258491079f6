"""The Labels tab's separability check: the labelled classes' band histograms and the Jeffries–Matusita distance
of every class pair (``core.evaluate.summary.summarize_bands``), so a class that overlaps another shows up
before training. The statistics run in a GeoDLTask; the plot is shown in the panel."""

from __future__ import annotations

from typing import Any, Callable, Optional

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QPixmap
from qgis.PyQt.QtWidgets import QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from ..tasks import GeoDLTask
from .forms import load_form

# (labels file, layer name or None, class field) or None when nothing is labelled yet.
LabelsSource = Callable[[], Optional[tuple[str, Optional[str], str]]]


class SummaryPanel(QGroupBox):
    """``labels`` and ``rasters`` say what to summarize when the button is pressed; ``output_path(stem, suffix)``
    names a new file; ``run_task`` starts a GeoDLTask; ``message`` shows a warning."""

    # ui/summary_panel.ui
    summaryLayout: QVBoxLayout
    summarizeButton: QPushButton
    statusLabel: QLabel
    plotLabel: QLabel

    def __init__(
        self,
        parent: QWidget,
        labels: LabelsSource,
        rasters: Callable[[], list[str]],
        output_path: Callable[[str, str], str],
        run_task: Callable[[GeoDLTask], GeoDLTask],
        message: Callable[[str], None],
    ) -> None:
        super().__init__(parent)
        load_form(self, "summary_panel.ui")
        self._labels, self._rasters, self._output_path = labels, rasters, output_path
        self._run_task, self._message = run_task, message
        self.task: Optional[GeoDLTask] = None
        self.report: dict[str, Any] = {}
        self.summarizeButton.clicked.connect(self.summarize)

    def summarize(self) -> None:
        if self.task is not None and self.task.status() not in (self.task.TaskStatus.Complete, self.task.TaskStatus.Terminated):
            self._message("The class summary is already running.")
            return
        source = self._labels()
        rasters = self._rasters()
        if source is None:
            self._message("Label some points (or choose labelled polygons and their class field) first.")
            return
        if not rasters:
            self._message("Choose the imagery in the Imagery tab first; its bands are what is summarized.")
            return
        path, layer, field = source
        json_path, png_path = self._output_path("class_summary", ".json"), self._output_path("class_summary", ".png")

        def work(progress: Any) -> dict[str, Any]:
            from ..core.data.labels import read_labels
            from ..core.data.samples import stack_info
            from ..core.evaluate.summary import summarize_bands

            crs = stack_info(rasters)[0].crs_wkt
            labels = read_labels(path, field, layer=layer, target_crs_wkt=crs)
            report = summarize_bands(rasters, json_path, png_path, labels=labels, progress=progress)
            report["plot"] = png_path
            return report

        self.summarizeButton.setEnabled(False)
        self.statusLabel.setText("Summarizing the classes…")
        self.task = self._run_task(
            GeoDLTask(
                "GeoDL: class separability",
                work,
                on_done=self._done,
                on_error=self._failed,
                on_cancelled=lambda: self._failed("Cancelled."),
            )
        )

    def _failed(self, text: str) -> None:
        self.summarizeButton.setEnabled(True)
        self.statusLabel.setText("")
        self._message(text)

    def _done(self, report: dict[str, Any]) -> None:
        self.summarizeButton.setEnabled(True)
        self.report = report
        pairs = report.get("separability", {}).get("pairs", [])
        worst = min(pairs, key=lambda p: p["jeffries_matusita"], default=None)
        lines = [f"{report['pixels']} labelled pixels."]
        if worst is not None:
            lines.append(f"Least separable: {worst['a']} / {worst['b']} (Jeffries–Matusita {worst['jeffries_matusita']:.2f} of 2).")
        lines += report.get("warnings", [])
        self.statusLabel.setText("\n".join(lines))
        pixmap = QPixmap(report["plot"])
        if not pixmap.isNull():
            width = max(200, self.width() - 24)
            self.plotLabel.setPixmap(pixmap.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation))
