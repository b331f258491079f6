"""The dock's step panels stand alone: each is built with nothing but its constructor arguments (no dock, no
sibling panel) and does its job through them; only the composer (gui/dock.py) imports a step panel; and
every widget a panel uses is declared on its class and found, with that type, in its form."""

from __future__ import annotations

import ast
import dataclasses
import re
import typing
from pathlib import Path

import pytest
from qgis.core import Qgis, QgsProject, QgsRasterLayer
from qgis.gui import QgsMapCanvas
from qgis.PyQt.QtWidgets import QGroupBox, QWidget

from geodl_plugin.gui.accuracy_panel import AccuracyPanel
from geodl_plugin.gui.class_palette import ClassPalette
from geodl_plugin.gui.dock_context import DockContext
from geodl_plugin.gui.imagery_panel import ImageryPanel
from geodl_plugin.gui.labelling import LabelSession
from geodl_plugin.gui.labels_panel import LabelsPanel
from geodl_plugin.gui.map_panel import MapPanel
from geodl_plugin.gui.region_panel import REGION_LAYER_NAME, RegionPanel
from geodl_plugin.gui.shared_state import SharedState
from geodl_plugin.gui.status_panel import StatusPanel
from geodl_plugin.gui.training_panel import TrainingPanel
from tests.conftest import REPO

from .dock_support import raster_extent, setup_canvas, write_two_class_raster

GUI = REPO / "geodl_plugin" / "gui"
STEP_PANELS = ("region_panel", "labels_panel", "imagery_panel", "training_panel", "map_panel", "status_panel", "accuracy_panel")
FORM_PANELS = (*STEP_PANELS, "ee_imagery", "ee_classify", "ee_upload", "runtime_panel", "active_learning_panel", "summary_panel")


class Harness:
    """What a panel's constructor asks for, made here: a project of its own, a canvas, a task runner that
    records the tasks (and starts none), a message line."""

    def __init__(self, tmp_path: Path, canvas: QgsMapCanvas | None) -> None:
        self.project = QgsProject()
        self.tasks: list = []
        self.messages: list[tuple[str, object]] = []
        self.context = DockContext(self.project, canvas, self._run, lambda text, level: self.messages.append((text, level)))
        self.context.files.set_output_dir(str(tmp_path / "out"))
        self.shared = SharedState(self.project)
        self.session = LabelSession(ClassPalette())

    def _run(self, task):
        self.tasks.append(task)
        return task

    @property
    def last(self) -> str:
        return self.messages[-1][0] if self.messages else ""


@pytest.fixture
def harness(tmp_path, qgis_canvas):
    return Harness(tmp_path, qgis_canvas)


def _check_declarations(panel: QWidget) -> None:
    """Each widget (or layout) the panel's class declares is built from its form, with the declared type."""
    declared = typing.get_type_hints(type(panel))
    assert declared, f"{type(panel).__name__} declares no widget"
    for name, kind in declared.items():
        widget = getattr(panel, name, None)
        assert widget is not None, f"{type(panel).__name__}.{name} is declared but its form has no such widget"
        assert isinstance(widget, kind), f"{type(panel).__name__}.{name} is a {type(widget).__name__}, declared {kind.__name__}"


def test_region_panel_alone(harness, qgis_canvas, tmp_path):
    raster = QgsRasterLayer(str(write_two_class_raster(tmp_path / "scene.tif")), "scene")
    setup_canvas(qgis_canvas, [raster], raster_extent())
    changed = []
    harness.shared.regionChanged.connect(lambda: changed.append(1))
    panel = RegionPanel(harness.context, harness.shared)
    _check_declarations(panel)
    panel.use_canvas_extent()
    layer = harness.shared.region_layer
    assert changed and layer is not None and layer.name() == REGION_LAYER_NAME
    assert harness.project.mapLayer(layer.id()) is layer and layer.featureCount() == 1
    assert harness.shared.region_geometry(raster.crs()).boundingBox().contains(raster_extent())  # the canvas shows it all
    assert "Region:" in panel.regionLabel.text() and harness.messages[-1] == ("Region set.", Qgis.MessageLevel.Success)
    panel.drawRectangleButton.setChecked(True)
    assert qgis_canvas.mapTool() is panel.rectangle_tool
    panel.release_tools()
    assert qgis_canvas.mapTool() is not panel.rectangle_tool


