"""The Status tab's ML-runtime panel in a real dock: the choice pre-filled from the machine's GPU, set up and
cancel through the button (nothing half-made is left), and a made runtime shown with Repair and Remove."""

from __future__ import annotations

import pytest

from geodl_plugin import settings
from geodl_plugin.core.runtime.environment import detect_gpu, read_runtime, recommended_spec
from geodl_plugin.gui.dock import GeoDLDock


@pytest.fixture
def dock(qgis_iface, qgis_new_project, qgis_canvas, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("GEODL_UV", "off")  # pip's per-package log is what the cancel test waits for, uv or not
    before = settings.get("runtime_dir")
    settings.set_value("runtime_dir", str(tmp_path / "profile-geodl" / "runtime"))
    d = GeoDLDock(None, iface=qgis_iface, project=qgis_new_project, canvas=qgis_canvas)
    qtbot.addWidget(d)
    yield d
    d.status.runtime_panel.cancel()
    qtbot.waitUntil(lambda: not d.status.runtime_panel._busy(), timeout=120000)
    d.disconnect_project()
    settings.set_value("runtime_dir", before)


def test_panel_sits_in_the_status_tab_with_the_machine_s_choice(dock, qtbot):
    panel = dock.status.runtime_panel
    assert (
        panel.parent() is dock.status
        and dock.status.parent() is dock.statusPage
        and panel.setupRuntimeButton.text() == "Set up the ML runtime"
    )
    assert "No geodl ML runtime" in panel.runtimeStatusLabel.text()
    qtbot.waitUntil(lambda: "Looking" not in panel.gpuLabel.text(), timeout=30000)
    expected = recommended_spec(detect_gpu())
    assert panel.spec().device == expected.device and panel.spec().backend == expected.backend
    if expected.device == "cpu":
        assert "No NVIDIA GPU" in panel.gpuLabel.text()
    assert not panel.removeRuntimeButton.isEnabled()  # nothing to remove yet


@pytest.mark.slow
def test_cancel_through_the_button_leaves_nothing(dock, qtbot):
    panel = dock.status.runtime_panel
    root = settings.runtime_dir()
    task = panel.setup_runtime()
    assert task is not None and not panel.setupRuntimeButton.isEnabled() and panel.cancelRuntimeButton.isEnabled()
    qtbot.waitUntil(lambda: "collecting" in panel.runtimeLog.toPlainText(), timeout=120000)  # pip is at work
    panel.cancelRuntimeButton.click()
    qtbot.waitUntil(lambda: not panel._busy(), timeout=60000)
    qtbot.wait(50)
    assert "Cancelled; the previous state is unchanged." in panel.runtimeLog.toPlainText()
    assert not root.exists() and list(root.parent.glob(".runtime-*")) == []
    assert panel.setupRuntimeButton.isEnabled() and not panel.cancelRuntimeButton.isEnabled()


@pytest.mark.slow
def test_made_runtime_shows_repair_and_its_stack(dock, geodl_runtime):
    root = geodl_runtime[0]
    settings.set_value("runtime_dir", str(root))
    panel = dock.status.runtime_panel
    panel.refresh()
    assert read_runtime(root) is not None
    assert panel.setupRuntimeButton.text() == "Repair the ML runtime" and panel.removeRuntimeButton.isEnabled()
    assert "Keras 3.15.1 on tensorflow 2.20.0 (CPU build)" in panel.runtimeStatusLabel.text()
    assert panel.spec().backend == "tensorflow" and panel.spec().device == "cpu"