def test_labels_panel_alone(harness, qgis_canvas, tmp_path):
    raster = QgsRasterLayer(str(write_two_class_raster(tmp_path / "scene.tif")), "scene")
    setup_canvas(qgis_canvas, [raster], raster_extent())
    panel = LabelsPanel(harness.context, harness.shared, harness.session)
    _check_declarations(panel)
    panel.labelToolButton.setChecked(True)
    assert not panel.labelToolButton.isChecked() and "Add a class" in harness.last
    panel.add_class("water")
    panel.add_class("field")
    assert panel.classList.count() == 2 and panel.active_class_id() == 2
    panel.labelToolButton.setChecked(True)  # the labels layer is made in the panel's project and output folder
    layer = harness.session.layer
    assert qgis_canvas.mapTool() is panel.label_tool and harness.project.mapLayer(layer.id()) is layer
    assert Path(harness.session.file_path()).parent == tmp_path / "out"
    panel.release_tools()
    panel.summary_panel.summarize()
    assert "Label some points" in harness.last and harness.tasks == []


def test_imagery_panel_alone(harness, tmp_path):
    raster = QgsRasterLayer(str(write_two_class_raster(tmp_path / "scene.tif")), "scene")
    harness.project.addMapLayer(raster)
    panel = ImageryPanel(harness.context, harness.shared)
    _check_declarations(panel)
    panel.refresh_rasters()
    assert panel.rasterTree.topLevelItemCount() == 1 and panel.imageryLabel.text() == "No raster chosen yet."
    from qgis.PyQt.QtCore import Qt

    panel.rasterTree.topLevelItem(0).setCheckState(0, Qt.CheckState.Checked)  # the user ticks it
    assert harness.shared.raster_ids == [raster.id()] and "1 raster(s), 3 band(s)" in panel.imageryLabel.text()
    harness.shared.set_series(True)  # e.g. the Train step chose a time-series family
    assert panel.seriesCheck.isChecked() and "No date in the file name or metadata of scene" in panel.imageryLabel.text()
    panel.seriesDatesEdit.setText("2020-05-18")
    assert harness.shared.check_series() == ["2020-05-18"]


def test_training_panel_alone(harness):
    panel = TrainingPanel(harness.context, harness.shared, harness.session)
    _check_declarations(panel)
    assert panel.start_training() is None and "No raster chosen" in harness.last and harness.tasks == []
    panel.modelTypeCombo.setCurrentIndex(panel.modelTypeCombo.findData("temporal"))
    assert harness.shared.series and panel.patchSizeSpin.isEnabled()  # published for the Imagery step
    panel.modelTypeCombo.setCurrentIndex(panel.modelTypeCombo.findData("rf_regression"))
    assert not panel.targetGroup.isHidden() and "n_trees" in panel.optionsForm.editors
    panel.show_device("CPU")
    assert panel.trainDeviceLabel.text() == "Training device: CPU"


def test_map_panel_alone(harness, tmp_path):
    panel = MapPanel(harness.context, harness.shared, lambda: ("margin",))
    _check_declarations(panel)
    assert panel.predict() is None and "No raster chosen" in harness.last
    harness.shared.set_model_path(str(tmp_path / "m.geodl"))  # e.g. the Train step wrote a model
    assert panel.modelFileWidget.filePath() == str(tmp_path / "m.geodl") == panel.model_file()
    panel.modelFileWidget.setFilePath(str(tmp_path / "other.geodl"))  # the user chose one
    assert harness.shared.model_path == str(tmp_path / "other.geodl")
    assert panel._measures() == ("margin",) and harness.tasks == []


def test_status_and_accuracy_panels_alone(harness):
    status = StatusPanel(harness.context)
    _check_declarations(status)
    _check_declarations(status.runtime_panel)
    assert [t.description() for t in harness.tasks] == ["GeoDL: look for an NVIDIA GPU"]  # through the given runner
    devices = []
    status.deviceChanged.connect(devices.append)
    status.runtime_panel._show_device("GPU (CUDA)")  # what the runtime panel reports after a set-up
    assert status.deviceLabel.text() == "Training device: GPU (CUDA)" and devices == ["GPU (CUDA)"]
    accuracy = AccuracyPanel()
    _check_declarations(accuracy)
    from geodl_plugin.core.evaluate.reports import AccuracyReport, ClassScores

    per_class = {"water": ClassScores(1.0, 1.0, 1.0, 1.0, 5), "field": ClassScores(0.4, 0.6, 0.5, 0.3, 5)}
    accuracy.show_accuracy(AccuracyReport(overall_accuracy=0.9, kappa=0.8, n_samples=10, per_class=per_class, split="random"), "")
    assert accuracy.f1Table.rowCount() == 2 and accuracy.f1Table.item(1, 1).text() == "0.500"
    assert accuracy.accuracyLabel.text() == "Overall accuracy 0.900 · kappa 0.800 · 10 held-out samples (random split)"
    accuracy.clear()
    assert accuracy.metrics is None and accuracy.f1Table.rowCount() == 0


def test_earth_engine_panels_alone(harness):
    pytest.importorskip("ee")
    from geodl_plugin.gui.ee_classify import EEClassifyPanel
    from geodl_plugin.gui.ee_imagery import EECompositePanel
    from geodl_plugin.gui.ee_upload import EEUploadPanel

    warnings: list[str] = []
    added: list = []
    imagery = EECompositePanel(
        None, harness.project, harness.shared.region_geometry, lambda: "/tmp", harness._run, added.append, warnings.append
    )
    upload = EEUploadPanel(None, lambda: None, harness._run, warnings.append, warnings.append)
    classify = EEClassifyPanel(None, lambda: None, lambda: None, harness._run, added.append, warnings.append, warnings.append)
    for panel in (imagery, upload, classify):
        _check_declarations(panel)
    assert imagery.sensorCombo.count() == 3 and imagery.startEdit.date() < imagery.endEdit.date()
    assert imagery.download() is None and "region" in warnings[-1]
    assert upload.upload() is None and "Classify" in warnings[-1]
    assert classify.classify() is None and "model" in warnings[-1]
    assert harness.tasks == [] and added == [] and not classify.cancelButton.isEnabled() and upload.waitCheck.isChecked()


def test_active_learning_panel_alone(harness, qgis_canvas):
    from geodl_plugin.gui.active_learning_panel import ActiveLearningPanel, PanelHooks

    asked: list[str] = []
    hooks = PanelHooks(
        retrain=lambda: asked.append("retrain"),
        remap=lambda: asked.append("remap"),
        ensure_labels_layer=lambda: None,
        region_wkt=lambda _crs: None,
        output_path=harness.context.unique,
        show_uncertainty=lambda on: asked.append(f"show {on}"),
    )
    panel = ActiveLearningPanel(None, qgis_canvas, harness.project, harness._run, harness.context.message, harness.session, hooks)
    _check_declarations(panel)
    assert panel.suggest() is None and "Classify or preview first" in harness.last
    panel.showUncertaintyCheck.setChecked(True)
    assert panel.wanted_measures() == ("entropy", "margin") and asked == ["show True"]
    panel.retrain()
    assert asked[-1] == "retrain" and not panel.pending_retrain  # the hook started nothing: no round pending


# Every key the dock wrote into projects before its steps were panels (geodl/dock_state, version 2).
OLD_DOCK_STATE = {
    "classes": [{"value": 1, "name": "water", "color_hint": "1f78b4"}, {"value": 2, "name": "field", "color_hint": "e6c229"}],
    "active_class": 1,
    "region_layer_id": "",
    "labels_layer_id": "",
    "raster_layer_ids": [],
    "family": "unet",
    "options": {"depth": 2, "base_filters": 8, "dice_weight": 0.5, "augment": False, "dropout": 0.2},
    "tiling": {"size": 128, "overlap": 16, "batch": 4},
    "epochs": 7,
    "batch_size": 16,
    "model_path": "/somewhere/model.geodl",
    "output_dir": "",
    "predict_area": "canvas",
    "version": 2,
}


def test_a_project_saved_by_the_old_dock_is_restored_and_saved_with_the_same_keys(qgis_iface, tmp_path, qtbot):
    import json

    from geodl_plugin.gui import project_state
    from geodl_plugin.gui.dock import GeoDLDock

    project = QgsProject()
    project.writeEntry(project_state.SCOPE, project_state.KEY, json.dumps(OLD_DOCK_STATE))
    dock = GeoDLDock(None, iface=qgis_iface, run_task=lambda t: t, project=project, canvas=None)
    qtbot.addWidget(dock)
    assert [c.name for c in dock.palette] == ["water", "field"] and dock.labels.classList.currentRow() == 1
    assert dock.training.modelTypeCombo.currentData() == "unet" and dock.training.optionsForm.values().base_filters == 8
    assert (dock.training.epochsSpin.value(), dock.training.batchSpin.value()) == (7, 16)
    assert dock.mapping.tilingForm.values().size == 128 and dock.mapping.area() == "canvas"
    assert dock.shared.model_path == dock.mapping.modelFileWidget.filePath() == "/somewhere/model.geodl"
    saved = dataclasses.asdict(dock.state())
    assert saved.keys() == OLD_DOCK_STATE.keys()
    assert {k: saved[k] for k in OLD_DOCK_STATE} == OLD_DOCK_STATE
    dock.disconnect_project()


# ------------------------------------------------------------------------------------------- the layout rules
def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = "geodl_plugin.gui" if node.level == 1 else "geodl_plugin" if node.level == 2 else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_only_the_composer_imports_a_step_panel():
    steps = {f"geodl_plugin.gui.{m}" for m in STEP_PANELS}
    bad = []
    for path in (REPO / "geodl_plugin").rglob("*.py"):
        if path == GUI / "dock.py":
            continue
        for target in _imports(path) & steps:
            if target != f"geodl_plugin.gui.{path.stem}":
                bad.append(f"{path.relative_to(REPO)} imports {target}")
        if path.parent == GUI and path.stem in FORM_PANELS and "geodl_plugin.gui.dock" in _imports(path):
            bad.append(f"{path.relative_to(REPO)} imports the dock")
    assert not bad, "panels talk through the shared state and signals, wired in gui/dock.py:\n" + "\n".join(bad)


def test_every_widget_a_panel_uses_is_declared_and_in_its_form():
    """A name like ``self.trainButton`` in a panel is declared on its class (then the construction tests check
    it against the form) or made in the panel; never a widget of another form."""
    undeclared = []
    for module in (*FORM_PANELS, "dock"):
        path = GUI / f"{module}.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        form = (REPO / "ui" / f"{module}.ui").read_text(encoding="utf-8")
        form_names = set(re.findall(r'name="(\w+)"', form))
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and _loads_a_form(n)):
            declared = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
            missing = declared - form_names
            assert not missing, f"{module}.{cls.name} declares {missing}, which ui/{module}.ui lacks"
            made = {t.attr for n in ast.walk(cls) if isinstance(n, (ast.Assign, ast.AnnAssign)) for t in _targets(n)}
            members = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)} | {
                t.id for n in cls.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
            }
            for node in ast.walk(cls):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                    name = node.attr
                    if not re.match(r"^[a-z]+[A-Z]", name) or name in declared | made | members:
                        continue
                    if hasattr(QGroupBox, name):  # Qt's own (setObjectName, width…)
                        continue
                    undeclared.append(f"{module}.{cls.name}: self.{name}")
    assert not undeclared, "declare these on the class (with their type):\n" + "\n".join(undeclared)


def _loads_a_form(cls: ast.ClassDef) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "load_form" for n in ast.walk(cls))


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.Attribute]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    out = []
    for t in targets:
        for sub in ast.walk(t):
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self":
                out.append(sub)
    return out
